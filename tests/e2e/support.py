"""Driving the real `conveyor` command in throwaway workspaces.

Every test gets its own workspace directory (with its own `.conveyor/` state)
and a `side` directory outside it. Jobs leave evidence (timestamps, pids,
counters) in `$SIDE`, so that evidence never becomes one of their inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .instances import kill_instances

GIT_IDENTITY = ("-c", "user.email=dev@example.com", "-c", "user.name=Dev Eloper")
# Variables that would point Conveyor (or git) somewhere other than the test's workspace.
_STRIPPED_PREFIXES = ("CONVEYOR_", "GIT_", "PYTEST_")
GENESIS = "sha256:" + "0" * 64


class Result(NamedTuple):
    """How one `conveyor` invocation ended."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def text(self) -> str:
        return self.out + self.err


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live process (an exited, unreaped zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_for(condition: Callable[[], bool], *, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)


def base_env(side: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
    # `python` in a job is the interpreter running the tests.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SIDE"] = str(side)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["CONVEYOR_ACTOR"] = "e2e@example.com"
    return env


class Workspace:
    """A directory with a conveyor.yaml, and ways to run `conveyor` in it and inspect its state."""

    def __init__(self, root: Path, side: Path) -> None:
        self.root = root
        self.side = side
        self.env = base_env(side)
        self._started: list[subprocess.Popen[bytes]] = []

    # --- files ---------------------------------------------------------------

    @property
    def state(self) -> Path:
        return self.root / ".conveyor"

    @property
    def db_path(self) -> Path:
        return self.state / "conveyor.db"

    def write(self, rel: str, text: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def spec(self, text: str) -> Path:
        return self.write("conveyor.yaml", textwrap.dedent(text).lstrip("\n"))

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def side_file(self, name: str) -> Path:
        return self.side / name

    def side_floats(self, name: str) -> list[float]:
        return [float(x) for x in self.side_file(name).read_text().split()]

    def pids(self, pattern: str = "*.pid") -> dict[str, int]:
        """Pids that jobs wrote to `$SIDE/<name>.pid`, by name."""
        found = {}
        for path in sorted(self.side.glob(pattern)):
            text = path.read_text().strip()
            if text:
                found[path.stem] = int(text)
        return found

    # --- the command ---------------------------------------------------------

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self.env, **(extra or {})}

    def cli(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> Result:
        """Run `conveyor ARGS` to its end."""
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            cwd=cwd or self.root,
            env=self._env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        """`conveyor run --json ARGS`, which must print one JSON object."""
        result = self.cli("run", "--json", *args, env=env, timeout=timeout)
        assert result.out.strip(), f"no JSON on stdout (exit {result.code}): {result.err}"
        return result

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `conveyor ARGS` in the background; output goes to files in `side`."""
        n = len(self._started)
        with (
            open(self.side / f"proc{n}.out", "wb") as out,
            open(self.side / f"proc{n}.err", "wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args],
                cwd=self.root,
                env=self._env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self._started.append(proc)
        return proc

    def output_of(self, proc: subprocess.Popen[bytes]) -> Result:
        n = self._started.index(proc)
        assert proc.returncode is not None, "the process is still running"
        out = (self.side / f"proc{n}.out").read_text()
        err = (self.side / f"proc{n}.err").read_text()
        return Result(proc.returncode, out, err)

    def runs(self) -> list[dict[str, Any]]:
        result = self.cli("runs", "--json")
        assert result.code == 0, result.err
        runs: list[dict[str, Any]] = result.json()["runs"]
        return runs

    # --- git -----------------------------------------------------------------

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *GIT_IDENTITY, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def init_git(self, branch: str = "main") -> None:
        self.git("init", "-q", "-b", branch)
        self.commit("initial")

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    # --- the store -----------------------------------------------------------

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as conn:
            return conn.execute(sql, params).fetchall()

    def events(self) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT seq, ts, kind, subject, actor, data, prev_hash, hash FROM events ORDER BY seq"
        )
        keys = ("seq", "ts", "kind", "subject", "actor", "data", "prev_hash", "hash")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def blob_path(self, digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        return self.state / "cas" / "sha256" / hexpart[:2] / hexpart[2:]

    def entry_path(self, key: str) -> Path:
        hexpart = key.removeprefix("sha256:")
        return self.state / "cache" / "entries" / hexpart[:2] / f"{hexpart}.json"

    # --- cleanup -------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop whatever a test left behind: its conveyor processes, its jobs' processes and
        the instances its deployments started (they outlive the processes that started them)."""
        for proc in self._started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for pid in self.pids().values():
            if process_alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        kill_instances(self.instances_root)

    @property
    def instances_root(self) -> Path:
        """Where the local target records the instances of this workspace."""
        return self.state / "targets" / "local"


def jobs_by_name(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for job in run["jobs"]}


def event_hash(event: dict[str, Any]) -> str:
    """An event's hash recomputed: SHA-256 of the canonical JSON of its fields and `prev`."""
    body = {
        "seq": event["seq"],
        "ts": event["ts"],
        "kind": event["kind"],
        "subject": event["subject"],
        "actor": event["actor"],
        "data": event["data"],
        "prev": event["prev_hash"],
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def assert_chain_intact(events: list[dict[str, Any]]) -> None:
    """Seq runs 1, 2, 3..., each event links to the one before, and each hash is its own."""
    assert events, "the event log is empty"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(events):
        assert after["prev_hash"] == before["hash"], f"event {after['seq']} does not link"
    for event in events:
        assert event["hash"] == event_hash(event), f"event {event['seq']} has a wrong hash"


WorkspaceFactory = Callable[..., Workspace]
