"""Approvals through the Promotion service: segregation of duties tried every way, and refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.core.errors import NotFound
from conveyor.engine.promotion_facts import ContentCheck
from conveyor.engine.promotions import ApprovalRefused, PromotionService
from conveyor.engine.service import RunRequest
from conveyor.promotion.model import Actor, Promotion
from conveyor.store import events as event_log

from .harness import Harness, parse
from .promotion_world import LEAD, MANAGER, REQUESTER, SPEC, World, make_world, through_staging


def to_prod(world: World, service: PromotionService, version: str = "0.1.0") -> Promotion:
    return service.promote(world.pipeline, "payments-api", version, "prod", REQUESTER)


def refusal(service: PromotionService, promotion: Promotion, actor: Actor, words: str) -> None:
    with pytest.raises(ApprovalRefused) as caught:
        service.approve(promotion.id, actor)
    assert words in str(caught.value)


def approvals_reason(promotion: Promotion) -> str:
    assert promotion.report is not None
    return promotion.report.gate("approvals").reason


def test_an_approver_in_an_allowed_role_approves_and_the_promotion_proceeds(
    harness: Harness,
) -> None:
    world = make_world(harness)
    service = world.service()
    through_staging(world, service)
    promotion = to_prod(world, service)

    approved = service.approve(promotion.id, LEAD, comment="lgtm")

    assert promotion.state == "blocked"
    assert approved.state == "deployed"
    assert [(a.by, a.role, a.verdict, a.comment) for a in approved.approvals] == [
        ("lead@example.com", "approver", "approve", "lgtm")
    ]
    kinds = [e.kind for e in event_log.for_subject(world.runs.db, promotion.subject)]
    assert kinds[-3:] == ["approval.granted", "promotion.approved", "promotion.deployed"]


@pytest.mark.parametrize(
    ("actor", "words"),
    [
        (Actor("dev@example.com", ("approver",)), "requested promotion 3, so cannot approve it"),
        (Actor("ada@example.com", ("approver",)), "wrote or committed a change"),
        (Actor("Grace Hopper", ("approver",)), "wrote or committed a change"),
        (Actor("merge-bot@example.com", ("release-manager",)), "wrote or committed a change"),
        (Actor("intern@example.com", ("developer",)), "takes one of the roles approver"),
        (Actor("stranger@example.com"), "has no roles"),
    ],
)
def test_a_forbidden_approval_is_refused_recorded_and_changes_nothing(
    harness: Harness, actor: Actor, words: str
) -> None:
    world = make_world(harness)
    service = world.service()
    service.promote(world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)
    service.promote(world.pipeline, "payments-api", "0.1.0", "staging", REQUESTER)
    promotion = to_prod(world, service)

    refusal(service, promotion, actor, words)

    after = service.get(promotion.id)
    assert (after.state, after.approvals, after.revision) == ("blocked", (), promotion.revision)
    refused = event_log.for_subject(world.runs.db, promotion.subject)[-1]
    assert (refused.kind, refused.actor) == ("approval.refused", actor.name)
    assert words in str(refused.data["reason"])


def test_one_person_approving_twice_counts_once(harness: Harness) -> None:
    world = make_world(harness, count=2)
    service = world.service()
    promotion = to_prod(world, service)

    once = service.approve(promotion.id, LEAD)
    refusal(service, promotion, LEAD, "already approved promotion 1")

    assert approvals_reason(once).startswith("1 of 2 approvals (by lead@example.com (approver))")
    assert len(service.get(promotion.id).approvals) == 1


def test_two_people_in_allowed_roles_make_two_approvals(harness: Harness) -> None:
    world = make_world(harness, count=2)
    service = world.service()
    through_staging(world, service)
    promotion = to_prod(world, service)

    service.approve(promotion.id, LEAD)
    done = service.approve(promotion.id, MANAGER)

    assert done.state == "deployed"
    assert approvals_reason(done) == (
        "approved by lead@example.com (approver), rm@example.com (release-manager)"
    )


def test_a_superseded_promotion_cannot_be_approved_and_its_approvals_stay_behind(
    harness: Harness,
) -> None:
    world = make_world(harness, count=2)
    service = world.service()
    first = to_prod(world, service)
    service.approve(first.id, LEAD)

    second = to_prod(world, service)

    refusal(service, first, MANAGER, "was superseded by a newer promotion")
    assert approvals_reason(second).startswith("0 of 2 approvals")


def test_an_approval_copied_to_a_promotion_of_another_release_does_not_count(
    harness: Harness,
) -> None:
    world = make_world(harness)
    service = world.service()
    first = to_prod(world, service)
    service.approve(first.id, LEAD)
    newer = parse(SPEC.format(content="v2", count=1, extra=""))
    world.runs.run(newer, RunRequest(max_parallel=1), world.harness.reporter)
    world.releases.create(newer, "latest")
    second = to_prod(world, service, "0.1.1")
    with world.runs.db.write() as tx:
        tx.execute(
            "INSERT INTO approvals (promotion_id, release_digest, actor, role, decision, "
            "comment, decided_at) SELECT :second, release_digest, actor, role, decision, "
            "comment, decided_at FROM approvals WHERE promotion_id = :first",
            {"first": first.id, "second": second.id},
        )
    world.clock.advance(1)

    again = service.reevaluate(second.id)

    assert approvals_reason(again).startswith("0 of 1 approvals")
    assert again.report is not None
    assert again.report.gate("approvals").notes == (
        "not counted: lead@example.com's approval is for another release identity",
    )


def test_a_rejected_promotion_is_closed_and_can_never_be_approved(harness: Harness) -> None:
    world = make_world(harness)
    service = world.service()
    promotion = to_prod(world, service)

    rejected = service.reject(promotion.id, MANAGER, comment="not before the audit")

    assert rejected.state == "rejected"
    refusal(service, promotion, LEAD, "promotion 1 was rejected")
    with pytest.raises(ApprovalRefused, match="was rejected"):
        service.reject(promotion.id, LEAD)
    assert service.reevaluate(promotion.id).state == "rejected"


def test_the_requester_may_withdraw_but_nobody_without_a_role_may_reject(
    harness: Harness,
) -> None:
    world = make_world(harness)
    service = world.service()
    promotion = to_prod(world, service)

    with pytest.raises(ApprovalRefused, match="to reject a promotion into 'prod'"):
        service.reject(promotion.id, Actor("intern@example.com", ("developer",)))
    withdrawn = service.reject(promotion.id, REQUESTER, comment="wrong version")

    assert withdrawn.state == "rejected"
    assert [(a.by, a.role) for a in withdrawn.approvals] == [("dev@example.com", "requester")]


def test_a_promotion_of_another_project_cannot_be_decided_on_from_this_one(
    harness: Harness,
) -> None:
    world = make_world(harness)
    promotion = to_prod(world, world.service())
    elsewhere = PromotionService(
        replace(harness.workspace, project="other"),
        db=world.runs.db,
        releases=world.releases,
        artifacts=ContentCheck(world.runs.cas),
        clock=world.clock,
    )

    with pytest.raises(NotFound, match=f"there is no promotion {promotion.id} in project other"):
        elsewhere.approve(promotion.id, LEAD)
    assert world.service().get(promotion.id).approvals == ()
