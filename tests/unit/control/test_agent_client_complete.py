"""What a runner makes of the server's answer when it reports an attempt's end.

The server may judge a result differently from the runner (a success whose
outputs take another job's file is a failure); the runner shares a result
through the cache only as the server recorded it. Answers a healthy server
rarely gives are made here with httpx's in-process transport; the real
server answers in tests/api/test_agents_api.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conveyor.artifacts.cas import ContentStore
from conveyor.control.agent_client import HttpWorkSource
from conveyor.engine.dispatch_rules import AttemptResult


def source(tmp_path: Path, answers: list[httpx.Response], said: list[str]) -> HttpWorkSource:
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/attempts/7/complete"
        sent.append(json.loads(request.content))
        return answers.pop(0)

    return HttpWorkSource(
        server="http://conveyor.test",
        token="cvy_" + "x" * 40,
        cas=ContentStore(tmp_path / "cas"),
        work_dir=tmp_path,
        progress=said.append,
        transport=httpx.MockTransport(handler),
    )


@pytest.mark.parametrize(
    ("answer", "recorded", "line"),
    [
        ({"accepted": True, "status": "success"}, "success", "attempt 7 finished: success"),
        (
            {"accepted": True, "status": "failed"},
            "failed",
            "attempt 7 finished: failed (sent as success)",
        ),
        # A server from before the answer said how it judged: recorded as sent.
        ({"accepted": True}, "success", "attempt 7 finished: success"),
        (
            {"accepted": False, "status": None},
            None,
            "attempt 7 finished: success, refused: no longer held",
        ),
        # A status this runner does not know is not taken for a success.
        (
            {"accepted": True, "status": "superseded"},
            None,
            "attempt 7 finished: superseded (sent as success)",
        ),
    ],
    ids=["as-sent", "judged-failed", "older-server", "refused", "unknown-status"],
)
def test_complete_returns_the_status_the_server_recorded(
    tmp_path: Path, answer: dict[str, object], recorded: str | None, line: str
) -> None:
    said: list[str] = []
    work = source(tmp_path, [httpx.Response(200, json=answer)], said)

    assert work.complete(7, AttemptResult("success", exit_code=0)) == recorded
    assert said == [line]


def test_an_answer_lost_on_the_way_is_asked_again_and_taken(tmp_path: Path) -> None:
    said: list[str] = []
    answers = [
        httpx.Response(503, json={"detail": "restarting"}),
        httpx.Response(200, json={"accepted": True, "status": "success"}),
    ]
    work = source(tmp_path, answers, said)

    assert work.complete(7, AttemptResult("success", exit_code=0)) == "success"
    assert said[-1] == "attempt 7 finished: success"
