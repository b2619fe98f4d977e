"""A token limited to one project reads that project's Events and artifacts, and nothing else."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import Client

from conveyor.audit.chain import NewEvent
from conveyor.core.records import OutputRecord
from conveyor.store import events as event_log
from conveyor.store import runs as run_store

from .conftest import Issue, bearer


def make_run(app: FastAPI, project: str, output: bytes, log: bytes) -> int:
    """A Run of `project` with one job `build` that wrote `output` and `log` to the CAS."""
    state = app.state.conveyor
    run = run_store.NewRun(
        project=project,
        pipeline_path="conveyor.yaml",
        spec_digest="sha256:" + "0" * 64,
        workspace="/src",
        branch="main",
        commit_sha=None,
        event="push",
        actor="ada",
        targets=(),
        options={},
        host="builder",
        pid=1,
        created_at=1.0,
    )
    job = run_store.NewJob(
        position=0, name="build", base_name="build", needs=(), allow_failure=False
    )
    events = [
        NewEvent("run.started", "run/{run}", "ada", 1.0),
        NewEvent("job.succeeded", "run/{run}/job/build", "ada", 2.0),
    ]
    run_id, ids = run_store.create_run(state.db, run=run, jobs=[job], events=events)
    out, logged = state.cas.put_bytes(output), state.cas.put_bytes(log)
    update = run_store.JobUpdate(
        job_id=ids["build"],
        log_digest=logged.digest,
        outputs=(OutputRecord("dist/app.tar", out.digest, out.size),),
    )
    with state.db.write() as tx:
        run_store.apply_job_update(tx, update)
    return int(run_id)


def append(app: FastAPI, *subjects: str) -> None:
    with app.state.conveyor.db.write() as tx:
        event_log.append(tx, [NewEvent("test.recorded", s, "ada", 3.0) for s in subjects])


def subjects(client: Client, token: str, query: str = "") -> list[str]:
    answer = client.get(f"/api/v1/events{query}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return [e["subject"] for e in answer.json()["events"]]


def test_a_project_token_reads_only_its_projects_events(
    client: Client, issue: Issue, app: FastAPI
) -> None:
    shop = make_run(app, "shop", b"shop build", b"shop log")
    others = [make_run(app, "payments", b"pay %d" % i, b"pay log %d" % i) for i in range(10)]
    assert others[-1] == 11 and shop == 1, "run/11 begins like run/1"
    append(
        app,
        "project/shop",
        "project/shop/secret/DEPLOY_TOKEN",
        "project/shopping",
        "waiver/shop/3",
        "waiver/shopping/4",
        "project/payments",
        "token/1",
        "secret/GLOBAL_TOKEN",
    )
    scoped = issue("viewer", project="shop")
    assert subjects(client, scoped) == [
        "run/1",
        "run/1/job/build",
        "project/shop",
        "project/shop/secret/DEPLOY_TOKEN",
        "waiver/shop/3",
    ]
    assert subjects(client, scoped, "?subject=run/11") == []
    assert subjects(client, scoped, "?subject=run/1") == ["run/1", "run/1/job/build"]
    everything = subjects(client, issue("viewer"))
    assert "run/11/job/build" in everything and "token/1" in everything


def test_a_project_token_pages_through_its_events_with_the_cursor(
    client: Client, issue: Issue, app: FastAPI
) -> None:
    append(app, *[f"project/{name}/n{i}" for i in range(3) for name in ("shop", "payments")])
    scoped = issue("viewer", project="shop")
    first = client.get("/api/v1/events?limit=2", headers=bearer(scoped)).json()
    assert [e["subject"] for e in first["events"]] == ["project/shop/n0", "project/shop/n1"]
    rest = client.get(
        f"/api/v1/events?limit=2&cursor={first['next_cursor']}", headers=bearer(scoped)
    ).json()
    assert [e["subject"] for e in rest["events"]] == ["project/shop/n2"]
    assert rest["next_cursor"] is None


def test_a_project_token_downloads_its_runs_outputs_and_logs_only(
    client: Client, issue: Issue, app: FastAPI
) -> None:
    make_run(app, "shop", b"shop build", b"shop log")
    make_run(app, "payments", b"payments build", b"payments log")
    cas = app.state.conveyor.cas
    digest = {data: cas.put_bytes(data).digest for data in (b"shop build", b"shop log")}
    theirs = {data: cas.put_bytes(data).digest for data in (b"payments build", b"payments log")}
    loose = cas.put_bytes(b"stored by no run").digest
    scoped = bearer(issue("viewer", project="shop"))
    for data, found in digest.items():
        answer = client.get(f"/api/v1/artifacts/{found}", headers=scoped)
        assert (answer.status_code, answer.content) == (200, data)
    for found in [*theirs.values(), loose]:
        answer = client.get(f"/api/v1/artifacts/{found}", headers=scoped)
        assert answer.status_code == 404
        assert (
            answer.json()["detail"]
            == f"no artifact {found} on this server (never stored, or pruned)"
        )
    unscoped = bearer(issue("viewer"))
    assert client.get(f"/api/v1/artifacts/{loose}", headers=unscoped).status_code == 200
