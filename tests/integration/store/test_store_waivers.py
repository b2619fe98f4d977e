"""The waivers repository on SQLite and PostgreSQL: requests, one decision, one revocation."""

from __future__ import annotations

import pytest

from conveyor.core.errors import NotFound
from conveyor.policy.waiver import NewWaiver
from conveyor.store import waivers as store
from conveyor.store.db import Database

T0 = 1_767_225_600.0


def new(
    rule: str = "no-friday-prod", environment: str = "prod", project: str = "shop"
) -> NewWaiver:
    return NewWaiver(
        project=project,
        rule=rule,
        environment=environment,
        reason="hotfix INC-42",
        requested_by="dev@example.com",
        requested_at=T0,
        expires_at=T0 + 3600,
    )


def test_a_requested_waiver_reads_back_undecided(db: Database) -> None:
    with db.write() as tx:
        created = store.insert(tx, new())

    read = store.get_waiver(db, waiver_id=created.id)

    assert read == created
    assert (read.decision, read.decided_by, read.revoked_at, read.comment) == (None, None, None, "")
    assert read.state(T0) == "pending"


def test_a_waiver_is_decided_once_only(db: Database) -> None:
    with db.write() as tx:
        waiver_id = store.insert(tx, new()).id
        first = store.decide(
            tx, waiver_id=waiver_id, by="lead", decision="approved", comment="ok", at=T0 + 1
        )
        second = store.decide(
            tx, waiver_id=waiver_id, by="rm", decision="rejected", comment="no", at=T0 + 2
        )

    read = store.get_waiver(db, waiver_id=waiver_id)
    assert (first, second) == (True, False)
    assert (read.decision, read.decided_by, read.decided_at, read.comment) == (
        "approved",
        "lead",
        T0 + 1,
        "ok",
    )


def test_a_waiver_is_revoked_once_only(db: Database) -> None:
    with db.write() as tx:
        waiver_id = store.insert(tx, new()).id
        first = store.revoke(tx, waiver_id=waiver_id, by="lead", at=T0 + 5)
        second = store.revoke(tx, waiver_id=waiver_id, by="rm", at=T0 + 6)

    assert (first, second) == (True, False)
    assert store.get_waiver(db, waiver_id=waiver_id).revoked_by == "lead"


def test_approved_for_lists_only_approved_unrevoked_waivers_of_one_environment(
    db: Database,
) -> None:
    with db.write() as tx:
        ids = [store.insert(tx, new(environment=e)).id for e in ("prod", "prod", "prod", "dev")]
        store.insert(tx, new(project="other"))
        for waiver_id in (ids[0], ids[1], ids[3]):
            store.decide(tx, waiver_id=waiver_id, by="lead", decision="approved", comment="", at=T0)
        store.revoke(tx, waiver_id=ids[1], by="lead", at=T0)

    found = store.approved_for(db, project="shop", environment="prod")

    assert [w.id for w in found] == [ids[0]]


def test_waivers_are_listed_newest_first_filtered_and_found_by_id(db: Database) -> None:
    with db.write() as tx:
        first = store.insert(tx, new()).id
        second = store.insert(tx, new(rule="tests-green")).id
        store.insert(tx, new(project="other"))

    assert [w.id for w in store.list_waivers(db, project="shop")] == [second, first]
    assert [w.id for w in store.list_waivers(db, project="shop", rule="tests-green")] == [second]
    assert [w.id for w in store.list_waivers(db, project="shop", environment="dev")] == []
    assert [w.id for w in store.by_ids(db, [second, first, 999])] == [first, second]
    assert store.by_ids(db, []) == []


def test_an_unknown_waiver_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="there is no waiver 42"):
        store.get_waiver(db, waiver_id=42)
