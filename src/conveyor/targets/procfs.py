"""What the kernel says about processes, read from /proc (Linux).

Process ids are reused, so a recorded pid alone proves nothing: a process is
taken to be an instance only when its environment carries the instance's
markers (`CONVEYOR_INSTANCE=<id>`). A zombie (exited, not yet reaped by its
parent) counts as gone.

Paths are plain strings and `os` functions: the whole of /proc is scanned on
every poll while an instance starts or stops, and pathlib objects were most
of the cost of a scan.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence

_PROC = "/proc"
_LISTEN = "0A"
# While a process execs, /proc shows it with an empty environment for a moment
# (the old memory is gone, the new one not yet set up); reading again for this
# long, a millisecond apart, outlasts that moment even on a loaded machine.
_EXEC_WAIT_S = 0.05
_PF_KTHREAD = 0x00200000  # a kernel thread: its environment is always empty


def process_state(pid: int) -> str | None:
    """The state letter of `pid` (R, S, Z...), or None when there is no such process."""
    try:
        with open(f"{_PROC}/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The fields after the command name (which may hold spaces) follow its ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] if fields else None


def is_running(pid: int) -> bool:
    """Whether `pid` exists and has not exited."""
    return process_state(pid) not in (None, "Z", "X")


def carries(pid: int, markers: Sequence[str]) -> bool:
    """Whether the environment `pid` started with holds every `NAME=value` marker.

    bash, as it starts, splits each variable in place (`NAME\\0value`) while it
    reads it; a marker caught so still counts.
    """
    environ = b"\0" + environment(pid) + b"\0"
    return all(any(form in environ for form in _marker_forms(marker)) for marker in markers)


def _marker_forms(marker: str) -> tuple[bytes, bytes]:
    """`NAME=value` as /proc shows it in an environment: whole, or split by a starting bash."""
    whole = b"\0" + marker.encode() + b"\0"
    return whole, whole.replace(b"=", b"\0", 1)


def environment(pid: int) -> bytes:
    """The environment `pid` started with (NUL-separated), or b"" when it has none or is gone.

    A process caught in the middle of an exec shows an empty environment, or
    none (ESRCH): one that still runs (a user process, not a kernel thread) is
    read again for up to 50 ms. Without this, an instance that had just been
    started was taken for one that had exited. A process whose environment
    really is empty (`env -i`) costs those 50 ms; one not ours to read, none.
    """
    deadline = time.monotonic() + _EXEC_WAIT_S
    while True:
        try:
            with open(f"{_PROC}/{pid}/environ", "rb") as handle:
                environ = handle.read()
        except PermissionError:
            return b""  # not ours to read: reading again would not change that
        except OSError:
            environ = b""
        if environ or not _user_process_running(pid) or time.monotonic() >= deadline:
            return environ
        time.sleep(0.001)


def _user_process_running(pid: int) -> bool:
    """Whether `pid` runs and is not a kernel thread."""
    try:
        with open(f"{_PROC}/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[-1].split()
        state, flags = fields[0], int(fields[6])
    except (OSError, IndexError, ValueError):
        return False
    return state not in ("Z", "X") and not flags & _PF_KTHREAD


def group_members(pgid: int) -> list[int]:
    """The running processes of process group `pgid`."""
    return [pid for pid, group, state in _processes() if group == pgid and state not in "ZX"]


def listening_sockets(port: int) -> set[int]:
    """The inodes of the TCP sockets (IPv4 and IPv6) listening on `port`."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{_PROC}/net/{table}") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets `pid` holds open."""
    fd_dir = f"{_PROC}/{pid}/fd"
    inodes: set[int] = set()
    try:
        fds = os.listdir(fd_dir)  # noqa: PTH208
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")  # noqa: PTH115
        except OSError:
            continue  # closed since the directory was listed
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def group_listens(pgid: int, port: int) -> bool:
    """Whether a process of group `pgid` holds a socket listening on `port`."""
    listening = listening_sockets(port)
    if not listening:
        return False
    return any(socket_inodes(pid) & listening for pid in group_members(pgid))


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, process group, state) of every process that can be read."""
    try:
        entries = os.listdir(_PROC)  # noqa: PTH208
    except OSError:
        return
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"{_PROC}/{name}/stat") as handle:
                stat = handle.read()
            fields = stat.rsplit(")", 1)[1].split()
            yield int(name), int(fields[2]), fields[0]
        except (OSError, ValueError, IndexError):
            continue  # gone since the directory was listed
