"""A run's JSON read back: the remote control plane rebuilds the records `show --json` wrote."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.core.record_json import RecordFormatError, run_from_json, run_json
from conveyor.core.records import (
    JOB_STATES,
    RUN_STATUSES,
    AttemptOutcome,
    JobRecord,
    OutputRecord,
    RunId,
    RunRecord,
    TestCounts,
)

TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x3FF), max_size=12)
TIMES = st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False)
DURATIONS = st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False)
DIGESTS = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h)


TESTS = st.none() | st.builds(
    TestCounts,
    passed=st.integers(0, 99),
    failed=st.integers(0, 99),
    skipped=st.integers(0, 99),
    failures=st.lists(TEXT, max_size=3).map(tuple),
)
# Whole seconds: what an ISO 8601 time in the JSON keeps.
SECONDS = st.integers(0, 4_000_000_000).map(float)


@st.composite
def attempts(draw: st.DrawFn, number: int) -> AttemptOutcome:
    return AttemptOutcome(
        number=number,
        status=draw(st.sampled_from(["running", "success", "failed", "handed_back"])),
        runner=draw(st.none() | TEXT),
        started_at=draw(SECONDS),
        finished_at=draw(st.none() | SECONDS),
        duration_s=draw(st.none() | st.integers(0, 10**6).map(lambda ms: ms / 1000)),
        exit_code=draw(st.none() | st.integers(-255, 255)),
        reason=draw(st.none() | TEXT),
        tests=draw(TESTS),
    )


@st.composite
def jobs(draw: st.DrawFn, run_id: RunId, position: int) -> JobRecord:
    name = draw(TEXT.filter(bool))
    return JobRecord(
        id=draw(st.integers(1, 10**6)),
        run_id=run_id,
        position=position,
        name=name,
        base_name=name,
        needs=tuple(draw(st.lists(TEXT, max_size=3))),
        status=draw(st.sampled_from(JOB_STATES)),
        cached=draw(st.booleans()),
        allow_failure=draw(st.booleans()),
        exit_code=draw(st.none() | st.integers(-255, 255)),
        attempts=draw(st.integers(0, 5)),
        reason=draw(st.none() | TEXT),
        started_at=None,
        finished_at=None,
        duration_s=draw(DURATIONS),
        cache_key=draw(st.none() | DIGESTS),
        fingerprint=None,
        log_digest=draw(st.none() | DIGESTS),
        tests=draw(TESTS),
        outputs=tuple(
            draw(
                st.lists(
                    st.builds(OutputRecord, path=TEXT, digest=DIGESTS, size=st.integers(0, 2**40)),
                    max_size=3,
                )
            )
        ),
        attempt_results=tuple(draw(attempts(n)) for n in range(1, draw(st.integers(0, 3)) + 1)),
    )


@st.composite
def runs(draw: st.DrawFn) -> RunRecord:
    run_id = RunId(draw(st.integers(1, 10**12)))
    count = draw(st.integers(0, 4))
    return RunRecord(
        id=run_id,
        project=draw(TEXT),
        status=draw(st.sampled_from(RUN_STATUSES)),
        pipeline_path="conveyor.yaml",
        spec_digest=draw(DIGESTS),
        workspace="/somewhere",
        branch=draw(st.none() | TEXT),
        commit_sha=draw(st.none() | st.text("0123456789abcdef", min_size=40, max_size=40)),
        event=draw(st.sampled_from(["local", "push", "pull_request"])),
        actor=draw(TEXT),
        targets=(),
        host="laptop",
        pid=4242,
        created_at=draw(TIMES),
        started_at=None,
        finished_at=draw(st.none() | TIMES),
        duration_s=draw(DURATIONS),
        error=draw(st.none() | TEXT),
        jobs=tuple(draw(jobs(run_id, i)) for i in range(count)),
    )


@settings(max_examples=60, deadline=None)
@given(runs())
def test_a_run_read_back_from_its_json_renders_the_same_json(run: RunRecord) -> None:
    doc = json.loads(json.dumps(run_json(run)))
    back = run_from_json(doc)
    assert run_json(back) == doc
    assert (back.id, back.status, back.branch, back.commit_sha) == (
        run.id,
        run.status,
        run.branch,
        run.commit_sha,
    )
    assert [(j.name, j.status, j.outputs, j.tests) for j in back.jobs] == [
        (j.name, j.status, j.outputs, j.tests) for j in run.jobs
    ]
    # Each attempt comes back whole, but for its log digest, which the JSON does not carry.
    assert [j.attempt_results for j in back.jobs] == [j.attempt_results for j in run.jobs]
    assert [j.position for j in back.jobs] == list(range(len(run.jobs)))


def _doc() -> dict[str, object]:
    return {
        "id": 7,
        "status": "success",
        "duration_s": 1.5,
        "project": "shop",
        "pipeline": "conveyor.yaml",
        "branch": "main",
        "commit": None,
        "event": "push",
        "actor": "dev@example.com",
        "created_at": "2026-01-01T00:00:00Z",
        "finished_at": None,
        "error": None,
        "jobs": [
            {
                "name": "build",
                "status": "success",
                "cached": False,
                "duration_s": 1.0,
                "exit_code": 0,
                "outputs": [{"path": "out/app", "digest": "sha256:" + "a" * 64, "size": 3}],
                "tests": None,
                "attempts": 1,
                "allow_failure": False,
                "reason": None,
                "needs": [],
                "cache_key": None,
                "attempt_results": [
                    {
                        "number": 1,
                        "status": "runner_lost",
                        "runner": "ci-2",
                        "started_at": "2026-01-01T00:00:00Z",
                        "finished_at": "2026-01-01T00:00:30Z",
                        "duration_s": None,
                        "exit_code": None,
                        "reason": "its runner stopped answering",
                        "tests": None,
                    }
                ],
            }
        ],
    }


def test_a_run_time_is_read_as_utc() -> None:
    assert run_from_json(_doc()).created_at == 1_767_225_600.0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"status": "great"}, "status: 'great' is not one of running, success"),
        ({"id": "7"}, "id: expected int or null, found str"),
        ({"id": True}, "id: expected int or null, found bool"),
        ({"created_at": "yesterday"}, "created_at: 'yesterday' is not an ISO 8601 time"),
        ({"created_at": None}, "created_at: expected a time, found null"),
        ({"jobs": {}}, "jobs: expected a list, found dict"),
        ({"jobs": [3]}, "jobs[0]: expected an object, found int"),
        ({"duration_s": "1s"}, "duration_s: expected a number or null, found str"),
    ],
)
def test_a_run_document_that_does_not_fit_names_the_field(
    change: dict[str, object], named: str
) -> None:
    with pytest.raises(RecordFormatError, match=re.escape(named)):
        run_from_json(_doc() | change)


def test_a_job_that_does_not_fit_is_named_with_its_field() -> None:
    doc = _doc()
    job = dict(doc["jobs"][0])  # type: ignore[index]
    job["cached"] = "no"
    with pytest.raises(RecordFormatError, match="job 'build': cached: expected true or false"):
        run_from_json(doc | {"jobs": [job]})


def _attempt_changed(**change: object) -> dict[str, object]:
    doc = _doc()
    job = dict(doc["jobs"][0])  # type: ignore[index]
    job["attempt_results"] = [dict(job["attempt_results"][0]) | change]
    return doc | {"jobs": [job]}


def test_the_attempts_of_a_job_are_read_back_with_their_runner_and_times() -> None:
    (held,) = run_from_json(_doc()).jobs[0].attempt_results
    assert (held.number, held.status, held.runner) == (1, "runner_lost", "ci-2")
    assert (held.started_at, held.finished_at) == (1_767_225_600.0, 1_767_225_630.0)
    assert held.log_digest is None


def test_a_job_from_a_server_without_attempt_results_has_none() -> None:
    doc = _doc()
    job = dict(doc["jobs"][0])  # type: ignore[index]
    del job["attempt_results"]
    assert run_from_json(doc | {"jobs": [job]}).jobs[0].attempt_results == ()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"number": "1"}, "attempt_results[0].number: expected int or null, found str"),
        ({"started_at": None}, "attempt_results[0].started_at: expected a time, found null"),
        ({"finished_at": "later"}, "attempt_results[0].finished_at: 'later' is not an ISO"),
        ({"runner": 7}, "attempt_results[0].runner: expected str or null, found int"),
        ({"tests": []}, "attempt_results[0].tests: expected an object, found list"),
    ],
)
def test_an_attempt_that_does_not_fit_is_named_with_its_job_and_place(
    change: dict[str, object], named: str
) -> None:
    with pytest.raises(RecordFormatError, match=re.escape(f"job 'build': {named}")):
        run_from_json(_attempt_changed(**change))


def test_attempt_results_that_are_not_a_list_are_named() -> None:
    doc = _doc()
    job = dict(doc["jobs"][0])  # type: ignore[index]
    for bad, named in (
        ({}, "attempt_results: expected a list, found dict"),
        ([5], "attempt_results[0]: expected an object, found int"),
    ):
        with pytest.raises(RecordFormatError, match=re.escape(f"job 'build': {named}")):
            run_from_json(doc | {"jobs": [job | {"attempt_results": bad}]})
