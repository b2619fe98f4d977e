"""Remote Runs through the API: submit a checkout, follow it, cancel it, retry its failed jobs.

A real server (uvicorn in a thread, on SQLite or a PostgreSQL schema) and a
runner in the same process (`AgentLoop` over `InProcessSource`) on the same
database and CAS; the CLI runs as a real subprocess against the server.
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from conveyor.engine.agent_loop import AgentLoop, InProcessSource
from conveyor.engine.bundles import bundle_paths, write_bundle
from conveyor.executors.local import LocalExecutor
from conveyor.server.settings import Settings
from conveyor.server.state import ServerState
from conveyor.store import events as event_log

from .conftest import Issue, bearer
from .test_server_process import cli

DAG = """\
version: 1
jobs:
  build:
    run: mkdir -p out && echo hello > out/app.txt && echo built
    outputs: [out/app.txt]
  test:
    needs: [build]
    run: cat out/app.txt && echo tested
  lint:
    run: echo linted
"""
FLAKY = """\
version: 1
jobs:
  build:
    run: echo built >> built.log && echo built
  check:
    needs: [build]
    run: test -f ok || (echo not yet && exit 3)
"""
SLOW = """\
version: 1
jobs:
  wait:
    run: sleep 30
"""


LIMIT = 1 << 20


@pytest.fixture
def settings(tmp_path: Path, migrated_url: str) -> Settings:
    """The server's settings, with an upload limit small enough to pass in a test."""
    return Settings(state_dir=tmp_path / "state", database_url=migrated_url, max_upload_bytes=LIMIT)


def _state(app: FastAPI) -> ServerState:
    state: ServerState = app.state.conveyor
    return state


