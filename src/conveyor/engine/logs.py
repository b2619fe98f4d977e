"""Job logs: captured line by line, masked, written live, then stored compressed.

While a job runs its log is a plain file under the state directory, so
`conveyor logs --follow` can tail it from another process. When the job ends
the log is gzip-compressed into the content-addressed store and the plain
file is removed; the JobRun keeps the log's digest.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from pathlib import Path

from conveyor.core.masking import Masker

LineSink = Callable[[str], None]


class JobLog:
    """Collects one job's output: split into lines, masked, written, forwarded."""

    def __init__(self, path: Path, masker: Masker, on_line: LineSink | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._masker = masker
        self._on_line = on_line
        self._pending = b""
        self._lock = threading.Lock()
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def feed(self, chunk: bytes) -> None:
        """Raw bytes from the job; complete lines are processed at once."""
        with self._lock:
            data = self._pending + chunk
            *lines, self._pending = data.split(b"\n")
            for line in lines:
                self._emit(line)

    def note(self, text: str) -> None:
        """A line from Conveyor itself (attempt markers, warnings)."""
        with self._lock:
            self._emit(text.encode())

    def _emit(self, raw: bytes) -> None:
        text = self._masker.mask(raw.decode("utf-8", "replace").rstrip("\r"))
        self._file.write(text + "\n")
        if self._on_line is not None:
            self._on_line(text)

    def close(self) -> bytes:
        """Flush the last partial line; the whole log, gzip-compressed."""
        with self._lock:
            if self._pending:
                self._emit(self._pending)
                self._pending = b""
            self._file.close()
            content = self.path.read_bytes()
        return gzip.compress(content, compresslevel=6, mtime=0)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def decompress(blob: bytes) -> str:
    return gzip.decompress(blob).decode("utf-8", "replace")
