"""The remote control plane over httpx's own in-process transport: errors, paging, logs, files.

The real server answers these in `tests/api/test_remote_cli.py`; here the
answers a healthy server rarely gives (a 500, a 403, a wrong file) are made
on purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conveyor.cli.errors import BAD_INPUT, INFRASTRUCTURE, WORK_FAILED, exit_code_for
from conveyor.control.remote import RemoteControlPlane, ServerUnavailable
from conveyor.core.errors import ArtifactError, ConveyorError, NotFound, UsageError

URL = "http://conveyor.test:8080"
TOKEN = "cvy_" + "s3cret" * 8

Handler = Callable[[httpx.Request], httpx.Response]


def plane(handler: Handler) -> RemoteControlPlane:
    return RemoteControlPlane(URL, TOKEN, transport=httpx.MockTransport(handler))


def problem(status: int, detail: str) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"type": "urn:conveyor:problem:x", "status": status, "detail": detail}
        return httpx.Response(
            status, json=body, headers={"content-type": "application/problem+json"}
        )

    return answer


def run_doc(run_id: int, status: str = "success") -> dict[str, object]:
    return {
        "id": run_id,
        "status": status,
        "duration_s": 0.5,
        "project": "shop",
        "pipeline": "conveyor.yaml",
        "branch": "main",
        "commit": None,
        "event": "local",
        "actor": "dev@example.com",
        "created_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:01Z",
        "error": None,
        "jobs": [],
    }


def _raised(handler: Handler, call: Callable[[RemoteControlPlane], object]) -> ConveyorError:
    with pytest.raises(ConveyorError) as caught:
        call(plane(handler))
    return caught.value


def test_every_request_carries_the_token_and_the_cli_version() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=run_doc(3))

    plane(answer).get_run("3")
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["User-Agent"].startswith("conveyor/")
    assert seen[0].url.path == "/api/v1/runs/3"


def test_a_refused_token_is_bad_input_naming_conveyor_token_but_never_the_token() -> None:
    error = _raised(problem(401, "the bearer token is unknown"), lambda p: p.list_runs())
    assert exit_code_for(error) == BAD_INPUT
    assert "CONVEYOR_TOKEN" in str(error)
    assert URL in str(error)
    assert TOKEN not in str(error)


def test_a_forbidden_read_is_a_refusal_with_exit_1() -> None:
    error = _raised(problem(403, "a viewer may not runs.read"), lambda p: p.get_run("1"))
    assert exit_code_for(error) == WORK_FAILED
    assert "a viewer may not runs.read" in str(error)


def test_a_missing_run_is_not_found_with_the_servers_words() -> None:
    error = _raised(problem(404, "there is no run 9"), lambda p: p.get_run("9"))
    assert isinstance(error, NotFound)
    assert str(error) == "there is no run 9"


def test_other_bad_requests_are_bad_input_with_the_problems_detail() -> None:
    error = _raised(problem(400, "status: 'great' is not a run status"), lambda p: p.list_runs())
    assert isinstance(error, UsageError)
    assert exit_code_for(error) == BAD_INPUT
    assert "'great' is not a run status" in str(error)


def test_a_failing_server_is_an_infrastructure_fault_naming_its_url() -> None:
    error = _raised(problem(503, "the store is unavailable"), lambda p: p.list_runs())
    assert isinstance(error, ServerUnavailable)
    assert exit_code_for(error) == INFRASTRUCTURE
    assert URL in str(error)
    assert "503" in str(error)
    assert TOKEN not in str(error)


def test_a_server_that_answers_no_problem_json_is_still_mapped_by_status() -> None:
    error = _raised(
        lambda r: httpx.Response(502, text="<html>bad gateway</html>"), lambda p: p.list_runs()
    )
    assert exit_code_for(error) == INFRASTRUCTURE
    assert "Bad Gateway" in str(error)


def test_an_unreachable_server_is_an_infrastructure_fault_naming_its_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = _raised(refuse, lambda p: p.list_runs())
    assert exit_code_for(error) == INFRASTRUCTURE
    assert f"cannot reach the server at {URL}" in str(error)


def test_a_run_the_cli_cannot_read_is_an_infrastructure_fault_naming_the_field() -> None:
    error = _raised(
        lambda r: httpx.Response(200, json=run_doc(1, "great")), lambda p: p.get_run("1")
    )
    assert exit_code_for(error) == INFRASTRUCTURE
    assert "status: 'great'" in str(error)


def test_a_run_reference_that_is_no_id_is_refused_before_asking_the_server() -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    error = _raised(never, lambda p: p.get_run("yesterday"))
    assert isinstance(error, NotFound)
    assert "'yesterday' is not a run id" in str(error)


def test_latest_is_the_newest_run_the_server_lists() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["limit"] == "1"
        return httpx.Response(200, json={"runs": [run_doc(12)], "next_cursor": "12"})

    assert plane(answer).get_run("latest").id == 12


def test_latest_on_a_server_without_runs_is_not_found() -> None:
    error = _raised(
        lambda r: httpx.Response(200, json={"runs": [], "next_cursor": None}),
        lambda p: p.get_run(None),
    )
    assert isinstance(error, NotFound)
    assert f"no runs yet on {URL}" in str(error)


def test_a_long_listing_follows_the_cursor_page_by_page() -> None:
    asked: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        start = int(params.get("cursor", "1000"))
        ids = range(start - 1, start - 1 - int(params["limit"]), -1)
        return httpx.Response(
            200, json={"runs": [run_doc(i) for i in ids], "next_cursor": str(ids[-1])}
        )

    found = plane(answer).list_runs(limit=250, status="success", before=1000)
    assert [r.id for r in found] == list(range(999, 749, -1))
    assert asked == [
        {"limit": "200", "cursor": "1000", "status": "success"},
        {"limit": "50", "cursor": "800", "status": "success"},
    ]


def test_a_log_still_being_written_is_reported_live() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/runs/4":
            return httpx.Response(200, json=run_doc(4, "running"))
        assert request.url.raw_path == b"/api/v1/runs/4/jobs/test%20%28python%3D3.12%29/log"
        return httpx.Response(200, text="half\n", headers={"X-Conveyor-Log-Complete": "false"})

    assert plane(answer).job_log("4", "test (python=3.12)") == ("half\n", True)


def test_a_downloaded_artifact_whose_digest_differs_is_not_written(tmp_path: Path) -> None:
    wanted = "sha256:" + hashlib.sha256(b"hello\n").hexdigest()
    served = plane(lambda r: httpx.Response(200, content=b"tampered\n"))
    with pytest.raises(ArtifactError, match="nothing was written"):
        served.fetch_artifact(wanted, tmp_path / "out" / "app.txt")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_downloaded_artifact_is_written_when_its_digest_holds(tmp_path: Path) -> None:
    wanted = "sha256:" + hashlib.sha256(b"hello\n").hexdigest()
    plane(lambda r: httpx.Response(200, content=b"hello\n")).fetch_artifact(
        wanted, tmp_path / "app.txt"
    )
    assert (tmp_path / "app.txt").read_bytes() == b"hello\n"
    assert [p.name for p in tmp_path.iterdir()] == ["app.txt"]


def test_an_artifact_the_server_lacks_is_reported_unavailable() -> None:
    missing = "sha256:" + "0" * 64
    assert plane(problem(404, "no artifact")).artifact_available(missing) is False
    assert plane(lambda r: httpx.Response(200, content=b"x")).artifact_available(missing) is True


def test_commands_the_api_does_not_serve_yet_are_refused_by_name() -> None:
    error = _raised(problem(500, "unused"), lambda p: p.explain("1", "build"))
    assert isinstance(error, UsageError)
    assert str(error).startswith("`conveyor explain` is not available against a server yet")
    error = _raised(problem(500, "unused"), lambda p: p.reconcile(timeout_s=1.0))
    assert "`conveyor reconcile`" in str(error)
