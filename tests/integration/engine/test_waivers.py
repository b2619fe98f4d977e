"""The Waiver service on a real store: requests, segregation of duties, expiry, and use by gates."""

from __future__ import annotations

import json

import pytest

from conveyor.core.errors import NotFound, UsageError
from conveyor.engine.waivers import WaiverRefused, WaiverService, WaiverStatus
from conveyor.promotion.model import Actor
from conveyor.store import events as event_log

from .harness import Harness
from .promotion_world import LEAD, MANAGER, REQUESTER, World, make_world, through_staging

HOUR = 3600.0
RULES = (
    "version: 1\nrules:\n  - name: no-thursday\n    deny: time.weekday == 'Thu'\n"
    "    message: not on {time.weekday}\n  - name: tests-green\n"
    "    deny: release.tests.failed > 0\n    message: tests failed\n"
)
INTERN = Actor("intern@example.com", ("developer",))


@pytest.fixture
def world(harness: Harness) -> World:
    made = make_world(harness, extra="        policies: [no-thursday]")
    harness.write("policies/release.yaml", RULES)
    return made


def waivers(world: World) -> WaiverService:
    return WaiverService(world.harness.workspace, db=world.runs.db, clock=world.clock)


def request(
    world: World, *, hours: float = 48, env: str = "prod", rule: str = "no-thursday"
) -> WaiverStatus:
    return waivers(world).create(
        world.pipeline,
        rule=rule,
        environment=env,
        expires_s=hours * HOUR,
        reason="hotfix INC-42",
        requester=REQUESTER,
    )


def kinds(world: World, prefix: str) -> list[str]:
    return [e.kind for e in event_log.for_subject(world.runs.db, prefix)]


def test_a_requested_waiver_is_pending_until_someone_else_approves_it(world: World) -> None:
    requested = request(world)
    approved = waivers(world).approve(requested.waiver.id, LEAD, comment="ok for the hotfix")

    assert requested.state == "pending"
    assert requested.waiver.expires_at == world.clock.now() + 48 * HOUR
    assert approved.state == "active"
    assert (approved.waiver.decided_by, approved.waiver.comment) == (
        "lead@example.com",
        "ok for the hotfix",
    )
    assert kinds(world, "waiver") == ["waiver.requested", "waiver.approved"]


def test_the_requester_cannot_approve_their_own_waiver_and_the_refusal_is_recorded(
    world: World,
) -> None:
    requested = request(world)
    requester_as_approver = Actor(REQUESTER.name.upper(), ("approver",))

    with pytest.raises(WaiverRefused, match="requested waiver 1, so cannot approve it"):
        waivers(world).approve(requested.waiver.id, requester_as_approver)

    assert waivers(world).get(requested.waiver.id).state == "pending"
    assert kinds(world, "waiver") == ["waiver.requested", "waiver.refused"]


def test_someone_without_a_deciding_role_cannot_approve(world: World) -> None:
    requested = request(world)

    with pytest.raises(WaiverRefused, match="approver, release-manager, admin"):
        waivers(world).approve(requested.waiver.id, INTERN)


def test_an_expired_rejected_or_revoked_waiver_cannot_be_approved(world: World) -> None:
    service = waivers(world)
    request(world, hours=1)  # expires before anyone decides
    rejected = request(world)
    revoked = request(world)
    service.reject(rejected.waiver.id, MANAGER, comment="fix the tests instead")
    service.revoke(revoked.waiver.id, REQUESTER)
    world.clock.advance(2 * HOUR)

    for waiver_id, why in ((1, "expired at"), (2, "was rejected by"), (3, "was revoked by")):
        with pytest.raises(WaiverRefused, match=why):
            service.approve(waiver_id, LEAD)


