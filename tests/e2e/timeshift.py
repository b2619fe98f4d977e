"""Running `conveyor` at another time: the clock injected into a real process.

Conveyor reads wall time through its Clock, which asks `time.time()`. A
`sitecustomize` module on the process's PYTHONPATH moves that by a fixed
number of seconds, so a test can run a command hours or days later without
waiting and without anything in the product that could move its clock.
"""

from __future__ import annotations

import time
from pathlib import Path

SITECUSTOMIZE = """\
import os
import time

_shift = float(os.environ.get("E2E_TIME_SHIFT_S") or 0)
if _shift:
    _real_time = time.time
    time.time = lambda: _real_time() + _shift
"""


def later(side: Path, seconds: float) -> dict[str, str]:
    """Environment variables that run a `conveyor` process `seconds` in the future."""
    where = side / "timeshift"
    where.mkdir(exist_ok=True)
    (where / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": str(where), "E2E_TIME_SHIFT_S": repr(seconds)}


def at(side: Path, epoch: float) -> dict[str, str]:
    """Environment variables that run a `conveyor` process as if it were `epoch` now."""
    return later(side, epoch - time.time())
