"""The server's background loops stop after the pass they are in, so shutdown can wait for it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from conveyor.server.background import pause, repeat


def test_stopping_waits_for_the_pass_in_progress_and_starts_no_other() -> None:
    started, passes, finished = threading.Event(), [], []

    def work() -> int:
        passes.append(time.monotonic())
        started.set()
        time.sleep(0.3)  # a pass that is still using the database when the server stops
        finished.append(time.monotonic())
        return len(passes)

    async def scenario() -> list[int]:
        stop, seen = asyncio.Event(), []
        loop = asyncio.create_task(repeat(stop, 0.01, work, failed="-", done=seen.append))
        await asyncio.to_thread(started.wait, 5)
        stop.set()
        await asyncio.wait_for(loop, 5)
        return seen

    seen = asyncio.run(scenario())

    assert len(passes) == len(finished) == 1  # the loop ended only once the pass had
    assert seen == [1]


def test_a_failing_pass_is_logged_and_the_next_one_tried(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    async def scenario() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(repeat(stop, 0.01, work, failed="pass failed"))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(loop, 5)

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())

    assert len(calls) >= 3
    assert [r.getMessage() for r in caplog.records] == ["pass failed"]
    assert "the database went away" in caplog.text


def test_a_pause_ends_early_when_stopping_and_says_so() -> None:
    async def scenario() -> tuple[bool, bool, float]:
        stop = asyncio.Event()
        went_on = await pause(stop, 0.01)
        asyncio.get_running_loop().call_later(0.05, stop.set)
        began = time.monotonic()
        stopped = await pause(stop, 30)
        return went_on, stopped, time.monotonic() - began

    went_on, stopped, waited = asyncio.run(scenario())

    assert went_on is True
    assert stopped is False
    assert waited < 5
