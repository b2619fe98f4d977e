"""Writing results to stdout when stdout may be gone (a closed pipe, a full disk)."""

from __future__ import annotations

import contextlib
import os
import sys


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
