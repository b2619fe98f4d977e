"""The runs repository on SQLite and PostgreSQL: what is written reads back equal."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound
from conveyor.core.records import (
    AttemptOutcome,
    JobRecord,
    OutputRecord,
    RunId,
    RunRecord,
    RunStatus,
    TestCounts,
)
from conveyor.store import events as event_log
from conveyor.store import runs as run_store
from conveyor.store.db import Database, SqliteDatabase, open_database

MakeRun = Callable[..., tuple[RunId, dict[str, int]]]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
GIB = 1 << 30


def _event(kind: str, subject: str, **data: object) -> NewEvent:
    return NewEvent(kind=kind, subject=subject, actor="ada@example.com", ts=T0, data=data)


def _update(db: Database, *updates: run_store.JobUpdate) -> None:
    with db.write() as tx:
        for update in updates:
            run_store.apply_job_update(tx, update)


def _finish(db: Database, run_id: RunId, status: RunStatus) -> None:
    with db.write() as tx:
        run_store.finish_run(tx, run_id=run_id, status=status, finished_at=T0 + 60, duration_s=60)


def _events(db: Database) -> list[tuple[int, str, str]]:
    return [(e.seq, e.kind, e.subject) for e in event_log.iter_all(db)]


def test_a_created_run_reads_back_running_with_its_planned_jobs_and_events(
    db: Database,
) -> None:
    run = run_store.NewRun(
        project="shop",
        pipeline_path="ci/conveyor.yaml",
        spec_digest="sha256:" + "5e" * 32,
        workspace="/srv/shop",
        branch="feature/ünïcode",
        commit_sha="9fceb02d0ae598e95dc970b74767f19372d61af8",
        event="push",
        actor="ada@example.com",
        targets=("deploy", "docs"),
        options={"jobs": 4},
        host="build-1",
        pid=31337,
        created_at=T0 + 0.123456,
    )
    jobs = [
        run_store.NewJob(0, "build", "build", (), allow_failure=False),
        run_store.NewJob(1, "test [py=3.12]", "test", ("build",), allow_failure=True),
        run_store.NewJob(2, "lint", "lint", (), False, status="skipped", reason="only: tags"),
    ]

    run_id, job_ids = run_store.create_run(
        db,
        run=run,
        jobs=jobs,
        events=[_event("run.started", "run/{run}"), _event("job.skipped", "run/{run}/job/lint")],
    )

    assert set(job_ids) == {"build", "test [py=3.12]", "lint"}
    assert run_store.get_run(db, run_id=run_id) == RunRecord(
        id=run_id,
        project="shop",
        status="running",
        pipeline_path="ci/conveyor.yaml",
        spec_digest="sha256:" + "5e" * 32,
        workspace="/srv/shop",
        branch="feature/ünïcode",
        commit_sha="9fceb02d0ae598e95dc970b74767f19372d61af8",
        event="push",
        actor="ada@example.com",
        targets=("deploy", "docs"),
        host="build-1",
        pid=31337,
        created_at=T0 + 0.123456,
        started_at=T0 + 0.123456,
        finished_at=None,
        duration_s=None,
        error=None,
        jobs=tuple(
            JobRecord(
                id=job_ids[job.name],
                run_id=run_id,
                position=job.position,
                name=job.name,
                base_name=job.base_name,
                needs=job.needs,
                status=job.status,
                cached=False,
                allow_failure=job.allow_failure,
                exit_code=None,
                attempts=0,
                reason=job.reason,
                started_at=None,
                finished_at=None,
                duration_s=None,
                cache_key=None,
                fingerprint=None,
                log_digest=None,
                tests=None,
            )
            for job in jobs
        ),
    )
    assert _events(db) == [
        (1, "run.started", f"run/{run_id}"),
        (2, "job.skipped", f"run/{run_id}/job/lint"),
    ]


def test_job_updates_read_back_as_equal_records_with_bools_and_floats(
    db: Database, make_run: MakeRun
) -> None:
    run_id, ids = make_run(jobs=("build", "test"))
    outputs = (
        OutputRecord("dist/app.whl", "sha256:" + "11" * 32, 48_213),
        OutputRecord("dist/image.tar", "sha256:" + "22" * 32, 3 * GIB),
    )
    tests = TestCounts(passed=41, failed=2, skipped=3, failures=("t::a", "t::b — ünïcode"))
    _update(
        db,
        run_store.JobUpdate(ids["build"], status="running", attempts=1, started_at=T0 + 0.25),
        run_store.JobUpdate(
            ids["build"],
            status="success",
            exit_code=0,
            finished_at=T0 + 12.75,
            duration_s=12.5,
            cache_key="sha256:" + "cc" * 32,
            fingerprint={"script": "sha256:" + "aa" * 32, "env": "sha256:" + "bb" * 32},
            log_digest="sha256:" + "dd" * 32,
            tests=tests,
            outputs=outputs,
        ),
        run_store.JobUpdate(ids["test"], status="cached", cached=True, duration_s=0.001),
    )
    with db.write() as tx:
        run_store.finish_run(
            tx, run_id=run_id, status="failed", finished_at=T0 + 13.5, duration_s=13.5, error="x"
        )

    run = run_store.get_run(db, run_id=run_id)

    build, test = run.jobs
    assert build == JobRecord(
        id=ids["build"],
        run_id=run_id,
        position=0,
        name="build",
        base_name="build",
        needs=(),
        status="success",
        cached=False,
        allow_failure=False,
        exit_code=0,
        attempts=1,
        reason=None,
        started_at=T0 + 0.25,
        finished_at=T0 + 12.75,
        duration_s=12.5,
        cache_key="sha256:" + "cc" * 32,
        fingerprint={"env": "sha256:" + "bb" * 32, "script": "sha256:" + "aa" * 32},
        log_digest="sha256:" + "dd" * 32,
        tests=tests,
        outputs=outputs,
    )
    assert (test.status, test.cached, test.duration_s, test.outputs) == ("cached", True, 0.001, ())
    assert type(test.cached) is bool
    assert type(build.allow_failure) is bool
    assert type(build.started_at) is float
    assert (run.status, run.finished_at, run.duration_s, run.error) == (
        "failed",
        T0 + 13.5,
        13.5,
        "x",
    )


def test_an_update_leaves_the_columns_it_does_not_name_unchanged(
    db: Database, make_run: MakeRun
) -> None:
    run_id, ids = make_run(jobs=("build",))
    _update(
        db,
        run_store.JobUpdate(ids["build"], status="running", attempts=1, started_at=T0 + 1),
        run_store.JobUpdate(ids["build"], exit_code=3),
    )

    (job,) = run_store.get_run(db, run_id=run_id).jobs

    assert (job.status, job.attempts, job.started_at, job.exit_code) == ("running", 1, T0 + 1, 3)


def test_attempts_of_a_job_run_on_this_machine_read_back_in_order_with_no_runner(
    db: Database, make_run: MakeRun
) -> None:
    run_id, ids = make_run(jobs=("flaky", "steady"))
    first = AttemptOutcome(
        number=1,
        status="timed_out",
        runner=None,
        started_at=T0,
        finished_at=T0 + 30.5,
        duration_s=30.5,
        reason="timed out after 30s",
        log_digest="sha256:" + "a1" * 32,
    )
    second = AttemptOutcome(
        number=2,
        status="success",
        runner=None,
        started_at=T0 + 31,
        finished_at=T0 + 33.25,
        duration_s=2.25,
        exit_code=0,
        log_digest="sha256:" + "a2" * 32,
        tests=TestCounts(passed=7, failed=0, skipped=1, failures=()),
    )
    _update(
        db,
        run_store.JobUpdate(ids["flaky"], status="running", started_at=T0),
        run_store.JobUpdate(ids["flaky"], attempt=first),
        run_store.JobUpdate(ids["flaky"], status="success", attempts=2, attempt=second),
        run_store.JobUpdate(ids["steady"], status="success", attempts=1),
    )

    flaky, steady = run_store.get_run(db, run_id=run_id).jobs

    assert flaky.attempt_results == (first, second)
    assert (flaky.status, flaky.attempts) == ("success", 2)
    assert steady.attempt_results == ()
    # Nothing of them looks held by a runner: the lease reaper passes them by.
    with db.read() as tx:
        held = tx.execute("SELECT count(*) FROM job_attempts WHERE agent_id IS NOT NULL")
        run_ids = tx.execute("SELECT DISTINCT run_id FROM job_attempts")
    assert int(held[0][0]) == 0
    assert [int(r[0]) for r in run_ids] == [run_id]


def test_list_runs_filters_by_project_status_and_branch(db: Database, make_run: MakeRun) -> None:
    shop_main, _ = make_run(project="shop", branch="main")
    shop_dev, _ = make_run(project="shop", branch="dev")
    shop_main_failed, _ = make_run(project="shop", branch="main")
    docs_main, _ = make_run(project="docs", branch="main")
    _finish(db, shop_main, "success")
    _finish(db, shop_main_failed, "failed")

    def ids(**filters: str) -> list[RunId]:
        return [run.id for run in run_store.list_runs(db, **filters)]  # type: ignore[arg-type]

    assert ids() == [docs_main, shop_main_failed, shop_dev, shop_main]
    assert ids(project="shop") == [shop_main_failed, shop_dev, shop_main]
    assert ids(status="running") == [docs_main, shop_dev]
    assert ids(branch="main") == [docs_main, shop_main_failed, shop_main]
    assert ids(project="shop", branch="main", status="success") == [shop_main]
    assert ids(project="nothing") == []


def test_list_runs_pages_newest_first_with_before(db: Database, make_run: MakeRun) -> None:
    created = [make_run(created_at=T0 + i)[0] for i in range(7)]

    pages: list[list[RunId]] = []
    before: int | None = None
    while page := run_store.list_runs(db, limit=3, before=before):
        pages.append([run.id for run in page])
        before = page[-1].id

    newest_first = created[::-1]
    assert pages == [newest_first[:3], newest_first[3:6], newest_first[6:]]


def test_list_runs_includes_jobs_only_when_asked(db: Database, make_run: MakeRun) -> None:
    first, _ = make_run(jobs=("a", "b"))
    second, _ = make_run(jobs=("c",))

    without = run_store.list_runs(db)
    with_jobs = run_store.list_runs(db, with_jobs=True)

    assert [run.jobs for run in without] == [(), ()]
    assert [[job.name for job in run.jobs] for run in with_jobs] == [["c"], ["a", "b"]]
    assert with_jobs == [
        run_store.get_run(db, run_id=second),
        run_store.get_run(db, run_id=first),
    ]


def test_latest_run_id_is_the_newest_run_of_the_project(db: Database, make_run: MakeRun) -> None:
    make_run(project="shop")
    newest_shop, _ = make_run(project="shop")
    make_run(project="docs")

    assert run_store.latest_run_id(db, project="shop") == newest_shop


def test_reading_a_missing_run_raises_not_found(db: Database, make_run: MakeRun) -> None:
    run_id, _ = make_run(project="shop")

    with pytest.raises(NotFound, match="no runs yet"):
        run_store.latest_run_id(db, project="docs")
    with pytest.raises(NotFound, match=f"no run {run_id + 1}"):
        run_store.get_run(db, run_id=RunId(run_id + 1))


def test_mark_interrupted_ends_a_running_run_and_cancels_its_unfinished_jobs(
    db: Database, make_run: MakeRun
) -> None:
    run_id, ids = make_run(jobs=("done", "broke", "busy", "waiting"))
    _update(
        db,
        run_store.JobUpdate(ids["done"], status="success"),
        run_store.JobUpdate(ids["broke"], status="failed", reason="exit 1"),
        run_store.JobUpdate(ids["busy"], status="running"),
    )
    before = _events(db)

    interrupted = run_store.mark_interrupted(
        db,
        run_id=run_id,
        now=T0 + 90,
        reason="its process 4242 is gone",
        event=_event("run.interrupted", f"run/{run_id}"),
    )

    run = run_store.get_run(db, run_id=run_id)
    assert interrupted
    assert (run.status, run.finished_at, run.duration_s, run.error) == (
        "interrupted",
        T0 + 90,
        90.0,
        "its process 4242 is gone",
    )
    assert [(job.name, job.status, job.reason) for job in run.jobs] == [
        ("done", "success", None),
        ("broke", "failed", "exit 1"),
        ("busy", "canceled", "its process 4242 is gone"),
        ("waiting", "canceled", "its process 4242 is gone"),
    ]
    n = len(before)
    assert _events(db) == [
        *before,
        (n + 1, "job.canceled", f"run/{run_id}/job/busy"),
        (n + 2, "job.canceled", f"run/{run_id}/job/waiting"),
        (n + 3, "run.interrupted", f"run/{run_id}"),
    ]


@pytest.mark.parametrize("status", ["success", "failed", "canceled", "interrupted"])
def test_mark_interrupted_leaves_a_finished_run_alone(
    db: Database, make_run: MakeRun, status: RunStatus
) -> None:
    run_id, _ = make_run(jobs=("build",))
    _finish(db, run_id, status)
    before = run_store.get_run(db, run_id=run_id)

    interrupted = run_store.mark_interrupted(
        db, run_id=run_id, now=T0 + 90, reason="gone", event=_event("run.interrupted", "run/1")
    )

    assert not interrupted
    assert run_store.get_run(db, run_id=run_id) == before
    assert _events(db) == []


def test_mark_interrupted_of_an_unknown_run_does_nothing(db: Database) -> None:
    interrupted = run_store.mark_interrupted(
        db, run_id=RunId(404), now=T0, reason="gone", event=_event("run.interrupted", "run/404")
    )

    assert not interrupted
    assert _events(db) == []


@contextmanager
def _run_row_held(database_url: str, run_id: RunId) -> Iterator[Callable[[str, int], None]]:
    """Holds a lock on the run's row.

    Yields `wait_for(application_name, n)`, which returns once `n` connections
    of that name are waiting for a lock.
    """
    if database_url.startswith("sqlite"):
        import sqlite3

        writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            # SQLite shows no waiters; give the writers time to queue on the lock.
            yield lambda _name, _n: time.sleep(0.3)
            writer.execute("COMMIT")
        finally:
            writer.close()
        return
    import psycopg

    with (
        psycopg.connect(database_url) as holder,
        psycopg.connect(database_url, autocommit=True) as watcher,
    ):
        holder.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_id,))

        def wait_for(name: str, n: int) -> None:
            deadline = time.monotonic() + 20
            query = (
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = %s AND wait_event_type = 'Lock'"
            )
            while (row := watcher.execute(query, (name,)).fetchone()) and row[0] < n:
                assert time.monotonic() < deadline, "the writers never queued on the lock"
                time.sleep(0.01)

        yield wait_for
        holder.commit()


def test_two_processes_recovering_the_same_run_interrupt_it_once(
    db: Database, database_url: str, make_run: MakeRun
) -> None:
    run_id, _ = make_run(jobs=("build",))
    name = f"recoverer-{uuid.uuid4().hex[:8]}"
    recoverer_url = database_url
    if not database_url.startswith("sqlite"):
        recoverer_url += f"&application_name={name}"
    recoverers = [open_database(recoverer_url), open_database(recoverer_url)]
    try:
        with ThreadPoolExecutor(2) as pool, _run_row_held(database_url, run_id) as wait_for:
            results = [
                pool.submit(
                    run_store.mark_interrupted,
                    recoverer,
                    run_id=run_id,
                    now=T0 + 90,
                    reason=f"noticed by recoverer {i}",
                    event=_event("run.interrupted", f"run/{run_id}", by=i),
                )
                for i, recoverer in enumerate(recoverers)
            ]
            wait_for(name, 2)
        outcomes = sorted(result.result() for result in results)
    finally:
        for recoverer in recoverers:
            recoverer.close()

    assert outcomes == [False, True]
    kinds = [kind for _, kind, _ in _events(db)]
    assert kinds.count("run.interrupted") == 1
    assert set(kinds) <= {"run.interrupted", "job.canceled"}


def test_previous_fingerprint_is_the_newest_earlier_success_or_cached_one_of_that_job(
    db: Database, make_run: MakeRun
) -> None:
    def run_with(
        status: str,
        fingerprint: dict[str, str] | None,
        *,
        project: str = "shop",
        job: str = "build",
    ) -> RunId:
        run_id, ids = make_run(project=project, jobs=(job,))
        _update(db, run_store.JobUpdate(ids[job], status=status, fingerprint=fingerprint))  # type: ignore[arg-type]
        return run_id

    first = run_with("success", {"script": "v1"})
    second = run_with("cached", {"script": "v2"})
    run_with("failed", {"script": "v3"})
    run_with("success", None)
    run_with("success", {"script": "other project"}, project="docs")
    run_with("success", {"script": "other job"}, job="test")
    current, _ = make_run(project="shop", jobs=("build",))

    def previous(before: RunId) -> tuple[RunId, dict[str, str]] | None:
        return run_store.previous_fingerprint(db, project="shop", job="build", before_run=before)

    assert previous(current) == (second, {"script": "v2"})
    assert previous(second) == (first, {"script": "v1"})
    assert previous(first) is None
    assert (
        run_store.previous_fingerprint(db, project="shop", job="deploy", before_run=current) is None
    )


def test_a_checkpoint_keeps_every_write_and_on_sqlite_puts_it_in_the_database_file(
    db: Database, make_run: MakeRun, tmp_path: Path
) -> None:
    run_id, _ = make_run(jobs=["build"])
    before = run_store.get_run(db, run_id=run_id)

    db.checkpoint()

    assert run_store.get_run(db, run_id=run_id) == before
    if isinstance(db, SqliteDatabase):
        # The database file alone, without its write-ahead log, now holds the Run.
        alone = tmp_path / "alone.db"
        shutil.copyfile(db.path, alone)
        copy = SqliteDatabase(alone)
        try:
            assert run_store.get_run(copy, run_id=run_id) == before
        finally:
            copy.close()
