"""The cache endpoints: runners record and read entries, users read them, bad input changes
nothing; and a real `conveyor agent` serves a second remote run from the shared cache.

Runs on a real server (uvicorn in a thread) over SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import Client

from conveyor.store import events as event_log
from conveyor.store import runs as run_store

from .conftest import Issue, bearer
from .test_agent_process import Plant

PROBLEM = "application/problem+json"
KEY = "sha256:" + "c" * 64
LOG = gzip.compress(b"built\n", mtime=0)
APP = b"the app\n"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entry(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "job": "build",
        "outputs": [
            {"path": "dist/app", "digest": digest_of(APP), "size": len(APP), "mode": 0o755}
        ],
        "log_digest": digest_of(LOG),
        "exit_code": 0,
        "tests": {"passed": 3, "failed": 0, "skipped": 1, "failures": []},
        "fingerprint": {"script": "sha256:" + "d" * 64, "secret:TOKEN": "hmac:" + "e" * 64},
        "created_at": 1_767_225_600.0,
        "duration_s": 2.5,
    }
    body.update(changes)
    return body


def upload(client: Client, token: str, *blobs: bytes) -> None:
    for blob in blobs:
        put = client.put(
            f"/api/v1/artifacts/{digest_of(blob)}", content=blob, headers=bearer(token)
        )
        assert put.status_code in (200, 201), put.text


def test_a_runner_records_an_entry_and_a_viewer_reads_it_without_its_fingerprint(
    client: Client, issue: Issue
) -> None:
    runner = issue("runner", name="pool")
    upload(client, runner, LOG, APP)

    put = client.put(f"/api/v1/cache/{KEY}", json=entry(), headers=bearer(runner))
    got = client.get(f"/api/v1/cache/{KEY}", headers=bearer(issue("viewer")))

    assert put.status_code == 201, put.text
    assert got.status_code == 200
    doc = got.json()
    assert doc["outputs"] == [
        {"path": "dist/app", "digest": digest_of(APP), "size": len(APP), "mode": 0o755}
    ]
    assert doc["log_digest"] == digest_of(LOG) and doc["key"] == KEY
    assert doc["tests"] == {"passed": 3, "failed": 0, "skipped": 1, "failures": []}
    assert "fingerprint" not in doc


def test_a_key_that_is_not_a_digest_is_refused_with_422_and_touches_nothing(
    client: Client, issue: Issue
) -> None:
    runner = issue("runner")
    for key in ("sha256:..", "..%5C..%5Csecret", "md5:abc", "sha256:" + "C" * 64, "latest"):
        got = client.get(f"/api/v1/cache/{key}", headers=bearer(runner))
        put = client.put(f"/api/v1/cache/{key}", json=entry(), headers=bearer(runner))
        assert (got.status_code, put.status_code) == (422, 422), key
        assert got.headers["content-type"] == PROBLEM
        assert "key" in got.json()["detail"]
    # A key with a slash in it is no route of the API at all.
    slashed = client.get("/api/v1/cache/sha256:..%2F..%2Fetc%2Fpasswd", headers=bearer(runner))
    assert slashed.status_code == 404 and "no endpoint" in slashed.json()["detail"]


def test_an_entry_naming_a_blob_the_server_lacks_is_refused_with_409_and_not_stored(
    client: Client, issue: Issue
) -> None:
    runner = issue("runner")
    upload(client, runner, LOG)  # the output's blob is never uploaded

    put = client.put(f"/api/v1/cache/{KEY}", json=entry(), headers=bearer(runner))

    assert put.status_code == 409 and put.headers["content-type"] == PROBLEM
    assert digest_of(APP) in put.json()["detail"]
    assert "PUT /api/v1/artifacts" in put.json()["detail"]
    assert client.get(f"/api/v1/cache/{KEY}", headers=bearer(runner)).status_code == 404


@pytest.mark.parametrize(
    "bad",
    [
        {"outputs": [{"path": "../escape", "digest": digest_of(APP), "size": 8, "mode": 0o644}]},
        {"outputs": [{"path": "/etc/app", "digest": digest_of(APP), "size": 8, "mode": 0o644}]},
        {"outputs": [{"path": "dist/app", "digest": "nope", "size": 8, "mode": 0o644}]},
        {"outputs": [{"path": "dist/app", "digest": digest_of(APP), "size": -1, "mode": 0o644}]},
        {"log_digest": "sha256:short"},
        {"tests": {"passed": -1}},
        {"job": ""},
        {"unexpected": True},
    ],
)
def test_a_malformed_entry_is_refused_with_422_naming_the_field_and_not_stored(
    client: Client, issue: Issue, bad: dict[str, object]
) -> None:
    runner = issue("runner")
    upload(client, runner, LOG, APP)

    put = client.put(f"/api/v1/cache/{KEY}", json=entry(**bad), headers=bearer(runner))

    assert put.status_code == 422, put.text
    assert put.json()["errors"], put.json()
    assert client.get(f"/api/v1/cache/{KEY}", headers=bearer(runner)).status_code == 404


def test_an_output_size_that_is_not_its_blobs_is_refused_with_422(
    client: Client, issue: Issue
) -> None:
    runner = issue("runner")
    upload(client, runner, LOG, APP)
    outputs = [{"path": "dist/app", "digest": digest_of(APP), "size": 99, "mode": 0o644}]

    put = client.put(f"/api/v1/cache/{KEY}", json=entry(outputs=outputs), headers=bearer(runner))

    assert put.status_code == 422 and "has 8" in put.json()["detail"]
    assert client.get(f"/api/v1/cache/{KEY}", headers=bearer(runner)).status_code == 404


def test_a_user_token_may_not_record_an_entry_nor_read_the_runners_key(
    client: Client, issue: Issue
) -> None:
    runner, admin = issue("runner"), issue("admin")
    upload(client, runner, LOG, APP)

    put = client.put(f"/api/v1/cache/{KEY}", json=entry(), headers=bearer(admin))
    key = client.get("/api/v1/cache", headers=bearer(admin))

    assert (put.status_code, key.status_code) == (403, 403)
    assert "cache.write" in put.json()["detail"]
    assert client.get(f"/api/v1/cache/{KEY}", headers=bearer(runner)).status_code == 404
    runners_key = client.get("/api/v1/cache", headers=bearer(runner))
    assert (
        runners_key.status_code == 200 and len(bytes.fromhex(runners_key.json()["hmac_key"])) == 32
    )


def test_a_token_limited_to_one_project_reads_no_entry_shared_by_every_project(
    client: Client, issue: Issue
) -> None:
    scoped = issue("developer", project="shop")

    got = client.get(f"/api/v1/cache/{KEY}", headers=bearer(scoped))

    assert got.status_code == 403 and "shared by every project" in got.json()["detail"]


def test_an_entry_whose_blob_was_lost_is_a_404_removed_and_recorded(
    app: FastAPI, client: Client, issue: Issue
) -> None:
    runner = issue("runner")
    upload(client, runner, LOG, APP)
    assert client.put(f"/api/v1/cache/{KEY}", json=entry(), headers=bearer(runner)).is_success
    state = app.state.conveyor
    state.cas.delete(digest_of(APP))

    got = client.get(f"/api/v1/cache/{KEY}", headers=bearer(runner))

    assert got.status_code == 404
    events = event_log.for_subject(state.db, f"cache/{KEY}")
    assert [e.kind for e in events] == ["cache.corrupt"]
    assert "missing" in str(events[0].data["reason"])
    assert not list((state.settings.state_dir / "cache" / "entries").rglob("*.json"))


# --- a real server and a real agent ---------------------------------------------------


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    made = Plant(tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


def test_a_second_remote_run_is_served_from_the_shared_cache_by_a_real_agent(
    plant: Plant, tmp_path: Path
) -> None:
    count = tmp_path / "executions.txt"
    spec = f"""\
        version: 1
        jobs:
          build: {{run: 'echo build >> {count} && mkdir -p out && cat README > out/app',
                  outputs: [out/app]}}
          test: {{run: 'echo test >> {count} && cat out/app', needs: build}}
        """
    plant.server()
    plant.agent("one")

    first = plant.submit(spec)
    assert plant.finished(first) == "success"
    # The entry of the last job is recorded just after its result is reported.
    cache_dir = plant.root / ".conveyor" / "cache" / "entries"
    wait_until_entries(cache_dir, 2)
    second = plant.submit(spec)

    assert plant.finished(second) == "success"
    jobs = {job.name: job for job in run_store.get_run(plant.db, run_id=second).jobs}
    assert {name: job.status for name, job in jobs.items()} == {
        "build": "cached",
        "test": "cached",
    }
    assert count.read_text().split() == ["build", "test"]  # nothing ran the second time
    assert jobs["build"].outputs == next(
        job.outputs for job in run_store.get_run(plant.db, run_id=first).jobs if job.name == "build"
    )


def wait_until_entries(directory: Path, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(directory.rglob("*.json"))) < count:
        assert time.monotonic() < deadline, f"the agent recorded fewer than {count} entries"
        time.sleep(0.1)
