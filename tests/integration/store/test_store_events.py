"""The stored event chain on SQLite and PostgreSQL: appends, tampering, concurrency, subjects."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from conveyor.audit.chain import GENESIS, ChainBreak, NewEvent, verify
from conveyor.store import events as event_log
from conveyor.store.db import Database

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
Spawn = Callable[[str, int, Sequence[str]], list[str]]


def _event(subject: str = "run/1", kind: str = "job.started", **data: object) -> NewEvent:
    return NewEvent(kind=kind, subject=subject, actor="ada@example.com", ts=T0 + 0.5, data=data)


def _append(db: Database, *events: NewEvent) -> None:
    with db.write() as tx:
        event_log.append(tx, events)


def _chain_of(db: Database, length: int) -> None:
    for n in range(1, length + 1):
        _append(db, _event(f"run/{n}", "run.started", n=n))


def _sql(db: Database, statement: str, **params: object) -> None:
    with db.write() as tx:
        tx.execute(statement, params)


def test_append_assigns_contiguous_seqs_and_links_each_event_to_the_one_before(
    db: Database,
) -> None:
    with db.write() as tx:
        first = event_log.append(tx, [_event(n=1), _event(n=2)])
    with db.write() as tx:
        second = event_log.append(tx, [_event(n=3)])

    appended = first + second
    stored = list(event_log.iter_all(db))
    assert [e.seq for e in appended] == [1, 2, 3]
    assert [e.prev_hash for e in appended] == [GENESIS, appended[0].hash, appended[1].hash]
    assert [e.decode() for e in stored] == appended
    assert verify(stored) is None


def test_appending_nothing_writes_nothing(db: Database) -> None:
    with db.write() as tx:
        assert event_log.append(tx, []) == []

    assert list(event_log.iter_all(db)) == []


def test_an_append_rolled_back_with_its_transaction_leaves_no_gap(db: Database) -> None:
    _append(db, _event(n=1))
    with pytest.raises(RuntimeError), db.write() as tx:
        event_log.append(tx, [_event(n=2)])
        raise RuntimeError("the caller failed after appending")
    _append(db, _event(n=3))

    stored = list(event_log.iter_all(db))
    assert [(e.seq, e.decode().data) for e in stored] == [(1, {"n": 1}), (2, {"n": 3})]
    assert verify(stored) is None


def test_verify_passes_on_a_stored_chain_read_in_several_batches(db: Database) -> None:
    _chain_of(db, 7)

    assert [e.seq for e in event_log.iter_all(db, batch=3)] == list(range(1, 8))
    assert verify(event_log.iter_all(db, batch=3)) is None


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("data", '{"n":333}', "content does not match"),
        ("kind", "run.finished", "content does not match"),
        ("actor", "mallory@example.com", "content does not match"),
        ("ts", "2026-01-01T00:00:00.600000Z", "content does not match"),
        ("subject", "run/33", "content does not match"),
        ("hash", "sha256:" + "0" * 64, "content does not match"),
        ("prev_hash", "sha256:" + "f" * 64, "link to the previous event"),
    ],
)
def test_verify_names_the_first_altered_event(
    db: Database, column: str, value: str, reason: str
) -> None:
    _chain_of(db, 5)

    _sql(db, f"UPDATE events SET {column} = :v WHERE seq = 3", v=value)

    found = verify(event_log.iter_all(db))
    assert found is not None
    assert found.seq == 3
    assert reason in found.reason


def test_verify_names_the_event_after_a_deleted_one(db: Database) -> None:
    _chain_of(db, 5)

    _sql(db, "DELETE FROM events WHERE seq = 3")

    assert verify(event_log.iter_all(db)) == ChainBreak(4, "expected event 3 here, found 4")


def test_verify_names_the_first_event_of_a_deleted_prefix(db: Database) -> None:
    _chain_of(db, 3)

    _sql(db, "DELETE FROM events WHERE seq = 1")

    assert verify(event_log.iter_all(db)) == ChainBreak(2, "expected event 1 here, found 2")


def test_verify_names_the_first_of_two_swapped_events(db: Database) -> None:
    _chain_of(db, 5)

    _sql(db, "UPDATE events SET seq = -2 WHERE seq = 2")
    _sql(db, "UPDATE events SET seq = 2 WHERE seq = 4")
    _sql(db, "UPDATE events SET seq = 4 WHERE seq = -2")

    found = verify(event_log.iter_all(db))
    assert found is not None
    assert found.seq == 2


def _assert_one_chain(db: Database, expected: Counter[tuple[int, int, int]]) -> None:
    """One contiguous, intact chain holding exactly the expected events."""
    stored = list(event_log.iter_all(db))
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert verify(stored) is None
    got = Counter(
        (int(d["worker"]), int(d["round"]), int(d["part"]))  # type: ignore[call-overload]
        for d in (e.decode().data for e in stored)
    )
    assert got == expected
    # Each append kept its events together, in order.
    for a, b in itertools.pairwise(stored):
        da, db_ = a.decode().data, b.decode().data
        if da["worker"] == db_["worker"] and da["round"] == db_["round"]:
            assert db_["part"] == int(da["part"]) + 1  # type: ignore[call-overload]


def _turns(db: Database) -> int:
    """How many times the chain passes from one worker's events to another's."""
    workers = [e.decode().data["worker"] for e in event_log.iter_all(db)]
    return sum(a != b for a, b in itertools.pairwise(workers))


def test_appenders_on_several_threads_build_one_contiguous_chain(db: Database) -> None:
    workers, rounds, parts = 8, 15, 3
    # Every round starts all workers at once: on a busy machine one thread could
    # otherwise do all its rounds before another ran, and nothing would contend.
    start = threading.Barrier(workers)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for r in range(rounds):
                start.wait()
                _append(db, *(_event(worker=worker, round=r, part=p) for p in range(parts)))
        except BaseException as exc:
            failures.append(exc)
            raise

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert _turns(db) >= workers, "the threads did not append at the same time"
    _assert_one_chain(
        db,
        Counter((w, r, p) for w in range(workers) for r in range(rounds) for p in range(parts)),
    )


APPENDER = """
from conveyor.audit.chain import NewEvent
from conveyor.store import events as event_log
from conveyor.store.db import open_database

