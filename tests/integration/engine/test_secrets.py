"""Stored secrets in Runs: the job gets the value, outputs mask it, the store never holds it."""

from __future__ import annotations

import pytest

from conveyor.core.clock import FrozenClock
from conveyor.core.errors import UsageError
from conveyor.core.secrets import format_key
from conveyor.engine.reporting import SilentReporter
from conveyor.engine.secrets import SecretService, StoredSecrets
from conveyor.engine.service import RunRequest, RunResult, RunService, dry_run
from conveyor.executors.local import LocalExecutor
from conveyor.store import events as event_log
from conveyor.store.db import Database
from conveyor.store.schema import metadata

from .harness import Harness, parse

KEY = format_key(bytes(range(32)))
VALUE = "s3cr3t-from-the-store"
SPEC = """\
version: 1
secrets: [DEPLOY_TOKEN]
jobs:
  deploy:
    inputs: []
    run: |
      echo "token is $DEPLOY_TOKEN"
      printf '%s' "$DEPLOY_TOKEN" > "$CONVEYOR_WORKSPACE/seen"
"""


def service(harness: Harness, environ: dict[str, str]) -> RunService:
    runs: RunService | None = None

    def db() -> Database:
        assert runs is not None
        return runs.db

    stored = StoredSecrets(db, project=harness.workspace.project, environ=environ)
    runs = RunService(
        harness.workspace,
        executor=LocalExecutor(),
        clock=FrozenClock(),
        environ=environ,
        secrets=stored,
    )
    harness._services.append(runs)
    return runs


def store_secret(harness: Harness, value: str = VALUE, *, project: str = "") -> None:
    runs = harness.service()
    SecretService(db=runs.db, clock=FrozenClock(), environ={"CONVEYOR_SECRET_KEY": KEY}).set(
        "DEPLOY_TOKEN", value, actor="ada", project=project
    )


def run(harness: Harness, environ: dict[str, str]) -> RunResult:
    env = {"CONVEYOR_ACTOR": "tester", "PATH": "/usr/bin:/bin", **environ}
    return service(harness, env).run(parse(SPEC), RunRequest(max_parallel=1), harness.reporter)


def stored_text(harness: Harness) -> str:
    db = harness.service().db
    with db.read() as tx:
        return " ".join(
            str(value)
            for table in metadata.sorted_tables
            for row in tx.execute(f"SELECT * FROM {table.name}")
            for value in row
        )


def test_a_stored_secret_reaches_the_job_and_is_masked_in_its_log(harness: Harness) -> None:
    store_secret(harness, project=harness.workspace.project)

    result = run(harness, {"CONVEYOR_SECRET_KEY": KEY})

    assert result.run.status == "success"
    assert (harness.root / "seen").read_text() == VALUE
    log, _ = harness.history().job_log(result.run.id, "deploy")
    assert "token is ***" in log
    assert VALUE not in log
    assert VALUE not in stored_text(harness)
    assert not [e for e in event_log.iter_all(harness.service().db) if VALUE in e.data_json]
    assert harness.reporter.warnings == []


def test_the_callers_environment_wins_over_the_store(harness: Harness) -> None:
    store_secret(harness)

    result = run(harness, {"DEPLOY_TOKEN": "from-the-environment"})

    assert result.run.status == "success"
    assert (harness.root / "seen").read_text() == "from-the-environment"


def test_the_projects_secret_wins_over_the_global_one(harness: Harness) -> None:
    store_secret(harness, "global-value")
    store_secret(harness, "project-value", project=harness.workspace.project)

    run(harness, {"CONVEYOR_SECRET_KEY": KEY})

    assert (harness.root / "seen").read_text() == "project-value"


def test_a_secret_found_nowhere_leaves_the_variable_unset_with_a_warning(
    harness: Harness,
) -> None:
    result = run(harness, {})

    assert result.run.status == "success"
    assert (harness.root / "seen").read_text() == ""
    assert harness.reporter.warnings == [
        "secret DEPLOY_TOKEN is not set in the environment; jobs see it unset"
    ]


def test_a_stored_secret_without_the_key_stops_the_run_before_it_starts(
    harness: Harness,
) -> None:
    store_secret(harness)

    with pytest.raises(UsageError, match="CONVEYOR_SECRET_KEY is not set, and the stored secret"):
        run(harness, {})

    assert harness.history().list_runs() == []


def test_a_dry_run_predicts_with_the_stored_value(harness: Harness) -> None:
    store_secret(harness)
    env = {"CONVEYOR_ACTOR": "tester", "CONVEYOR_SECRET_KEY": KEY}
    first = service(harness, env)
    first.run(parse(SPEC), RunRequest(max_parallel=1), SilentReporter())

    planned = dry_run(service(harness, env), parse(SPEC), RunRequest())

    assert [(job.name, job.action) for job in planned] == [("deploy", "cached")]
