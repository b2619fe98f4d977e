"""Secrets on remote jobs, on SQLite and on the real PostgreSQL: read from the secret store
when a runner claims a job, handed over in the Claim alone, masked in the job's log, and
never stored in clear in any table or Event."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from conveyor.artifacts.cas import ContentStore
from conveyor.core.records import RunId
from conveyor.core.secrets import format_key
from conveyor.engine.dispatch_secrets import stored_secrets
from conveyor.engine.secrets import SecretService
from conveyor.store.db import Database
from conveyor.store.schema import metadata
from integration.store.conftest import (  # noqa: F401 - fixtures
    database_url,
    db,
    empty_db,
    postgres_schema_url,
    postgres_url,
)

from .queue_world import QueueWorld
from .test_agent_loop import Start, cas, checkout, finished, start, wait_for  # noqa: F401

KEY = format_key(bytes(range(32)))
VALUE = "s3cr3t-for-the-runner"
SPEC = """\
version: 1
secrets: [DEPLOY_TOKEN]
jobs:
  deploy:
    run: |
      test "${DEPLOY_TOKEN#s3cr3t-}" = for-the-runner  # the value itself is never written
      echo "token is $DEPLOY_TOKEN"
"""


@pytest.fixture
def world(db: Database) -> QueueWorld:  # noqa: F811 - the fixture above
    secrets = SecretService(db=db, clock=QueueWorld(db).clock, environ={"CONVEYOR_SECRET_KEY": KEY})
    secrets.set("DEPLOY_TOKEN", VALUE, actor="ada", project="shop")
    return QueueWorld(db, secrets=stored_secrets(db, {"CONVEYOR_SECRET_KEY": KEY}))


def stored_anywhere(database: Database, text: str) -> list[str]:
    """The tables (the event log among them) holding `text` in clear."""
    with database.read() as tx:
        return [
            table.name
            for table in metadata.sorted_tables
            for row in tx.execute(f"SELECT * FROM {table.name}")
            if any(text in str(value) for value in row)
        ]


def log_of(world: QueueWorld, store: ContentStore, run: RunId, job: str) -> str:
    record = {j.name: j for j in world.run(run).jobs}[job]
    return gzip.decompress(store.read_bytes(record.log_digest or "")).decode()


def test_a_remote_job_gets_its_stored_secret_and_its_log_shows_it_masked(
    world: QueueWorld,
    start: Start,  # noqa: F811 - the fixture above
    cas: ContentStore,  # noqa: F811 - the fixture above
    tmp_path: Path,
) -> None:
    run = world.submit(SPEC, source=checkout(tmp_path))
    start("runner")

    wait_for(finished(world, run), "the run finished")

    assert world.run(run).status == "success", world.reasons(run)
    log = log_of(world, cas, run, "deploy")
    assert "token is ***" in log and VALUE not in log
    assert stored_anywhere(world.db, VALUE) == []


def test_a_claim_carries_the_secret_and_no_row_or_event_holds_it(world: QueueWorld) -> None:
    run = world.submit(SPEC, env={"DEPLOY_TOKEN": "given-by-the-submitter", "STAGE": "prod"})
    agent = world.agent("runner")

    claim = world.claim(agent)

    assert claim.secrets == {"DEPLOY_TOKEN": VALUE} and claim.unset_secrets == ()
    assert claim.env == {"STAGE": "prod"}  # a secret's value in the submission is dropped
    assert world.finish(claim, agent)
    assert world.run(run).status == "success"
    assert stored_anywhere(world.db, VALUE) == []
    assert stored_anywhere(world.db, "given-by-the-submitter") == []


def test_a_secret_stored_nowhere_is_unset_for_the_job_with_a_warning_in_its_log(
    world: QueueWorld,
    start: Start,  # noqa: F811 - the fixture above
    cas: ContentStore,  # noqa: F811 - the fixture above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOWHERE_TOKEN", "the-runners-own-value")
    run = world.submit(
        "version: 1\nsecrets: [NOWHERE_TOKEN]\njobs:\n"
        "  a: {run: 'echo \"value=[${NOWHERE_TOKEN-unset}]\"'}\n",
        source=checkout(tmp_path),
    )
    start("runner")

    wait_for(finished(world, run), "the run finished")

    assert world.run(run).status == "success"
    log = log_of(world, cas, run, "a")
    assert "value=[unset]" in log
    assert "warning: secret NOWHERE_TOKEN is stored neither for this project" in log
    assert "conveyor secret set NOWHERE_TOKEN" in log


def test_a_claim_whose_secrets_cannot_be_opened_fails_its_job_and_names_the_variable(
    db: Database,  # noqa: F811 - the fixture above
) -> None:
    QueueWorld(db).submit("version: 1\njobs:\n  warm: {run: 'true'}\n")  # nothing to do with it
    SecretService(db=db, clock=QueueWorld(db).clock, environ={"CONVEYOR_SECRET_KEY": KEY}).set(
        "DEPLOY_TOKEN", VALUE, actor="ada", project="shop"
    )
    world = QueueWorld(db, secrets=stored_secrets(db, {}))  # the server has no key
    run = world.submit(SPEC)
    agent = world.agent("runner")
    world.dispatch.claim(agent)  # takes 'warm'

    assert world.dispatch.claim(world.agent("other")) is None

    record = world.run(run)
    assert record.status == "failed"
    reason = world.reasons(run)["deploy"] or ""
    assert "its secrets could not be read" in reason and "CONVEYOR_SECRET_KEY" in reason
    assert world.kinds(run, "deploy") == ["job.queued", "job.running", "job.failed"]
    assert stored_anywhere(db, VALUE) == []
