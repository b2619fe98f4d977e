"""The deployments repository on SQLite and PostgreSQL: the queue, leases, optimistic saves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound
from conveyor.core.records import RunId
from conveyor.promotion.model import Basis, GateReport, GateResult, NewPromotion
from conveyor.release.model import NewRelease, Release, ReleaseArtifact
from conveyor.rollout.deployment import Deployment, NewDeployment
from conveyor.rollout.status import AWAIT_HEALTH, COMPLETE, InstanceStatus
from conveyor.spec.delivery import Requirements
from conveyor.store import deployments as store
from conveyor.store import events as event_log
from conveyor.store import promotions as promotion_store
from conveyor.store import releases as release_store
from conveyor.store.db import Database

MakeRun = Callable[..., tuple[RunId, dict[str, int]]]
Queue = Callable[..., Deployment]
T0 = 1_767_225_600.0
APPROVED = GateReport(T0, (GateResult("after", "passed", "no earlier environment is required"),))


@pytest.fixture
def release(db: Database, make_run: MakeRun) -> Release:
    run_id, _ = make_run()
    new = NewRelease(
        project="shop",
        service="hello",
        version="1.0.0",
        commit_sha=None,
        run_id=run_id,
        config_digest="sha256:" + "cc" * 32,
        config="{}",
        artifacts=(ReleaseArtifact("dist/server.py", "sha256:" + "11" * 32, 10),),
        created_at=T0,
        created_by="dev@example.com",
    )
    event = NewEvent("release.created", "release/hello/1.0.0", "dev", T0)
    created, _ = release_store.create_release(db, release=new, event=event)
    return created


@pytest.fixture
def queue(db: Database, release: Release) -> Queue:
    """Queues a Deployment of an approved promotion of 1.0.0 into `environment`."""

    def make(environment: str = "dev", at: float = T0) -> Deployment:
        new = new_deployment(db, release, environment, at)
        with db.write() as tx:
            created = store.create(tx, new=new)
        assert created is not None
        return created

    return make


def new_deployment(db: Database, release: Release, environment: str, at: float) -> NewDeployment:
    promotion = NewPromotion(
        project="shop",
        service="hello",
        version=release.version,
        release_id=release.id,
        release_digest="sha256:" + "d1" * 32,
        environment=environment,
        requested_by="dev@example.com",
        requested_at=at,
        basis=Basis(Requirements()),
    )
    with db.write() as tx:
        promotion_id = promotion_store.insert(tx, new=promotion, report=APPROVED)
    return NewDeployment("shop", "hello", environment, promotion_id, release.id, "1.0.0", at)


def claim(
    db: Database, owner: str = "a", now: float = T0, skip: Sequence[int] = ()
) -> Deployment | None:
    return store.claim(db, project="shop", owner=owner, now=now, lease_s=30.0, skip=skip)


def settle(db: Database, deployment: Deployment, now: float = T0 + 1) -> Deployment:
    status = replace(deployment.status, step=COMPLETE)
    with db.write() as tx:
        saved = store.save(
            tx,
            deployment=deployment,
            status=status,
            now=now,
            due_at=None,
            owner=None,
            lease_until=None,
            events=(),
        )
    assert saved is not None
    return saved


def test_a_queued_deployment_reads_back_pending_due_at_once_and_unclaimed(
    db: Database, queue: Queue
) -> None:
    queued = queue()

    found = store.get(db, queued.id)

    assert found == queued
    assert (found.phase, found.step, found.due_at, found.claimed_by) == (
        "pending",
        "start-new",
        T0,
        None,
    )
    assert found.status.deployment == found.id
    assert store.for_promotion(db, found.promotion_id) == found


def test_a_promotion_is_queued_for_deployment_only_once(
    db: Database, queue: Queue, release: Release
) -> None:
    queued = queue()
    again = replace(new_deployment(db, release, "dev", T0), promotion_id=queued.promotion_id)

    with db.write() as tx:
        assert store.create(tx, new=again) is None
    assert [d.id for d in store.list_deployments(db, project="shop")] == [queued.id]


def test_a_claim_leases_the_oldest_due_deployment_of_each_environment(
    db: Database, queue: Queue
) -> None:
    dev_first = queue("dev")
    queue("dev")
    staging = queue("staging")

    first = claim(db, "a")
    second = claim(db, "b")
    third = claim(db, "c")

    assert first is not None and second is not None
    assert (first.id, first.claimed_by, first.lease_until) == (dev_first.id, "a", T0 + 30)
    assert (second.id, second.claimed_by) == (staging.id, "b")
    assert third is None, "the second dev deployment must wait for the first"


def test_the_next_deployment_of_an_environment_is_claimed_once_the_one_before_settles(
    db: Database, queue: Queue
) -> None:
    first = queue("dev")
    later = queue("dev")
    claimed = claim(db, "a")
    assert claimed is not None

    settle(db, claimed)
    after = claim(db, "b", now=T0 + 2)

    assert after is not None and after.id == later.id
    assert store.get(db, first.id).active is False


def test_a_deployment_is_not_claimed_before_it_is_due(db: Database, queue: Queue) -> None:
    queue("dev", at=T0 + 60)

    assert claim(db, now=T0) is None
    assert claim(db, now=T0 + 60) is not None


def test_a_lease_keeps_others_away_until_it_ends_but_not_its_holder(
    db: Database, queue: Queue
) -> None:
    queued = queue()
    claim(db, "a")

    other_meanwhile = claim(db, "b", now=T0 + 10)
    holder_again = claim(db, "a", now=T0 + 10)
    other_after_lease = claim(db, "b", now=T0 + 41)

    assert other_meanwhile is None
    assert holder_again is not None and holder_again.lease_until == T0 + 40
    assert other_after_lease is not None and other_after_lease.claimed_by == "b"
    assert store.get(db, queued.id).claimed_by == "b"


def test_ids_to_skip_are_passed_over(db: Database, queue: Queue) -> None:
    dev = queue("dev")
    staging = queue("staging")

    found = claim(db, "a", skip=[dev.id])

    assert found is not None and found.id == staging.id


def test_a_save_writes_the_status_and_its_events_over_the_revision_read(
    db: Database, queue: Queue
) -> None:
    queue()
    claimed = claim(db, "a")
    assert claimed is not None
    new = InstanceStatus("hello.dev.1.1", "1.0.0", "starting", T0, requested_at=T0)
    status = replace(claimed.status, step=AWAIT_HEALTH, new=(new,))
    event = NewEvent("deployment.started", claimed.subject, "conveyor", T0)

    with db.write() as tx:
        saved = store.save(
            tx,
            deployment=claimed,
            status=status,
            now=T0 + 1,
            due_at=T0 + 2,
            owner="a",
            lease_until=T0 + 31,
            events=[event],
        )

    assert saved is not None
    assert store.get(db, claimed.id) == saved
    assert (saved.phase, saved.status.new, saved.revision) == (
        "progressing",
        (new,),
        claimed.revision + 1,
    )
    assert [e.kind for e in event_log.for_subject(db, claimed.subject)] == ["deployment.started"]


def test_a_save_over_a_revision_another_controller_changed_writes_nothing(
    db: Database, queue: Queue
) -> None:
    queue()
    stale = claim(db, "a")
    assert stale is not None
    taken = claim(db, "b", now=T0 + 31)
    assert taken is not None

    with db.write() as tx:
        saved = store.save(
            tx,
            deployment=stale,
            status=replace(stale.status, step=COMPLETE),
            now=T0 + 32,
            due_at=None,
            owner=None,
            lease_until=None,
            events=[NewEvent("deployment.succeeded", stale.subject, "a", T0 + 32)],
        )

    assert saved is None
    assert store.get(db, stale.id) == taken
    assert event_log.for_subject(db, stale.subject) == []


def test_a_settled_deployment_is_released_and_no_longer_claimed(db: Database, queue: Queue) -> None:
    queue()
    claimed = claim(db)
    assert claimed is not None

    settled = settle(db, claimed)

    assert (settled.phase, settled.active, settled.claimed_by) == ("succeeded", False, None)
    assert store.list_deployments(db, project="shop", active=True) == []
    assert claim(db, "b", now=T0 + 100) is None


def test_only_the_holder_releases_a_lease(db: Database, queue: Queue) -> None:
    queued = queue()
    claim(db, "a")

    assert store.release(db, deployment_id=queued.id, owner="b") is False
    assert store.release(db, deployment_id=queued.id, owner="a") is True
    assert store.get(db, queued.id).claimed_by is None
    assert claim(db, "b", now=T0 + 1) is not None


def test_the_current_deployment_is_the_head_of_the_queue_else_the_newest(
    db: Database, queue: Queue
) -> None:
    first = queue("dev")
    second = queue("dev")
    third = queue("dev")

    head = store.current(db, project="shop", service="hello", environment="dev")
    for _ in range(3):
        claimed = claim(db, now=T0 + 5)
        assert claimed is not None
        settle(db, claimed)
    newest = store.current(db, project="shop", service="hello", environment="dev")

    assert head is not None and head.id == first.id
    assert newest is not None and newest.id == third.id
    assert second.id < third.id
    assert store.current(db, project="shop", service="hello", environment="prod") is None


def test_deployments_list_newest_first_filtered_by_environment(db: Database, queue: Queue) -> None:
    dev = queue("dev")
    staging = queue("staging")

    everything = store.list_deployments(db, project="shop")
    only_dev = store.list_deployments(db, project="shop", environment="dev")
    elsewhere = store.list_deployments(db, project="other")

    assert [d.id for d in everything] == [staging.id, dev.id]
    assert [d.id for d in only_dev] == [dev.id]
    assert elsewhere == []
    with pytest.raises(NotFound, match="there is no deployment 99"):
        store.get(db, 99)


def test_concurrent_claimers_never_share_a_deployment(
    db: Database,
    queue: Queue,
    database_url: str,
    spawn: Callable[[str, int, Sequence[str]], list[str]],
) -> None:
    for environment in ("dev", "staging", "prod"):
        queue(environment)
    script = (
        "from conveyor.store import deployments\n"
        "from conveyor.store.db import open_database\n"
        "db = open_database(sys.argv[3])\n"
        "wait_for_go()\n"
        "found = []\n"
        "while (d := deployments.claim(db, project='shop', owner=sys.argv[2], now=2e9, "
        "lease_s=60, skip=found)) is not None:\n"
        "    found.append(d.id)\n"
        "print(' '.join(map(str, found)))\n"
        "db.close()\n"
    )

    outputs = spawn(script, 4, [database_url])

    claimed = [int(n) for out in outputs for n in out.split()]
    assert sorted(claimed) == [1, 2, 3]
