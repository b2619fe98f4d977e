"""The local target: each instance a detached process group on this machine.

Layout under the target's root, one directory per instance:

    <instance id>/release/files/   the plain artifacts, at their paths: the instance's cwd
    <instance id>/release/site/    wheels, unpacked: the instance's PYTHONPATH
    <instance id>/instance.json    the record: pid, process group, port, release, environment
    <instance id>/output.log       the instance's stdout and stderr, appended

An instance is launched through `sh`, which starts the `run` command in the
background and exits at once: the instance is left in a session and process
group of its own, with no parent in Conveyor, so it outlives the `conveyor`
process that started it and no terminal's hangup reaches it. Whoever reads
the records later (another process, a restarted controller) re-adopts the
instances that still run; a process counts as an instance only while its
environment carries the instance's markers, since process ids are reused.

Ports are found by binding port 0 and closing. Another process may take the
port before the instance binds it, so `start` waits (up to `bind_wait_s`)
until the instance listens; if it died while someone else holds its port,
it is started again on a new port. The `run` command must stay in the
foreground: when the process it started exits, the instance is over.

Linux only: liveness, markers and listening sockets are read from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Literal

from conveyor.core.clock import Clock, SystemClock
from conveyor.core.values import frozen
from conveyor.release.model import Release
from conveyor.targets import procfs
from conveyor.targets.base import (
    HealthCheck,
    HealthResult,
    Instance,
    InstanceDir,
    InstanceId,
    InstanceSpec,
    Placement,
    TargetError,
)
from conveyor.targets.materialize import FILES, SITE, BlobSource, materialize
from conveyor.targets.probe import free_port, http_health

RECORD = "instance.json"
LOG = "output.log"
RELEASE = "release"
FORMAT = 1
# The environment an instance gets from the process that starts it; nothing
# else leaks through (the store's URL, the audit key, tokens).
PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR")
# `$0` is the log file, `$@` the shell with the command; `$!` is the instance's pid.
_LAUNCH = '"$@" </dev/null >>"$0" 2>&1 & echo $!'
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_POLL_S = 0.02
_TAIL_BYTES = 2048

BindOutcome = Literal["bound", "taken", "exited", "slow"]


@frozen
class _Record:
    """What the target remembers of one started instance."""

    instance: Instance
    pid: int
    pgid: int
    markers: tuple[str, ...]


class LocalTarget:
    """Instances as detached local process groups, recorded under `root`.

    Start times come from `clock`; waiting for processes to bind or to exit
    takes real time.
    """

    def __init__(
        self,
        root: Path,
        blobs: BlobSource,
        *,
        clock: Clock | None = None,
        kill_grace_s: float = 5.0,
        bind_wait_s: float = 3.0,
        port_attempts: int = 3,
    ) -> None:
        # Canonical, because it is part of every instance's markers.
        self.root = root.resolve()
        self._blobs = blobs
        self._clock = clock or SystemClock()
        self.kill_grace_s = kill_grace_s
        self.bind_wait_s = bind_wait_s
        self.port_attempts = port_attempts
        self._shell = _shell()

    def prepare(self, release: Release, instance_id: InstanceId) -> InstanceDir:
        release_dir = materialize(release, self._blobs, self._dir(instance_id) / RELEASE)
        return InstanceDir(instance_id, release_dir / FILES, (release_dir / SITE,))

    def start(self, spec: InstanceSpec) -> Instance:
        current = self._load(spec.id)
        if current is not None and self._alive(current):
            return current.instance
        record = self._launch(spec)
        attempts = 1
        while self._await_bind(record) == "taken" and attempts < self.port_attempts:
            record = self._launch(spec)
            attempts += 1
        return record.instance

    def health(self, instance: Instance) -> HealthResult:
        record = self._load(instance.id)
        if record is None or not self._alive(record):
            return HealthResult("exited", self.exit_detail(instance.id))
        current = record.instance
        return http_health(current.host, current.port, current.health)

    def stop(self, instance: Instance) -> None:
        record = self._load(instance.id)
        if record is not None and self._owns_group(record):
            _signal_group(record.pgid, signal.SIGTERM)
            if not _await_group_gone(record.pgid, self.kill_grace_s):
                _signal_group(record.pgid, signal.SIGKILL)
                _await_group_gone(record.pgid, 2.0)
        self._discard(instance.id)

    def list_instances(self, placement: Placement) -> list[Instance]:
        running: list[Instance] = []
        for record in self._records():
            if record.instance.placement != placement:
                continue
            if self._alive(record):
                running.append(record.instance)
            else:
                self._drop(record)
        return sorted(running, key=lambda instance: instance.id)

    def log_path(self, instance_id: InstanceId) -> Path:
        """Where the instance's output goes; it is kept after the instance stops."""
        return self._dir(instance_id) / LOG

    def exit_detail(self, instance_id: InstanceId) -> str:
        """Why an instance is taken to have exited, with the last line it wrote."""
        last = _last_line(self.log_path(instance_id))
        if not last:
            return "it is no longer running"
        return f"it is no longer running; its last output: {last}"

    def _launch(self, spec: InstanceSpec) -> _Record:
        """Start the command detached on a fresh port and record it."""
        port = free_port()
        log = self.log_path(spec.id)
        argv = ["/bin/sh", "-c", _LAUNCH, str(log), *self._shell, spec.command]
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            launcher = subprocess.Popen(
                argv,
                cwd=spec.directory.cwd,
                env=self._environment(spec, port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise TargetError(f"cannot start instance {spec.id}: {exc}") from exc
        pid = _launched_pid(launcher, spec.id)
        instance = Instance(
            spec.id, spec.placement, spec.version, port, self._clock.now(), spec.health
        )
        record = _Record(instance, pid=pid, pgid=launcher.pid, markers=self._markers(spec.id))
        self._save(record)
        return record

    def _markers(self, instance_id: str) -> tuple[str, ...]:
        """What a process's environment must hold to be this target's instance."""
        return (
            f"CONVEYOR_INSTANCE={instance_id}",
            f"CONVEYOR_INSTANCE_DIR={self._dir(instance_id)}",
        )

    def _environment(self, spec: InstanceSpec, port: int) -> dict[str, str]:
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.update(
            PORT=str(port),
            PYTHONPATH=os.pathsep.join(str(path) for path in spec.directory.python_path),
            PYTHONUNBUFFERED="1",
            CONVEYOR_INSTANCE=spec.id,
            CONVEYOR_INSTANCE_DIR=str(self._dir(spec.id)),
            CONVEYOR_SERVICE=spec.placement.service,
            CONVEYOR_ENVIRONMENT=spec.placement.environment,
            CONVEYOR_RELEASE=spec.version,
        )
        return env

    def _await_bind(self, record: _Record) -> BindOutcome:
        """Wait until the instance listens on its port, dies, or `bind_wait_s` passes."""
        port = record.instance.port
        deadline = time.monotonic() + self.bind_wait_s
        while True:
            if procfs.group_listens(record.pgid, port):
                return "bound"
            if not self._alive(record):
                return "taken" if procfs.listening_sockets(port) else "exited"
            if time.monotonic() >= deadline:
                return "slow"
            time.sleep(_POLL_S)

    def _alive(self, record: _Record) -> bool:
        return procfs.is_running(record.pid) and procfs.carries(record.pid, record.markers)

    def _owns_group(self, record: _Record) -> bool:
        """Whether a running member of the recorded group is this instance's (ids are reused)."""
        members = procfs.group_members(record.pgid)
        return any(procfs.carries(pid, record.markers) for pid in members)

    def _drop(self, record: _Record) -> None:
        """Forget an instance whose main process is gone, killing what it left behind."""
        if self._owns_group(record):
            _signal_group(record.pgid, signal.SIGKILL)
        self._discard(record.instance.id)

    def _discard(self, instance_id: InstanceId) -> None:
        directory = self._dir(instance_id)
        (directory / RECORD).unlink(missing_ok=True)
        shutil.rmtree(directory / RELEASE, ignore_errors=True)

    def _dir(self, instance_id: str) -> Path:
        if not _ID.fullmatch(instance_id):
            raise TargetError(f"{instance_id!r} is not an instance id")
        return self.root / instance_id

    def _save(self, record: _Record) -> None:
        path = self._dir(record.instance.id) / RECORD
        tmp = path.with_name(f".{RECORD}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(_encode(record), sort_keys=True))
            tmp.replace(path)
        except OSError as err:
            raise TargetError(f"cannot record instance {record.instance.id}: {err}") from err

    def _load(self, instance_id: str) -> _Record | None:
        return self._read(self._dir(instance_id) / RECORD)

    def _read(self, path: Path) -> _Record | None:
        found = _read_record(path)
        if found is None:
            return None
        instance, pid, pgid = found
        return _Record(instance, pid, pgid, self._markers(instance.id))

    def _records(self) -> list[_Record]:
        try:
            entries = sorted(self.root.iterdir())
        except FileNotFoundError:
            return []
        found = (self._read(entry / RECORD) for entry in entries if _ID.fullmatch(entry.name))
        return [record for record in found if record is not None]


def _encode(record: _Record) -> dict[str, object]:
    instance = record.instance
    return {
        "format": FORMAT,
        "id": instance.id,
        "service": instance.placement.service,
        "environment": instance.placement.environment,
        "version": instance.version,
        "host": instance.host,
        "port": instance.port,
        "started_at": instance.started_at,
        "health": {"path": instance.health.path, "timeout_s": instance.health.timeout_s},
        "pid": record.pid,
        "pgid": record.pgid,
    }


def _read_record(path: Path) -> tuple[Instance, int, int] | None:
    """The instance, pid and process group recorded at `path`; None when absent or unreadable."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            return None
        instance = Instance(
            id=InstanceId(str(doc["id"])),
            placement=Placement(str(doc["service"]), str(doc["environment"])),
            version=str(doc["version"]),
            port=int(doc["port"]),
            started_at=float(doc["started_at"]),
            health=HealthCheck(str(doc["health"]["path"]), float(doc["health"]["timeout_s"])),
            host=str(doc["host"]),
        )
        return instance, int(doc["pid"]), int(doc["pgid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # not a record this version can read: leave it to whoever wrote it


def _launched_pid(launcher: subprocess.Popen[bytes], instance_id: str) -> int:
    """The pid the launcher printed for the instance it left running."""
    with launcher:
        try:
            out, err = launcher.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.communicate()
            raise TargetError(f"cannot start instance {instance_id}: the launcher hangs") from None
    text = out.decode(errors="replace").strip()
    if launcher.returncode != 0 or not text.isdigit():
        reason = err.decode(errors="replace").strip() or f"exit code {launcher.returncode}"
        raise TargetError(f"cannot start instance {instance_id}: {reason}")
    return int(text)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _await_group_gone(pgid: int, timeout_s: float) -> bool:
    """Wait until no process of group `pgid` runs; whether that happened in time."""
    deadline = time.monotonic() + timeout_s
    while procfs.group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _last_line(log: Path) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - _TAIL_BYTES, 0))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _shell() -> list[str]:
    bash = shutil.which("bash")
    if bash:
        return [bash, "--noprofile", "--norc", "-c"]
    return ["/bin/sh", "-c"]