def test_an_approved_waiver_cannot_be_approved_again(world: World) -> None:
    service = waivers(world)
    requested = request(world)
    service.approve(requested.waiver.id, LEAD)

    with pytest.raises(WaiverRefused, match="is approved already"):
        service.approve(requested.waiver.id, MANAGER)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rule": "no-thursdy"}, "--rule: policies/\\*.yaml defines no rule 'no-thursdy'; did you"),
        ({"env": "prd"}, "--env: .* has no environment 'prd'; did you mean 'prod'"),
        ({"hours": 0}, "--expires: a waiver must last some time"),
        ({"hours": 24 * 31}, "--expires: a waiver lasts at most 30d"),
    ],
)
def test_bad_requests_are_bad_input_naming_the_fix_and_store_nothing(
    world: World, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        request(world, **changes)  # type: ignore[arg-type]

    assert waivers(world).list_waivers() == []
    assert kinds(world, "waiver") == []


def test_an_empty_reason_is_bad_input(world: World) -> None:
    with pytest.raises(UsageError, match="--reason is empty"):
        waivers(world).create(
            world.pipeline,
            rule="no-thursday",
            environment="prod",
            expires_s=HOUR,
            reason="  ",
            requester=REQUESTER,
        )


def test_another_projects_waiver_is_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="there is no waiver 9"):
        waivers(world).get(9)


def test_an_active_waiver_lets_a_denied_promotion_through_and_records_its_use(
    world: World,
) -> None:
    service = world.service()
    through_staging(world, service)
    blocked = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)
    still = service.approve(blocked.id, MANAGER)
    requested = request(world)
    waivers(world).approve(requested.waiver.id, LEAD)

    proceeded = service.reevaluate(blocked.id)
    again = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)

    assert (blocked.state, still.state) == ("blocked", "blocked")
    assert proceeded.state == "deployed"
    assert proceeded.report is not None
    gate = proceeded.report.gate("policies")
    assert "'no-thursday' waived by waiver 1 until 2026-01-03T00:10:00Z (hotfix INC-42)" in (
        gate.reason
    )
    assert again.state == "blocked"  # on its own approval, not on the rule
    used = [
        json.loads(json.dumps(e.data))
        for e in event_log.for_subject(world.runs.db, "release/payments-api/0.1.0")
        if e.kind == "waiver.used"
    ]
    assert [(u["waiver"], u["promotion"], u["rule"]) for u in used] == [
        (1, blocked.id, "no-thursday"),
        (1, again.id, "no-thursday"),
    ]


def test_a_reevaluation_that_changes_nothing_records_no_new_use(world: World) -> None:
    service = world.service()
    through_staging(world, service)
    waivers(world).approve(request(world).waiver.id, LEAD)
    # prod needs an approval too, so the promotion stays open while the waiver excuses the rule
    promotion = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)
    service.reevaluate(promotion.id)
    service.reevaluate(promotion.id)

    uses = [e for e in event_log.for_subject(world.runs.db, "release") if e.kind == "waiver.used"]
    assert promotion.state == "blocked"
    assert promotion.report is not None
    assert promotion.report.gate("policies").outcome == "passed"
    assert promotion.report.retry_at == world.clock.now() + 48 * HOUR
    assert len(uses) == 1


def test_once_the_waiver_expires_the_rule_blocks_the_promotion_again(world: World) -> None:
    service = world.service()
    through_staging(world, service)
    waivers(world).approve(request(world, hours=2).waiver.id, LEAD)
    promotion = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)
    world.clock.advance(2 * HOUR)

    expired = service.reevaluate(promotion.id)

    assert promotion.report is not None
    assert promotion.report.gate("policies").outcome == "passed"
    assert expired.report is not None
    assert expired.report.gate("policies").outcome == "blocked"
    assert waivers(world).get(1).state == "expired"


def test_a_revoked_waiver_no_longer_excuses_the_rule(world: World) -> None:
    service = world.service()
    through_staging(world, service)
    requested = request(world)
    waivers(world).approve(requested.waiver.id, LEAD)
    waivers(world).revoke(requested.waiver.id, MANAGER, comment="incident over")

    promotion = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)

    assert promotion.state == "blocked"
    assert kinds(world, "waiver") == ["waiver.requested", "waiver.approved", "waiver.revoked"]


def test_a_waiver_in_another_environment_does_not_excuse_prod(world: World) -> None:
    service = world.service()
    through_staging(world, service)
    waivers(world).approve(request(world, env="staging").waiver.id, LEAD)

    promotion = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)

    assert promotion.state == "blocked"


def test_waivers_are_listed_newest_first_and_filtered_by_state(world: World) -> None:
    service = waivers(world)
    request(world)
    second = request(world, rule="tests-green")
    service.approve(second.waiver.id, LEAD)

    listed = service.list_waivers()
    active = service.list_waivers(state="active")

    assert [s.waiver.id for s in listed] == [2, 1]
    assert [s.waiver.rule for s in active] == ["tests-green"]
