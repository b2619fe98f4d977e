"""Writing results: to stdout when it may be gone (a closed pipe, a full disk), or to --output."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


def emit(text: str) -> bool:
    """Write `text` and a newline to stdout; False (and stdout discarded) when it cannot.

    A character stdout's encoding lacks (a `●` on an ASCII terminal) is written
    as `?`, not raised.
    """
    try:
        try:
            sys.stdout.write(text + "\n")
        except UnicodeEncodeError:
            encoding = sys.stdout.encoding or "ascii"
            sys.stdout.write((text + "\n").encode(encoding, "replace").decode(encoding))
        sys.stdout.flush()
    except OSError:
        discard_stdout()
        return False
    return True


def discard_stdout() -> None:
    """Point stdout at /dev/null so nothing more fails, not even the flush at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def output_file(path: Path, *, make_parents: bool = False) -> Path:
    """`path` (from `--output`) when a file can be written there; UsageError (exit 2) if not.

    Checked before any work: a directory, a missing (unless `make_parents`)
    or read-only directory are the caller's to fix, not a fault of Conveyor.
    """
    from conveyor.core.errors import UsageError

    if path.is_dir():
        raise UsageError(f"--output {path} is a directory; name the file, like {path / 'NAME'}")
    parent = path.absolute().parent
    while make_parents and not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the first that exists is the one to write in
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist; create it first"
        raise UsageError(f"--output {path}: {parent} {what}")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(parent, os.W_OK)
    if not writable:  # an existing file (/dev/null, say) needs no write access to its directory
        raise UsageError(f"--output {path} cannot be written here (permission denied)")
    return path


def write_output(path: Path, text: str) -> None:
    """Write `text` to the file `--output` named (checked); an OS refusal is exit 2."""
    from conveyor.core.errors import UsageError

    try:
        output_file(path).write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write --output {path}: {exc.strerror or exc}") from None