@pytest.fixture
def runner(app: FastAPI, client: httpx.Client, tmp_path: Path) -> Iterator[AgentLoop]:
    """One runner in this process, claiming from the server's database."""
    state = _state(app)
    agent = state.dispatch.register_agent(name="runner-1", labels=(), concurrency=2)
    loop = AgentLoop(
        source=InProcessSource(state.dispatch, agent.id),
        executor=LocalExecutor(),
        cas=state.cas,
        work_dir=tmp_path / "runner",
        heartbeat_s=0.2,
        poll_s=0.05,
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    yield loop
    loop.stop(hand_back=False)
    thread.join(30)
    assert not loop.errors


def _checkout(root: Path, spec: str) -> Path:
    root.mkdir(parents=True)
    (root / "conveyor.yaml").write_text(spec)
    (root / "README").write_text("hello\n")
    return root


def _bundle(root: Path) -> bytes:
    out = io.BytesIO()
    write_bundle(root, bundle_paths(root, root / ".conveyor", "conveyor.yaml"), out)
    return out.getvalue()


def _tar(members: dict[str, bytes | tarfile.TarInfo]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in members.items():
            if isinstance(content, tarfile.TarInfo):
                tar.addfile(content)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _submit(client: httpx.Client, token: str, bundle: bytes, **options: object) -> httpx.Response:
    return client.post(
        "/api/v1/runs",
        headers=bearer(token),
        files={"bundle": ("bundle.tar.gz", bundle, "application/gzip")},
        data={"options": json.dumps(options)},
    )


def _wait(client: httpx.Client, token: str, run_id: int) -> dict[str, object]:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        doc: dict[str, object] = client.get(f"/api/v1/runs/{run_id}", headers=bearer(token)).json()
        if doc["status"] != "running":
            return doc
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


def _jobs(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    jobs = doc["jobs"]
    assert isinstance(jobs, list)
    return {job["name"]: job for job in jobs}


def _stored_bundles(app: FastAPI) -> int:
    return sum(1 for _ in _state(app).cas.iter_blobs())


# --- the CLI ---------------------------------------------------------------------


def test_run_remote_json_succeeds_with_the_same_jobs_as_a_local_run(
    client: httpx.Client, issue: Issue, runner: AgentLoop, tmp_path: Path
) -> None:
    ws = _checkout(tmp_path / "ws", DAG)
    server = {"CONVEYOR_SERVER": str(client.base_url), "CONVEYOR_TOKEN": issue("developer")}

    remote = cli(ws, "run", "--remote", "--json", **server)
    local = cli(ws, "run", "--json")

    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    doc, here = json.loads(remote.stdout), json.loads(local.stdout)
    assert doc["status"] == "success"
    assert {j["name"]: j["status"] for j in doc["jobs"]} == {
        j["name"]: j["status"] for j in here["jobs"]
    }
    assert "submitted" in remote.stderr


def test_run_remote_exits_1_when_a_job_fails_and_prints_plain_lines(
    client: httpx.Client, issue: Issue, runner: AgentLoop, tmp_path: Path
) -> None:
    ws = _checkout(tmp_path / "ws", FLAKY)
    server = {"CONVEYOR_SERVER": str(client.base_url), "CONVEYOR_TOKEN": issue("developer")}

    done = cli(ws, "run", "--remote", **server)

    assert done.returncode == 1, done.stderr
    assert "build: success" in done.stdout
    assert "check: failed" in done.stdout


def test_run_remote_says_each_attempt_that_failed_and_was_retried(
    client: httpx.Client, issue: Issue, runner: AgentLoop, tmp_path: Path
) -> None:
    mark = tmp_path / "tried"
    spec = f"""\
version: 1
env: {{MARK: '{mark}'}}
jobs:
  flaky:
    run: 'if [ -e "$MARK" ]; then echo again; else touch "$MARK"; exit 3; fi'
    retry: {{max: 1, backoff: 0s}}  # due at once: this server's clock is frozen
"""
    ws = _checkout(tmp_path / "ws", spec)
    server = {"CONVEYOR_SERVER": str(client.base_url), "CONVEYOR_TOKEN": issue("developer")}

    done = cli(ws, "run", "--remote", **server)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    said = [line for line in lines if line.startswith("flaky: attempt")]
    # Said even when the retry came and went between two looks at the Run.
    assert len(said) == 1, done.stdout
    assert said[0].startswith("flaky: attempt 1  failed")
    assert said[0].endswith("on runner-1 - exited with code 3")
    assert "flaky: success" in lines
    assert lines.index(said[0]) < lines.index("flaky: success")


def test_run_remote_no_wait_returns_the_run_id_at_once(
    client: httpx.Client, issue: Issue, tmp_path: Path
) -> None:
    ws = _checkout(tmp_path / "ws", SLOW)
    server = {"CONVEYOR_SERVER": str(client.base_url), "CONVEYOR_TOKEN": issue("developer")}

    done = cli(ws, "run", "--remote", "--no-wait", "--json", **server)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "running"


def test_run_remote_without_a_server_is_bad_input_naming_the_variables(tmp_path: Path) -> None:
    ws = _checkout(tmp_path / "ws", DAG)

    done = cli(ws, "run", "--remote")

    assert done.returncode == 2
    assert "CONVEYOR_SERVER" in done.stderr


def test_cancel_by_cli_cancels_on_the_server_and_a_second_cancel_is_bad_input(
    client: httpx.Client, issue: Issue, tmp_path: Path
) -> None:
    ws = _checkout(tmp_path / "ws", SLOW)
    token = issue("developer")
    server = {"CONVEYOR_SERVER": str(client.base_url), "CONVEYOR_TOKEN": token}
    run_id = _submit(client, token, _bundle(ws)).json()["id"]

    canceled = cli(ws, "cancel", str(run_id), "--json", **server)
    again = cli(ws, "cancel", str(run_id), **server)

    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["status"] == "canceled"
    assert again.returncode == 2
    assert "already finished" in again.stderr


def test_cancel_of_a_local_workspace_is_refused_with_the_way_to_stop_it(tmp_path: Path) -> None:
    ws = _checkout(tmp_path / "ws", DAG)

    done = cli(ws, "cancel", "1")

    assert done.returncode == 2
    assert "Ctrl-C" in done.stderr


# --- the API ---------------------------------------------------------------------


def test_a_viewer_cannot_cancel_and_nothing_changes(
    app: FastAPI, client: httpx.Client, issue: Issue, tmp_path: Path
) -> None:
    run_id = _submit(client, issue("developer"), _bundle(_checkout(tmp_path / "ws", SLOW))).json()[
        "id"
    ]
    viewer = issue("viewer")

    refused = client.post(f"/api/v1/runs/{run_id}/cancel", headers=bearer(viewer))

    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/v1/runs/{run_id}", headers=bearer(viewer)).json()["status"] == (
        "running"
    )
    kinds = [e.kind for e in event_log.for_subject(_state(app).db, f"run/{run_id}", limit=100)]
    assert "run.cancel_requested" not in kinds


def test_a_developers_cancel_is_recorded_with_its_actor(
    app: FastAPI, client: httpx.Client, issue: Issue, tmp_path: Path
) -> None:
    token = issue("developer", name="dev@example.com")
    run_id = _submit(client, token, _bundle(_checkout(tmp_path / "ws", SLOW))).json()["id"]

    done = client.post(f"/api/v1/runs/{run_id}/cancel", headers=bearer(token))

    assert done.status_code == 202
    assert done.json()["status"] == "canceled"
    found = event_log.for_subject(_state(app).db, f"run/{run_id}", limit=100)
    assert [e.actor for e in found if e.kind == "run.cancel_requested"] == ["dev@example.com"]
    assert [e.actor for e in found if e.kind == "run.started"] == ["dev@example.com"]


def test_retry_runs_only_the_failed_job_again(
    client: httpx.Client, issue: Issue, runner: AgentLoop, tmp_path: Path
) -> None:
    token = issue("developer")
    ws = _checkout(tmp_path / "ws", FLAKY.replace("test -f ok", "test -f ok.$CONVEYOR_RUN_ID"))
    first = _wait(client, token, _submit(client, token, _bundle(ws)).json()["id"])
    assert first["status"] == "failed"

    made = client.post(f"/api/v1/runs/{first['id']}/retry", headers=bearer(token))
    second = _wait(client, token, made.json()["id"])

    assert made.status_code == 201
    jobs = _jobs(second)
    assert jobs["build"]["status"] == "cached"
    assert jobs["build"]["cached"] is True
    assert jobs["check"]["status"] == "failed"
    log = client.get(f"/api/v1/runs/{second['id']}/jobs/check/log", headers=bearer(token))
    assert "not yet" in log.text


def test_retry_of_a_run_that_succeeded_is_a_conflict(
    client: httpx.Client, issue: Issue, runner: AgentLoop, tmp_path: Path
) -> None:
    token = issue("developer")
    run = _wait(
        client, token, _submit(client, token, _bundle(_checkout(tmp_path / "ws", DAG))).json()["id"]
    )

    refused = client.post(f"/api/v1/runs/{run['id']}/retry", headers=bearer(token))

    assert refused.status_code == 409
    assert "has no failed job to retry" in refused.json()["detail"]


@pytest.mark.parametrize(
    "member",
    ["../escape.txt", "/etc/evil", "a/../../b"],
)
def test_a_bundle_member_outside_the_checkout_is_refused_and_nothing_is_stored(
    app: FastAPI, client: httpx.Client, issue: Issue, member: str
) -> None:
    token = issue("developer")
    before = _stored_bundles(app)
    bundle = _tar({"conveyor.yaml": DAG.encode(), member: b"owned"})

    refused = _submit(client, token, bundle)

    assert refused.status_code == 400
    assert member[:20] in refused.json()["detail"]
    assert _stored_bundles(app) == before
    assert client.get("/api/v1/runs", headers=bearer(token)).json()["runs"] == []


def test_a_symlink_leading_outside_and_a_device_are_refused(
    client: httpx.Client, issue: Issue
) -> None:
    token = issue("developer")
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE

    escaped = _submit(client, token, _tar({"conveyor.yaml": DAG.encode(), "link": link}))
    special = _submit(client, token, _tar({"conveyor.yaml": DAG.encode(), "dev": device}))

    assert escaped.status_code == 400
    assert "leads outside the checkout" in escaped.json()["detail"]
    assert special.status_code == 400
    assert "device" in special.json()["detail"]


def test_an_upload_over_the_limit_is_413_and_nothing_is_stored(
    app: FastAPI, client: httpx.Client, issue: Issue
) -> None:
    token = issue("developer")

    refused = _submit(client, token, b"\0" * (LIMIT + 1))

    assert refused.status_code == 413
    assert _stored_bundles(app) == 0


def test_a_chunked_upload_over_the_limit_is_413_too(
    app: FastAPI, client: httpx.Client, issue: Issue
) -> None:
    boundary = "conveyor-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="b.tgz"\r\n'
        "Content-Type: application/gzip\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(LIMIT // 65536 + 2):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    refused = client.post(
        "/api/v1/runs",
        headers={
            **bearer(issue("developer")),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        content=body(),
    )

    assert refused.status_code == 413
    assert "CONVEYOR_MAX_UPLOAD" in refused.json()["detail"]
    assert _stored_bundles(app) == 0


def test_a_bad_conveyor_yaml_in_the_bundle_is_422_with_its_line_and_column(
    app: FastAPI, client: httpx.Client, issue: Issue
) -> None:
    token = issue("developer")
    spec = textwrap.dedent(
        """\
        version: 1
        jobs:
          build:
            runn: echo hi
        """
    )

    refused = _submit(client, token, _tar({"conveyor.yaml": spec.encode()}))

    assert refused.status_code == 422
    assert "conveyor.yaml:4:" in refused.json()["detail"]
    assert _stored_bundles(app) == 0


def test_a_body_that_is_not_a_bundle_is_400(client: httpx.Client, issue: Issue) -> None:
    refused = _submit(client, issue("developer"), b"not a tarball")

    assert refused.status_code == 400
    assert "not a readable .tar.gz" in refused.json()["detail"]


def test_bad_options_name_the_field(client: httpx.Client, issue: Issue, tmp_path: Path) -> None:
    bundle = _bundle(_checkout(tmp_path / "ws", DAG))

    refused = _submit(client, issue("developer"), bundle, keep_going="sometimes")

    assert refused.status_code == 400
    assert "options.keep_going" in refused.json()["detail"]


def test_a_viewer_cannot_create_a_run(client: httpx.Client, issue: Issue, tmp_path: Path) -> None:
    refused = _submit(client, issue("viewer"), _bundle(_checkout(tmp_path / "ws", DAG)))

    assert refused.status_code == 403


def test_if_conditions_see_the_branch_sent_with_the_bundle(
    client: httpx.Client, issue: Issue, tmp_path: Path
) -> None:
    spec = DAG.replace("  lint:\n", "  lint:\n    if: branch == 'main'\n")
    bundle = _bundle(_checkout(tmp_path / "ws", spec))

    made = _submit(client, issue("developer"), bundle, branch="feature", jobs=["lint"])

    assert made.status_code == 201
    assert _jobs(made.json())["lint"]["status"] == "skipped"


def test_the_log_stream_delivers_the_log_then_ends(
    client: httpx.Client, issue: Issue, runner: AgentLoop, tmp_path: Path
) -> None:
    token = issue("viewer")
    run_id = _submit(client, issue("developer"), _bundle(_checkout(tmp_path / "ws", DAG))).json()[
        "id"
    ]

    with client.stream(
        "GET", f"/api/v1/runs/{run_id}/jobs/test/log/stream", headers=bearer(token)
    ) as got:
        text = "".join(got.iter_text())

    assert got.headers["content-type"].startswith("text/event-stream")
    assert "event: log\ndata: hello" in text
    assert "tested" in text
    assert text.rstrip().splitlines()[-2:] == [
        "event: end",
        'data: {"status": "success", "reason": null}',
    ]


def test_retry_by_cli_follows_the_new_run_and_exits_1_when_it_fails_again(
    client: httpx.Client, issue: Issue, runner: AgentLoop, tmp_path: Path
) -> None:
    ws = _checkout(tmp_path / "ws", FLAKY)
    token = issue("developer")
    server = {"CONVEYOR_SERVER": str(client.base_url), "CONVEYOR_TOKEN": token}
    first = _wait(client, token, _submit(client, token, _bundle(ws)).json()["id"])

    again = cli(ws, "retry", str(first["id"]), "--json", **server)

    assert again.returncode == 1, again.stderr
    doc = json.loads(again.stdout)
    assert doc["id"] != first["id"]
    assert {j["name"]: j["status"] for j in doc["jobs"]} == {"build": "cached", "check": "failed"}
