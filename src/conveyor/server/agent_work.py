"""The server's background work for agents: noticing claimable jobs, and sweeping leases.

Neither keeps anything only this process knows. `WorkSignal` looks at the
queue in the database a few times a second and wakes the long polls waiting
in this process, so a thousand idle agents cost one cheap query per tick,
not one claim each; a job submitted through another replica is seen the same
way. `sweep_leases` runs `LeaseSweeper.run_once()` every few seconds; several
replicas may sweep at once, since expired attempts are claimed with SKIP
LOCKED.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from conveyor.engine.dispatch import LeaseSweeper
from conveyor.server.background import pause, repeat
from conveyor.server.logs import LOGGER
from conveyor.server.state import ServerState
from conveyor.store import queue

# How often the queue is looked at while long polls wait: half of it is the mean added delay.
TICK_S = 0.05
SWEEP_EVERY_S = 1.0

log = logging.getLogger(LOGGER)


class WorkSignal:
    """Wakes waiting long polls when the queue holds claimable jobs."""

    def __init__(self, state: ServerState, *, tick_s: float = TICK_S) -> None:
        self._state = state
        self._tick_s = tick_s
        self._cond = asyncio.Condition()
        self._waiting = 0

    async def wait(self, timeout_s: float) -> bool:
        """Wait until work may be claimable (True) or `timeout_s` passed (False)."""
        async with self._cond:
            self._waiting += 1
            try:
                await asyncio.wait_for(self._cond.wait(), timeout_s)
            except TimeoutError:
                return False
            finally:
                self._waiting -= 1
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Look at the queue every tick while someone waits, until `stop` is set."""
        while await pause(stop, self._tick_s):
            if not self._waiting:
                continue
            try:
                found = await run_in_threadpool(self._claimable)
            except Exception:
                log.exception("could not look at the work queue; trying again")
                continue
            if found:
                async with self._cond:
                    # A full batch may mean more: wake everyone; else one waiter per job.
                    self._cond.notify(self._waiting if found >= queue.BATCH else found)

    def _claimable(self) -> int:
        state = self._state
        with state.db.read() as tx:
            return len(queue.locked_batch(tx, state.clock.now()))


async def sweep_leases(
    state: ServerState, stop: asyncio.Event, *, every_s: float = SWEEP_EVERY_S
) -> None:
    """Return expired leases to the queue every `every_s` seconds, until `stop` is set."""

    def counted(expired: int) -> None:
        if expired:
            state.metrics.leases_expired.inc(expired)
            log.info("leases expired", extra={"count": expired})

    sweeper = LeaseSweeper(dispatch=state.dispatch)
    failed = "sweeping expired leases failed; trying again"
    await repeat(stop, every_s, sweeper.run_once, failed=failed, done=counted)
