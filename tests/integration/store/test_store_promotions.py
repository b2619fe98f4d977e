"""The promotions repository on SQLite and PostgreSQL: promotions, approvals, environment states."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound
from conveyor.core.records import RunId
from conveyor.promotion.model import (
    Basis,
    GateReport,
    GateResult,
    NewPromotion,
    PromotionId,
)
from conveyor.release.model import NewRelease, Release, ReleaseArtifact
from conveyor.spec.delivery import Approvals, Requirements
from conveyor.store import events as event_log
from conveyor.store import promotions as store
from conveyor.store import releases as release_store
from conveyor.store.db import Database, open_database

MakeRun = Callable[..., tuple[RunId, dict[str, int]]]
T0 = 1_767_225_600.0
DIGEST = "sha256:" + "d1" * 32
BASIS = Basis(Requirements(after="staging", approvals=Approvals(1, ("approver",))), (), ("dev",))
BLOCKED = GateReport(T0, (GateResult("approvals", "blocked", "0 of 1 approvals"),))
WAITING = GateReport(T0, (GateResult("window", "waiting", "opens Monday", retry_at=T0 + 3600),))
APPROVED = GateReport(T0 + 5, (GateResult("approvals", "passed", "approved by lead"),))


@pytest.fixture
def release(db: Database, make_run: MakeRun) -> Release:
    run_id, _ = make_run()
    new = NewRelease(
        project="shop",
        service="payments-api",
        version="1.4.0",
        commit_sha="c0ffee" * 6 + "c0ff",
        run_id=run_id,
        config_digest="sha256:" + "cc" * 32,
        config="{}",
        artifacts=(ReleaseArtifact("dist/app.whl", "sha256:" + "11" * 32, 10),),
        created_at=T0,
        created_by="dev@example.com",
    )
    event = NewEvent("release.created", "release/payments-api/1.4.0", "dev", T0)
    created, _ = release_store.create_release(db, release=new, event=event)
    return created


def new_promotion(release: Release, environment: str = "prod", at: float = T0) -> NewPromotion:
    return NewPromotion(
        project="shop",
        service=release.service,
        version=release.version,
        release_id=release.id,
        release_digest=DIGEST,
        environment=environment,
        requested_by="dev@example.com",
        requested_at=at,
        basis=BASIS,
    )


def insert(db: Database, release: Release, report: GateReport = BLOCKED, **kw: str) -> PromotionId:
    with db.write() as tx:
        return store.insert(tx, new=new_promotion(release, **kw), report=report)


def test_a_promotion_reads_back_with_its_basis_report_and_state(
    db: Database, release: Release
) -> None:
    promotion_id = insert(db, release, WAITING)

    found = store.get_promotion(db, promotion_id=promotion_id)

    assert found.id == promotion_id
    assert (found.state, found.revision, found.updated_at) == ("pending", 1, T0)
    assert found.basis == BASIS
    assert found.report == WAITING
    assert (found.environment, found.release_id, found.release_digest) == (
        "prod",
        release.id,
        DIGEST,
    )
    assert found.approvals == ()
    with db.read() as tx:
        assert tx.execute("SELECT retry_at FROM promotions")[0][0] == T0 + 3600


def test_an_unknown_promotion_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="there is no promotion 42"):
        store.get_promotion(db, promotion_id=42)


def test_a_state_change_with_a_stale_revision_is_not_written(
    db: Database, release: Release
) -> None:
    promotion_id = insert(db, release)
    with db.write() as tx:
        first = store.set_state(
            tx, promotion_id=promotion_id, state="approved", now=T0 + 5, report=APPROVED, revision=1
        )
        stale = store.set_state(
            tx, promotion_id=promotion_id, state="blocked", now=T0 + 6, report=BLOCKED, revision=1
        )

    found = store.get_promotion(db, promotion_id=promotion_id)
    assert (first, stale) == (True, False)
    assert (found.state, found.revision, found.report) == ("approved", 2, APPROVED)


def test_only_open_promotions_into_the_environment_are_listed_as_open(
    db: Database, release: Release
) -> None:
    blocked = insert(db, release)
    pending = insert(db, release, WAITING)
    approved = insert(db, release, APPROVED)
    insert(db, release, environment="staging")

    with db.read() as tx:
        found = store.open_into(tx, project="shop", service="payments-api", environment="prod")

    assert [p.id for p in found] == [blocked, pending]
    assert approved not in [p.id for p in found]


def test_one_person_decides_once_per_promotion_and_approvals_stay_with_theirs(
    db: Database, release: Release
) -> None:
    first, second = insert(db, release), insert(db, release)

    def approve(promotion_id: int, actor: str) -> object:
        with db.write() as tx:
            return store.insert_approval(
                tx,
                promotion_id=promotion_id,
                release_digest=DIGEST,
                actor=actor,
                role="approver",
                verdict="approve",
                comment="lgtm",
                at=T0 + 1,
            )

    recorded = approve(first, "lead@example.com")
    again = approve(first, "lead@example.com")
    elsewhere = approve(second, "lead@example.com")

    assert recorded is not None
    assert again is None
    assert elsewhere is not None
    one = store.get_promotion(db, promotion_id=first)
    assert [(a.by, a.role, a.verdict, a.comment) for a in one.approvals] == [
        ("lead@example.com", "approver", "approve", "lgtm")
    ]
    assert one.approvals[0].promotion_id == first


def test_record_deployed_keeps_one_state_per_environment_and_marks_the_promotion(
    db: Database, release: Release
) -> None:
    promotion_id = insert(db, release, APPROVED, environment="staging")
    event = NewEvent(
        "environment.deployed", "release/payments-api/1.4.0/environment/staging", "c", T0
    )

    store.record_deployed(
        db,
        project="shop",
        service="payments-api",
        environment="staging",
        release_id=release.id,
        version="1.4.0",
        deployed_at=T0 + 10,
        healthy_since=None,
        events=[event],
        promotion_id=promotion_id,
    )
    store.record_deployed(
        db,
        project="shop",
        service="payments-api",
        environment="staging",
        release_id=release.id,
        version="1.4.0",
        deployed_at=T0 + 10,
        healthy_since=T0 + 30,
        events=[event],
    )

    states = store.environment_states(db, project="shop", service="payments-api")
    assert [(s.environment, s.version, s.deployed_at, s.healthy_since) for s in states] == [
        ("staging", "1.4.0", T0 + 10, T0 + 30)
    ]
    assert store.get_promotion(db, promotion_id=promotion_id).state == "deployed"
    kinds = [e.kind for e in event_log.iter_all(db)]
    assert kinds.count("environment.deployed") == 2


def test_the_latest_promotion_and_the_filtered_list_are_newest_first(
    db: Database, release: Release
) -> None:
    older = insert(db, release)
    newer = insert(db, release)
    staging = insert(db, release, environment="staging")

    latest = store.latest_promotion(
        db, project="shop", service="payments-api", version="1.4.0", environment="prod"
    )
    listed = store.list_promotions(db, project="shop")
    prod = store.list_promotions(db, project="shop", environment="prod", states=("blocked",))

    assert latest is not None
    assert latest.id == newer
    assert [p.id for p in listed] == [staging, newer, older]
    assert [p.id for p in prod] == [newer, older]
    assert store.list_promotions(db, project="other") == []


def test_concurrent_requests_into_one_environment_leave_exactly_one_open(
    db: Database, database_url: str, release: Release
) -> None:
    """What the Promotion service does, with a pause where a race would hurt most."""
    workers = 4
    ready = threading.Barrier(workers)
    failures: list[BaseException] = []

    def request(worker: int) -> None:
        own = open_database(database_url)
        try:
            ready.wait()
            with own.write() as tx:
                store.lock(tx)
                older = store.open_into(
                    tx, project="shop", service="payments-api", environment="prod"
                )
                time.sleep(0.05)  # both would miss each other here without the lock
                new = new_promotion(release, at=T0 + worker)
                store.insert(tx, new=new, report=BLOCKED)
                for stale in older:
                    store.set_state(tx, promotion_id=stale.id, state="superseded", now=T0)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=request, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    found = store.list_promotions(db, project="shop")
    assert sorted(p.state for p in found) == ["blocked"] + ["superseded"] * (workers - 1)
    assert max(found, key=lambda p: p.id).state == "blocked"
