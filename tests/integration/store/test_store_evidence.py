"""Reads for evidence on SQLite and PostgreSQL: Events below subjects, the chain's hashes."""

from __future__ import annotations

from conveyor.audit.chain import NewEvent
from conveyor.store import events as event_log
from conveyor.store import evidence as evidence_store
from conveyor.store.db import Database

T0 = 1_767_225_600.0


def _append(db: Database, *subjects: str) -> None:
    with db.write() as tx:
        event_log.append(tx, [NewEvent("x.happened", s, "ada", T0, {"s": s}) for s in subjects])


def test_events_under_a_subject_are_its_own_and_those_below_it_never_its_namesakes(
    db: Database,
) -> None:
    _append(
        db,
        "release/shop/1.0",
        "release/shop/1.0.1",
        "release/shop/1.0/promotion/1",
        "run/1",
        "run/10",
        "run/1/job/build",
        "release/shop/1.0_x",
    )

    found = evidence_store.events_under(db, ["release/shop/1.0", "run/1"], until=99, batch=2)

    assert [(e.seq, e.subject) for e in found] == [
        (1, "release/shop/1.0"),
        (3, "release/shop/1.0/promotion/1"),
        (4, "run/1"),
        (6, "run/1/job/build"),
    ]


def test_events_after_the_signed_size_are_left_out(db: Database) -> None:
    _append(db, "run/1", "run/1", "run/1")

    found = evidence_store.events_under(db, ["run/1"], until=2)

    assert [e.seq for e in found] == [1, 2]
    assert list(evidence_store.events_under(db, [], until=3)) == []


def test_chain_hashes_stream_in_order_up_to_the_signed_size(db: Database) -> None:
    _append(db, "a", "b", "c", "d", "e")
    stored = [(e.seq, e.hash) for e in event_log.iter_all(db)]

    assert list(evidence_store.chain_hashes_until(db, until=4, batch=3)) == stored[:4]


def test_whether_an_event_of_a_kind_was_recorded_for_exactly_one_subject(db: Database) -> None:
    _append(db, "release/shop/1.0/promotion/1")

    assert evidence_store.has_event(db, subject="release/shop/1.0/promotion/1", kind="x.happened")
    assert not evidence_store.has_event(db, subject="release/shop/1.0/promotion/1", kind="y")
    assert not evidence_store.has_event(db, subject="release/shop/1.0", kind="x.happened")
