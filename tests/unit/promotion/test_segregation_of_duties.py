"""Segregation of duties as values: every way around it is refused, with a reason."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.promotion.duties import people_of, refusal
from conveyor.promotion.model import (
    Actor,
    Approval,
    Basis,
    Promotion,
    PromotionId,
    PromotionState,
    Verdict,
)
from conveyor.release.model import Commit, ReleaseId
from conveyor.spec.delivery import Approvals, Requirements

DIGEST = "sha256:" + "d1" * 32
T0 = 1_767_225_600.0
PROD = Requirements(approvals=Approvals(1, ("approver", "release-manager")))
COMMITS = (
    Commit(
        "a" * 40,
        "Ada Lovelace",
        "ada@example.com",
        "2026-01-01T00:00:00Z",
        "feat: refunds\n\nCo-authored-by: Grace Hopper <grace@example.com>",
        committer_email="merge-bot@example.com",
    ),
)
AUTHORS = people_of(COMMITS)
LEAD = Actor("lead@example.com", ("approver",))


def promotion(
    state: PromotionState = "blocked",
    *,
    requirements: Requirements = PROD,
    approvals: tuple[Approval, ...] = (),
) -> Promotion:
    return Promotion(
        id=PromotionId(3),
        project="shop",
        service="payments-api",
        version="1.4.0",
        release_id=ReleaseId(7),
        release_digest=DIGEST,
        environment="prod",
        requested_by="Dev@Example.com",
        requested_at=T0,
        basis=Basis(requirements),
        state=state,
        updated_at=T0,
        revision=1,
        approvals=approvals,
    )


def decided(by: str, verdict: Verdict = "approve") -> Approval:
    return Approval(1, PromotionId(3), DIGEST, by, "approver", verdict, "", T0)


def refused(
    actor: Actor, verdict: Verdict = "approve", *, of: Promotion | None = None, digest: str = DIGEST
) -> str | None:
    return refusal(of or promotion(), actor, verdict, authors=AUTHORS, release_digest=digest)


def test_an_approver_in_an_allowed_role_who_did_not_write_the_change_may_approve() -> None:
    assert refused(LEAD) is None
    assert refused(Actor("rm@example.com", ("developer", "release-manager"))) is None


@pytest.mark.parametrize("name", ["dev@example.com", "  DEV@example.COM "])
def test_the_requester_cannot_approve_their_own_promotion(name: str) -> None:
    reason = refused(Actor(name, ("approver",)))

    assert reason is not None
    assert "requested promotion 3, so cannot approve it" in reason
    assert "segregation of duties" in reason


@pytest.mark.parametrize(
    "name",
    [
        "ada@example.com",
        "Ada Lovelace",
        "grace@example.com",
        "Grace Hopper",
        "merge-bot@example.com",
    ],
)
def test_an_author_committer_or_co_author_of_a_commit_in_the_release_cannot_approve(
    name: str,
) -> None:
    reason = refused(Actor(name, ("release-manager",)))

    assert reason is not None
    assert "wrote or committed a change in payments-api 1.4.0" in reason


@pytest.mark.parametrize("roles", [(), ("developer",), ("admin", "viewer")])
def test_an_approver_without_an_allowed_role_is_refused(roles: tuple[str, ...]) -> None:
    reason = refused(Actor("lead@example.com", roles))

    assert reason is not None
    assert "takes one of the roles approver, release-manager" in reason
    assert "conveyor-roles.yaml" in reason


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("superseded", "was superseded by a newer promotion"),
        ("rejected", "was rejected"),
        ("deployed", "is deployed already"),
        ("failed", "failed to deploy"),
    ],
)
def test_a_closed_promotion_cannot_be_approved_or_rejected(
    state: PromotionState, words: str
) -> None:
    for verdict in ("approve", "reject"):
        reason = refused(LEAD, verdict, of=promotion(state))

        assert reason is not None
        assert words in reason


def test_one_person_decides_once_even_when_they_change_their_mind() -> None:
    approved_before = promotion(approvals=(decided("lead@example.com"),))
    rejected_before = promotion(approvals=(decided("lead@example.com", "reject"),))

    again = refused(LEAD, of=approved_before)
    turned = refused(LEAD, "reject", of=approved_before)
    after_rejecting = refused(LEAD, of=rejected_before)

    assert again is not None
    assert "lead@example.com already approved promotion 3" in again
    assert turned is not None
    assert after_rejecting is not None
    assert "already rejected" in after_rejecting


def test_an_approval_binds_to_the_release_identity_the_promotion_was_requested_for() -> None:
    reason = refused(LEAD, digest="sha256:" + "00" * 32)

    assert reason is not None
    assert "a decision binds to one release identity" in reason


def test_an_environment_that_requires_no_approvals_has_nothing_to_approve() -> None:
    reason = refused(LEAD, of=promotion(requirements=Requirements()))

    assert reason == "environment 'prod' requires no approvals; nothing to approve"


def test_the_requester_may_withdraw_their_own_promotion_by_rejecting_it() -> None:
    assert refused(Actor("dev@example.com"), "reject") is None


def test_rejecting_someone_elses_promotion_takes_an_allowed_role() -> None:
    assert refused(LEAD, "reject") is None
    assert refused(Actor("ada@example.com", ("release-manager",)), "reject") is None
    no_role = refused(Actor("intern@example.com", ("viewer",)), "reject")
    assert no_role is not None
    assert "to reject a promotion into 'prod'" in no_role


def test_rejecting_where_no_approvals_are_required_takes_a_deciding_role() -> None:
    dev = promotion(requirements=Requirements())

    assert refused(LEAD, "reject", of=dev) is None
    assert refused(Actor("intern@example.com"), "reject", of=dev) is not None


def test_the_people_of_commits_are_compared_without_case_and_without_blanks() -> None:
    blank = replace(COMMITS[0], committer_email="", message="fix: x")

    assert people_of([blank]) == {"ada lovelace", "ada@example.com"}
    assert {"grace hopper", "grace@example.com", "merge-bot@example.com"} <= AUTHORS
