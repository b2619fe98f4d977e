"""The job cache shared through the server, on SQLite and on the real PostgreSQL: a second run
of a pipeline on runners is served from it, a changed input file or secret misses, and a
corrupt entry is a miss recorded as an Event. Jobs count their executions in a file."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.artifacts.cache import CachedOutput, CacheEntry
from conveyor.artifacts.cas import ContentStore
from conveyor.core.errors import Conflict, UsageError
from conveyor.core.records import RunId
from conveyor.core.secrets import format_key
from conveyor.engine.agent_cache import InProcessCache, fingerprint_of
from conveyor.engine.agent_loop import AgentLoop, InProcessSource
from conveyor.engine.dispatch_rules import Source
from conveyor.engine.dispatch_secrets import stored_secrets
from conveyor.engine.remote_cache import RemoteCache
from conveyor.engine.secrets import SecretService
from conveyor.executors.local import LocalExecutor
from conveyor.store import events as event_log
from conveyor.store.db import Database
from integration.store.conftest import (  # noqa: F401 - fixtures
    database_url,
    db,
    empty_db,
    postgres_schema_url,
    postgres_url,
)

from .queue_world import QueueWorld
from .test_agent_loop import finished, wait_for
from .test_remote_secrets import stored_anywhere

KEY = format_key(bytes(range(32)))
PIPELINE = """\
version: 1
jobs:
  build:
    run: echo build >> {count} && mkdir -p dist && tr a-z A-Z < input.txt > dist/app
    inputs: [input.txt]
    outputs: [dist/app]
  test:
    needs: build
    run: echo test >> {count} && cat dist/app > report.txt
    outputs: [report.txt]
  ship:
    needs: build
    cache: false
    run: echo ship >> {count} && cp dist/app shipped.txt
    outputs: [shipped.txt]
"""
SECRET_PIPELINE = """\
version: 1
secrets: [DEPLOY_TOKEN]
jobs:
  deploy:
    run: echo deploy >> {count} && test -n "$DEPLOY_TOKEN"
"""

Runs = Callable[[str], RunId]


@pytest.fixture
def secrets(db: Database) -> SecretService:  # noqa: F811 - the fixture above
    return SecretService(db=db, clock=QueueWorld(db).clock, environ={"CONVEYOR_SECRET_KEY": KEY})


@pytest.fixture
def world(db: Database) -> QueueWorld:  # noqa: F811 - the fixture above
    return QueueWorld(db, secrets=stored_secrets(db, {"CONVEYOR_SECRET_KEY": KEY}))


@pytest.fixture
def cas(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "state" / "cas")


@pytest.fixture
def server_cache(world: QueueWorld, cas: ContentStore, tmp_path: Path) -> RemoteCache:
    return RemoteCache.at(tmp_path / "state", cas=cas, db=world.db, clock=world.clock)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "input.txt").write_text("hello\n")
    return src


@pytest.fixture
def count(tmp_path: Path) -> Path:
    return tmp_path / "executions.txt"


@pytest.fixture
def run_on_runner(
    world: QueueWorld,
    cas: ContentStore,
    server_cache: RemoteCache,
    source: Path,
    count: Path,
    tmp_path: Path,
) -> Iterator[Runs]:
    """Submits a pipeline and runs it to its end on one runner that shares the server's cache."""
    loop = AgentLoop(
        source=InProcessSource(world.dispatch, world.agent("runner")),
        executor=LocalExecutor(kill_grace_s=1.0),
        cas=cas,
        work_dir=tmp_path / "agent",
        heartbeat_s=0.05,
        poll_s=0.02,
        cache=InProcessCache(server_cache),
    )
    thread = threading.Thread(target=loop.run, name="loop")
    thread.start()

    def run(text: str) -> RunId:
        run_id = world.submit(text.replace("{count}", str(count)), source=Source(path=str(source)))
        wait_for(finished(world, run_id), "the run finished")
        wait_for(lambda: loop.running == [], "the runner recorded its results")
        return run_id

    yield run
    loop.kill()
    thread.join(10)
    assert not loop.errors, loop.errors


def executions(count: Path) -> list[str]:
    return count.read_text().split() if count.exists() else []


def test_a_second_run_on_runners_is_served_from_the_shared_cache_and_reruns_nothing(
    world: QueueWorld, run_on_runner: Runs, count: Path, cas: ContentStore
) -> None:
    first = run_on_runner(PIPELINE)
    assert world.statuses(first) == {"build": "success", "test": "success", "ship": "success"}
    assert sorted(executions(count)) == ["build", "ship", "test"]

    second = run_on_runner(PIPELINE)

    assert world.run(second).status == "success"
    assert world.statuses(second) == {"build": "cached", "test": "cached", "ship": "success"}
    assert sorted(executions(count)) == ["build", "ship", "ship", "test"]  # only `ship` ran
    before = {job.name: job for job in world.run(first).jobs}
    after = {job.name: job for job in world.run(second).jobs}
    assert after["test"].outputs == before["test"].outputs
    assert after["build"].log_digest == before["build"].log_digest
    # The cached build's output reached the job that needs it.
    assert cas.read_bytes(after["ship"].outputs[0].digest) == b"HELLO\n"
    assert "restored from the shared cache" in (after["build"].reason or "")


SHARED_FILE = """\
version: 1
jobs:
  a:
    run: echo a >> {count} && mkdir -p out && echo a > out/a.txt
    outputs: [out/a.txt]
  x:
    run: echo x >> {count} && sleep 0.3 && mkdir -p out && echo x > out/a.txt
    outputs: ["out/*.txt"]
"""


