"""The server's background loops, stopped by one event so that shutdown waits for their work.

A pass runs in a worker thread (it uses the database). Cancelling the task
that awaits it would not stop the thread, and the database would be closed
under it; so a loop is asked to stop instead, and ends after its pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from conveyor.server.logs import LOGGER

log = logging.getLogger(LOGGER)

_T = TypeVar("_T")


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, less when the server is stopping; whether to go on."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return True
    return False


async def repeat(
    stop: asyncio.Event,
    every_s: float,
    work: Callable[[], _T],
    *,
    failed: str,
    done: Callable[[_T], None] = lambda _result: None,
) -> None:
    """Run `work` in a thread every `every_s` seconds until `stop` is set.

    A failing pass is logged with `failed` and the next one tried; `done`
    gets what each pass returned.
    """
    while not stop.is_set():
        try:
            result = await run_in_threadpool(work)
        except Exception:
            log.exception(failed)
        else:
            done(result)
        await pause(stop, every_s)
