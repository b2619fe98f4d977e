"""A tiny real HTTP service to deploy, and ways to reach and to kill its instances.

The service is one Python file: a pipeline's `build` job copies it into
`dist/` as the release's artifact, and `delivery.run` starts it on $PORT. It
answers `/` with the release it runs (CONVEYOR_RELEASE) and `/healthz` with
`HEALTH`; it sleeps `DELAY_S` before it listens (an instance still starting).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from conveyor.targets import procfs

SERVER = """\
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

HEALTH = {health}
DELAY_S = {delay_s}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = HEALTH if self.path == "/healthz" else 200
        body = os.environ.get("CONVEYOR_RELEASE", "?").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


time.sleep(DELAY_S)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

# The pipeline that builds the service and the head of its `delivery:` section.
PIPELINE = """
version: 1
jobs:
  build:
    inputs: ["app/**"]
    run: mkdir -p dist && cp app/server.py dist/server.py
    outputs: ["dist/server.py"]
delivery:
  service: hello
  artifacts: ["dist/*.py"]
  run: python dist/server.py
"""


def delivering(environments: str, *, health: str = "") -> str:
    """The pipeline with `environments` (YAML lines under `environments:`) and a health check."""
    check = f"  health: {health}\n" if health else ""
    return f"{PIPELINE}{check}  environments:\n{environments}"


def server(*, health: int = 200, delay_s: float = 0.0) -> str:
    """The service's source: its /healthz answers `health`; it listens after `delay_s`."""
    return SERVER.format(health=health, delay_s=delay_s)


def spec(*, within: str = "10s") -> str:
    """A pipeline that builds the service, and delivers it to dev, then staging."""
    return delivering(
        "    - name: dev\n    - name: staging\n      requires: {after: dev}\n",
        health=f"{{http: /healthz, timeout: 1s, within: {within}}}",
    )


def get(address: str, path: str = "/") -> tuple[int, str]:
    """GET `path` from an instance's address (http://127.0.0.1:PORT): status and body."""
    where = urlsplit(address)
    assert where.hostname is not None and where.port is not None, address
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def running_instances(root: Path) -> list[str]:
    """The ids of the instances recorded under `root` that run, once per process group.

    An instance started twice (a duplicate) shows up twice.
    """
    return sorted(_instance_groups(root).values())


def kill_instances(root: Path) -> None:
    """SIGKILL the process group of every instance recorded under `root`; wait until gone."""
    groups = _instance_groups(root)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(procfs.group_members(pgid) for pgid in groups):
        assert time.monotonic() < deadline, f"instances survived SIGKILL: {groups}"
        time.sleep(0.02)


def _instance_groups(root: Path) -> dict[int, str]:
    """The process groups whose processes carry the markers of an instance under `root`."""
    try:
        entries = [entry for entry in root.resolve().iterdir() if entry.is_dir()]
    except FileNotFoundError:
        return {}
    markers = {f"CONVEYOR_INSTANCE_DIR={entry}": entry.name for entry in entries}
    groups: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or not procfs.is_running(int(name)):
            continue
        for marker, instance in markers.items():
            if procfs.carries(int(name), [marker]):
                with contextlib.suppress(OSError):
                    groups[os.getpgid(int(name))] = instance
    return groups