def test_a_job_the_server_failed_for_taking_another_jobs_file_is_not_cached(
    world: QueueWorld, run_on_runner: Runs, count: Path
) -> None:
    first = run_on_runner(SHARED_FILE)
    assert world.statuses(first) == {"a": "success", "x": "failed"}

    second = run_on_runner(SHARED_FILE)

    # As in a local Run: the next Run tries again rather than replaying the clash.
    assert world.statuses(second) == {"a": "cached", "x": "failed"}
    assert sorted(executions(count)) == ["a", "x", "x"]


def test_a_changed_input_file_misses_the_cache_and_its_dependents_run_again(
    world: QueueWorld, run_on_runner: Runs, count: Path, source: Path, cas: ContentStore
) -> None:
    run_on_runner(PIPELINE)
    (source / "input.txt").write_text("changed\n")

    second = run_on_runner(PIPELINE)

    assert world.statuses(second) == {"build": "success", "test": "success", "ship": "success"}
    assert len(executions(count)) == 6
    outputs = {job.name: job.outputs for job in world.run(second).jobs}
    assert cas.read_bytes(outputs["test"][0].digest) == b"CHANGED\n"


def test_a_changed_secret_misses_the_cache_and_its_value_is_stored_nowhere(
    world: QueueWorld,
    run_on_runner: Runs,
    count: Path,
    secrets: SecretService,
    server_cache: RemoteCache,
) -> None:
    secrets.set("DEPLOY_TOKEN", "first-value-of-the-token", actor="ada", project="shop")
    run_on_runner(SECRET_PIPELINE)
    again = run_on_runner(SECRET_PIPELINE)
    assert world.statuses(again) == {"deploy": "cached"}
    secrets.set("DEPLOY_TOKEN", "second-value-of-the-token", actor="ada", project="shop")

    changed = run_on_runner(SECRET_PIPELINE)

    assert world.statuses(changed) == {"deploy": "success"}
    assert executions(count) == ["deploy", "deploy"]
    entries = list((server_cache.cache.root / "entries").rglob("*.json"))
    assert len(entries) == 2
    for entry in entries:
        text = entry.read_text()
        assert '"secret:DEPLOY_TOKEN":"hmac:' in text
        assert "value-of-the-token" not in text
    assert stored_anywhere(world.db, "value-of-the-token") == []


def test_a_corrupt_entry_is_a_miss_removed_and_recorded_as_an_event(
    world: QueueWorld, run_on_runner: Runs, count: Path, cas: ContentStore
) -> None:
    first = run_on_runner(PIPELINE)
    built = {job.name: job for job in world.run(first).jobs}["build"]
    assert built.outputs
    cas.delete(built.outputs[0].digest)  # the entry names a blob the server lost

    second = run_on_runner(PIPELINE)

    statuses = world.statuses(second)
    assert statuses["build"] == "success" and world.run(second).status == "success"
    assert executions(count).count("build") == 2
    corrupt = event_log.for_subject(world.db, "cache", limit=100)
    assert [event.kind for event in corrupt] == ["cache.corrupt"]
    assert "is missing" in str(corrupt[0].data["reason"])


def test_a_job_that_opts_out_of_the_cache_is_neither_looked_up_nor_recorded(
    world: QueueWorld, run_on_runner: Runs, server_cache: RemoteCache
) -> None:
    run_on_runner("version: 1\njobs:\n  once: {run: 'true', cache: false}\n")

    assert not (server_cache.cache.root / "entries").exists()


def test_the_runners_key_leaves_out_the_platforms_variables_and_keeps_the_pipelines(
    world: QueueWorld, server_cache: RemoteCache, cas: ContentStore, source: Path
) -> None:
    text = "version: 1\njobs:\n  a: {run: 'true'}\n"
    world.submit(text, source=Source(path=str(source)), env={"REGION": "eu"})
    claim = world.claim(world.agent("runner"))
    key = server_cache.hmac_key()
    base = fingerprint_of(claim, source, cas, key)
    other_commit = replace(claim, env={**claim.env, "CONVEYOR_COMMIT": "f" * 40})
    other_region = replace(claim, env={**claim.env, "REGION": "us"})

    assert fingerprint_of(other_commit, source, cas, key).key == base.key
    assert fingerprint_of(other_region, source, cas, key).key != base.key


def test_recording_an_entry_whose_blob_the_server_lacks_is_a_conflict_and_stores_nothing(
    server_cache: RemoteCache, cas: ContentStore
) -> None:
    entry = CacheEntry(
        key="sha256:" + "1" * 64,
        job="build",
        outputs=(CachedOutput("dist/app", "sha256:" + "2" * 64, 3, 0o644),),
        log_digest=None,
        exit_code=0,
        tests=None,
        fingerprint={},
        created_at=0.0,
        duration_s=1.0,
    )

    with pytest.raises(Conflict, match="upload it with PUT /api/v1/artifacts"):
        server_cache.record(entry.key, entry)
    with pytest.raises(UsageError, match="is not a cache key"):
        server_cache.lookup("sha256:../../etc/passwd")
    assert server_cache.lookup(entry.key) is None


def test_the_hmac_key_is_the_same_for_every_process_of_one_server(
    server_cache: RemoteCache, world: QueueWorld, cas: ContentStore, tmp_path: Path
) -> None:
    again = RemoteCache.at(tmp_path / "state", cas=cas, db=world.db, clock=world.clock)
    other = RemoteCache.at(tmp_path / "other", cas=cas, db=world.db, clock=world.clock)

    assert again.hmac_key() == server_cache.hmac_key() != other.hmac_key()
    assert len(server_cache.hmac_key()) == 32
