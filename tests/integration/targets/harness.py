"""A tiny HTTP service to deploy, releases of it, and ways to wait for and kill instances."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from conveyor.core.records import RunId
from conveyor.release.model import Release, ReleaseArtifact, ReleaseId
from conveyor.targets import procfs
from conveyor.targets.base import HealthCheck, Placement

PLACEMENT = Placement("hello", "prod")
COMMAND = f"{shlex.quote(sys.executable)} -m service"
HEALTH = HealthCheck("/healthz", 1.0)

MakeRelease = Callable[..., Release]

SERVICE = """\
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

VERSION = {version!r}
HEALTH = {health}
EXIT_AFTER_S = {exit_after_s!r}
CHILD = {child!r}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = HEALTH if self.path == "/healthz" else 200
        body = VERSION.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print("serving", VERSION, "on", server.server_port, flush=True)
if CHILD:
    subprocess.Popen(["sleep", "300"])
if EXIT_AFTER_S is not None:
    def leave():
        print("leaving with code 3", flush=True)
        os._exit(3)
    threading.Timer(EXIT_AFTER_S, leave).start()
server.serve_forever()
"""


def release_of(version: str, artifacts: tuple[ReleaseArtifact, ...]) -> Release:
    return Release(
        project="shop",
        service=PLACEMENT.service,
        version=version,
        commit_sha=None,
        run_id=RunId(1),
        config_digest="sha256:" + "c" * 64,
        config="{}",
        artifacts=artifacts,
        created_at=0.0,
        created_by="ci",
        id=ReleaseId(1),
    )


def kill_everything_under(root: Path) -> None:
    """SIGKILL the process group of every instance recorded under `root` that is still ours."""
    groups: list[tuple[int, str]] = []
    for record in root.glob("*/instance.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            doc = json.loads(record.read_text())
            groups.append((int(doc["pgid"]), f"CONVEYOR_INSTANCE={doc['id']}"))
    killed = [pgid for pgid, marker in groups if _kill_group_if_marked(pgid, marker)]
    for pgid in killed:
        assert wait_until(partial(_group_gone, pgid)), f"process group {pgid} survived SIGKILL"


def _kill_group_if_marked(pgid: int, marker: str) -> bool:
    if not any(procfs.carries(pid, [marker]) for pid in procfs.group_members(pgid)):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return True


def _group_gone(pgid: int) -> bool:
    return not procfs.group_members(pgid)


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
