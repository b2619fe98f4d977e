"""What the executor tests share: an output sink, checks on the processes they started."""

from __future__ import annotations

import os
import time
from pathlib import Path


class Output:
    """Collects the chunks an execution hands over."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()


def is_gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_gone(pid: int, within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