worker, url, rounds = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
db = open_database(url)
wait_for_go()
try:
    for r in range(rounds):
        with db.write() as tx:
            event_log.append(tx, [
                NewEvent("job.log", "run/%d" % worker, "worker", time.time(),
                         {"worker": worker, "round": r, "part": p})
                for p in range(2)
            ])
        time.sleep(0.002)  # work between appends lets the other process in
finally:
    db.close()
"""


def test_appenders_in_two_processes_build_one_contiguous_chain(
    db: Database, database_url: str, spawn: Spawn
) -> None:
    rounds = 60

    spawn(APPENDER, 2, [database_url, str(rounds)])
    assert _turns(db) > 2, "the two processes did not append at the same time"

    _assert_one_chain(
        db, Counter((w, r, p) for w in range(2) for r in range(rounds) for p in range(2))
    )


def _subjects(events: Sequence[object]) -> list[str]:
    return [e.subject for e in events]  # type: ignore[attr-defined]


def test_for_subject_returns_a_runs_events_and_its_jobs_in_order(db: Database) -> None:
    for subject in (
        "run/3",
        "run/30",
        "run/3/job/build",
        "run/30/job/build",
        "run/3x",
        "runs/3",
        "run/3/job/test",
        "run",
    ):
        _append(db, _event(subject, n=subject))

    events = event_log.for_subject(db, "run/3")

    assert _subjects(events) == ["run/3", "run/3/job/build", "run/3/job/test"]
    assert [e.seq for e in events] == [1, 3, 7]
    assert [e.data for e in events] == [{"n": s} for s in _subjects(events)]
    assert _subjects(event_log.for_subject(db, "run/3/job/build")) == ["run/3/job/build"]
    assert _subjects(event_log.for_subject(db, "run/4")) == []


def test_for_subject_matches_like_wildcards_and_case_literally(db: Database) -> None:
    for subject in (
        "deploy/web_1",
        "deploy/web_1/step/0",
        "deploy/webX1/step/0",
        "deploy/web%/step/0",
        "deploy/WEB_1/step/0",
        "run/3/job/Build/attempt/1",
        "run/3/job/build/attempt/1",
        "deploy/wéb",
        "deploy/wéb/step/0",
    ):
        _append(db, _event(subject))

    assert _subjects(event_log.for_subject(db, "deploy/web_1")) == [
        "deploy/web_1",
        "deploy/web_1/step/0",
    ]
    assert _subjects(event_log.for_subject(db, "deploy/web%")) == ["deploy/web%/step/0"]
    assert _subjects(event_log.for_subject(db, "run/3/job/build")) == ["run/3/job/build/attempt/1"]
    assert _subjects(event_log.for_subject(db, "deploy/wéb")) == ["deploy/wéb", "deploy/wéb/step/0"]


def test_for_subject_returns_at_most_limit_events_oldest_first(db: Database) -> None:
    for n in range(5):
        _append(db, _event("run/1/job/build", n=n))

    events = event_log.for_subject(db, "run/1", limit=2)

    assert [e.data for e in events] == [{"n": 0}, {"n": 1}]


def test_event_data_and_text_round_trip_exactly(db: Database) -> None:
    data = {
        "nested": {"list": [1, 2.5, None, True], "empty": {}},
        "text": 'ünïcode ✓ "quotes" \\ back\nslash',
        "big": 2**53 + 1,
    }
    _append(
        db,
        NewEvent("job.finished", "run/1/job/ü", "Åsa Ödén <åsa@example.com>", T0 + 0.000001, data),
    )

    (event,) = event_log.for_subject(db, "run/1")

    assert (event.kind, event.subject, event.actor) == (
        "job.finished",
        "run/1/job/ü",
        "Åsa Ödén <åsa@example.com>",
    )
    assert event.ts == "2026-01-01T00:00:00.000001Z"
    assert event.data == data
    assert verify(event_log.iter_all(db)) is None
