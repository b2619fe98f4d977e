"""Job logs: captured line by line, masked, written live, then stored compressed.

While a job runs its log is a plain file under the state directory, so
`conveyor logs --follow` can tail it from another process; the file is made
at the job's first line, so a silent job costs no file at all. When the job
ends the log is gzip-compressed into the content-addressed store and the
plain file is removed; the JobRun keeps the log's digest.
"""

from __future__ import annotations

import io
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from conveyor.core.masking import Masker

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

LineSink = Callable[[str], None]

# Logs up to this size are kept in memory too, to compress without reading back.
_MEMORY_LIMIT = 8 << 20
_READ_CHUNK = 1 << 20


def compress(content: bytes) -> bytes:
    """A log as stored: gzip without a time in its header, so equal logs are one blob.

    zlib's gzip framing, as `_Compressing` streams a long log, so a log gives
    the same bytes either way (`gzip.compress` would set another OS byte from
    Python 3.13 on); the `gzip` module is left for reading logs back.
    """
    return zlib.compress(content, 6, wbits=31)


_EMPTY = compress(b"")


class JobLog:
    """Collects one job's output: split into lines, masked, written, forwarded."""

    def __init__(self, path: Path, masker: Masker, on_line: LineSink | None = None) -> None:
        self.path = path
        self._masker = masker
        self._on_line = on_line
        self._pending = b""
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._lines: list[str] | None = []
        self._size = 0

    @property
    def size(self) -> int:
        """Characters of log written so far."""
        return self._size

    def feed(self, chunk: bytes) -> None:
        """Raw bytes from the job; complete lines are processed at once."""
        with self._lock:
            data = self._pending + chunk
            *lines, self._pending = data.split(b"\n")
            for line in lines:
                self._emit(line)
            self._flush()

    def note(self, text: str) -> None:
        """A line from Conveyor itself (attempt markers, warnings), after any partial line."""
        with self._lock:
            self._end_line()
            self._emit(text.encode())
            self._flush()

    def _emit(self, raw: bytes) -> None:
        text = self._masker.mask(raw.decode("utf-8", "replace").rstrip("\r")) + "\n"
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._file.write(text)
        self._size += len(text)
        if self._lines is not None:
            self._lines.append(text)
            if self._size > _MEMORY_LIMIT:
                self._lines = None
        if self._on_line is not None:
            self._on_line(text[:-1])

    def _end_line(self) -> None:
        """Emit a partial line as it is (under the lock)."""
        if self._pending:
            self._emit(self._pending)
            self._pending = b""

    def _flush(self) -> None:
        # Once per chunk, not per line: a follower of the live file reads chunks anyway.
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush the last partial line and close the live file; `compressed()` reads it."""
        with self._lock:
            self._end_line()
            if self._file is not None:
                self._file.close()

    def mark(self) -> int:
        """Where the log stands now (a byte offset), after any partial line; for `since()`."""
        with self._lock:
            self._end_line()
            if self._file is None:
                return 0
            self._file.flush()
            return self._file.buffer.tell()

    def compressed(self, mark: int = 0) -> BinaryIO:
        """The log written after `mark` (all of it by default), gzip-compressed, to read once.

        A partial line is ended first, as `note()` does. A log kept in memory is
        compressed from there; a larger one is compressed from its file as it
        is read, so that memory stays bounded whatever a job prints. Equal logs
        give equal bytes either way (one blob).
        """
        with self._lock:
            self._end_line()
            if self._lines is not None:
                content = "".join(self._lines).encode()[mark:]
                return io.BytesIO(compress(content) if content else _EMPTY)
            if self._file is None:
                return io.BytesIO(_EMPTY)
            if not self._file.closed:
                self._file.flush()
            written = open(self.path, "rb")  # noqa: SIM115 - closed by the reader at its end
        written.seek(mark)
        return io.BufferedReader(_Compressing(written), _READ_CHUNK)

    def discard(self) -> None:
        """Remove the live file once the log is stored."""
        if self._file is not None:
            self.path.unlink(missing_ok=True)


class _Compressing(io.RawIOBase):
    """A file's bytes gzip-compressed as they are read (as `compress()` gives them)."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip, no time in its header
        self._ready = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while not self._done and len(self._ready) < len(view):
            chunk = self._source.read(_READ_CHUNK)
            if chunk:
                self._ready += self._deflate.compress(chunk)
            else:
                self._ready += self._deflate.flush()
                self._done = True
                self._source.close()
        size = min(len(view), len(self._ready))
        view[:size] = self._ready[:size]
        del self._ready[:size]
        return size

    def close(self) -> None:
        self._source.close()
        super().close()


def attempt_marker(number: int, of: int, delay_s: float) -> str:
    """The line a job's log has before its attempt `number` (of `of`), retried after `delay_s`."""
    return f"--- attempt {number} of {of} (after {delay_s:g}s) ---"


def attempt_part(text: str, number: int, *, last: bool = False) -> str | None:
    """What attempt `number` wrote of a job's log `text` so far; None if it has not begun.

    Attempt 1's part begins the log; a later one's follows its marker line
    (the last such line). Each ends where the next attempt's marker begins:
    that attempt may begin before this one is recorded as kept. It is read
    for an attempt not (yet) kept as its own, and `JobAttempt` keeps each
    from the same place, so what a follower printed is always the start of
    what is kept. `last`: no attempt follows (the job is over and this was
    its last), so the part runs to the log's end, whatever the job printed.
    """
    lines = "\n" + text  # so that a marker on the first line follows a newline too
    start = 0
    if number > 1:
        found = lines.rfind(f"\n--- attempt {number} of ")
        end_of_marker = -1 if found < 0 else text.find("\n", found)
        if end_of_marker < 0:
            return None  # not begun (or its marker half-written)
        start = end_of_marker + 1
    following = -1 if last else lines.find(f"\n--- attempt {number + 1} of ", start)
    return text[start:] if following < 0 else text[start:following]


def decompress(blob: bytes) -> str:
    import gzip  # reading logs back is not on the way of a Run

    return gzip.decompress(blob).decode("utf-8", "replace")


def with_note(blob: bytes, text: str) -> bytes | None:
    """A stored log with `text` as its last line, as `JobLog.note` adds one after any
    unfinished line; None when `blob` is not a stored log (not gzip)."""
    import gzip

    try:
        content = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error):
        return None
    if content and not content.endswith(b"\n"):
        content += b"\n"
    return compress(content + text.encode() + b"\n")
