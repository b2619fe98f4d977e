"""The event loop a Run's scheduler turns: running jobs, and messages from other threads.

One thread waits on every running job's execution at once when the executor
offers `Watchable` ones (a local process's output and exit, in one
selector), so a job's end is acted on with no hand-off between threads.
Executions that cannot be watched are waited on in worker threads, which,
like any other thread or a signal handler, hand what the loop is to do next
to `post`. Whatever happens, no job's process or descriptor outlives the
loop: a job the caller gives up on is abandoned (killed, reaped, released).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, ParamSpec, TypeGuard

from conveyor.executors.base import ExecResult, Execution, Watchable

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

_P = ParamSpec("_P")
_WAKE = object()  # the selector's data for the loop's own wake-up pipe
# The longest the loop sleeps without looking at the clock.
_MAX_SLEEP_S = 1.0

OnResult = Callable[[str, ExecResult], None]
OnFault = Callable[[str, Exception], None]


class JobLoop:
    """Waits on the executions of named jobs; call `turn()` from one thread, inside `with`.

    `on_result(name, result)` and `on_fault(name, error)` are called on the
    loop's thread when a job's execution ends or fails.
    """

    def __init__(self, *, max_workers: int, on_result: OnResult, on_fault: OnFault) -> None:
        self._on_result = on_result
        self._on_fault = on_fault
        self._workers = _Workers(max_workers)
        # What other threads (and a cancel request) ask the loop to do, on its thread.
        self._inbox: deque[Callable[[], None]] = deque()  # appends and pops are atomic
        # The wake-up pipe, open inside `with`. Reentrant: a signal handler may post
        # while the main thread holds it.
        self._wake_lock = threading.RLock()
        self._wake_r = self._wake_w = -1
        self._selector: selectors.BaseSelector | None = None
        self._watched: dict[Watchable, str] = {}
        self._kinds: dict[type, bool] = {}

    def __enter__(self) -> JobLoop:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(wake_r, selectors.EVENT_READ, _WAKE)
        with self._wake_lock:
            self._wake_r, self._wake_w = wake_r, wake_w
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        try:
            if kind is not None:
                self.abandon_all()
            self._workers.shutdown()
        finally:
            with self._wake_lock:  # its number may be reused by the next file opened
                wake_r, wake_w = self._wake_r, self._wake_w
                self._wake_r = self._wake_w = -1
                os.close(wake_w)
                os.close(wake_r)
            assert self._selector is not None
            self._selector.close()

    def post(self, step: Callable[[], None]) -> None:
        """Have `step` run on the loop's thread; safe from any thread or a signal handler."""
        self._inbox.append(step)
        with self._wake_lock:
            if self._wake_w >= 0:  # after the loop, a late request has nothing to wake
                with contextlib.suppress(BlockingIOError):
                    os.write(self._wake_w, b"\0")  # a full pipe already wakes the loop

    def in_worker(self, work: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Run `work` in a worker thread (made on first use)."""
        self._workers.submit(work, *args, **kwargs)

    def watch(self, name: str, execution: Execution) -> None:
        """Wait on `execution` of job `name`: in this loop if it is watchable, else in a worker."""
        if not self._watchable(execution):
            self.in_worker(self._wait_in_worker, name, execution)
            return
        assert self._selector is not None, "inside `with`"
        self._watched[execution] = name
        execution.attach(self._selector)
        self._advance(execution, ())

    def abandon(self, execution: Execution) -> None:
        """Give up on a job's execution after a fault: nothing of it is left running or open."""
        if self._watchable(execution):
            self._give_up(execution)
        else:
            with contextlib.suppress(Exception):
                execution.cancel()  # its worker thread waits for the end

    def abandon_all(self) -> None:
        """Abandon every execution the loop watches (it failed, or is being left)."""
        for execution in list(self._watched):
            self._give_up(execution)

    def _give_up(self, execution: Watchable) -> None:
        with contextlib.suppress(Exception):
            execution.abandon()
        self._forget(execution)

    def turn(self, idle: Callable[[], float | None]) -> None:
        """Act on what is ready; with nothing ready, call `idle` and sleep until there is.

        `idle` does what waits for a quiet moment and returns when the caller
        next needs a turn (a `time.monotonic()`), or None.
        """
        assert self._selector is not None, "inside `with`"
        events = self._selector.select(0)
        if not events:
            events = self._selector.select(self._sleep_time(idle()))
        ready: dict[Watchable, list[int]] = {}
        for key, _ in events:
            if key.data is _WAKE:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
                while self._inbox:
                    self._inbox.popleft()()
            else:
                ready.setdefault(key.data, []).append(key.fd)
        for execution, fds in ready.items():
            self._advance(execution, fds)
        now = time.monotonic()
        for execution in [e for e in self._watched if (w := e.wake_at()) is not None and w <= now]:
            self._advance(execution, ())

    def _sleep_time(self, caller_wake: float | None) -> float:
        wakes = [w for execution in self._watched if (w := execution.wake_at()) is not None]
        if caller_wake is not None:
            wakes.append(caller_wake)
        if not wakes:
            return _MAX_SLEEP_S
        return min(_MAX_SLEEP_S, max(0.0, min(wakes) - time.monotonic()))

    def _advance(self, execution: Watchable, fds: Iterable[int]) -> None:
        name = self._watched.get(execution)
        if name is None:
            return  # given up after a fault, earlier in this turn
        try:
            result = execution.advance(fds)
        except Exception as exc:  # noqa: BLE001 - a fault in one job must not stop the loop
            self._on_fault(name, exc)
            return
        if result is not None:
            del self._watched[execution]
            self._on_result(name, result)

    def _forget(self, execution: Watchable) -> None:
        """Stop watching: what it left in the selector would keep waking the loop."""
        self._watched.pop(execution, None)
        assert self._selector is not None
        for key in list(self._selector.get_map().values()):
            if key.data is execution:
                self._selector.unregister(key.fd)

    def _watchable(self, execution: Execution) -> TypeGuard[Watchable]:
        # Checking a protocol inspects the class each time (about 30 µs): once per class.
        kind = type(execution)
        known = self._kinds.get(kind)
        if known is None:
            known = self._kinds[kind] = isinstance(execution, Watchable)
        return known

    def _wait_in_worker(self, name: str, execution: Execution) -> None:
        try:
            result = execution.wait()
        except Exception as exc:  # noqa: BLE001 - reported like any fault of the job
            self.post(partial(self._on_fault, name, exc))
        else:
            self.post(partial(self._on_result, name, result))


class _Workers:
    """Threads for what the loop does not do itself, made on first use.

    Many Runs need none (every job watched, light and not cached), so the
    thread pool, and the import of `concurrent.futures`, wait until then.
    """

    def __init__(self, max_workers: int) -> None:
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, work: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="job")
        self._pool.submit(work, *args, **kwargs)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def import_workers() -> None:
    """Import what worker threads need ahead of the first (a warm-up)."""
    import concurrent.futures  # noqa: F401
