"""The Promotion service on a real store: gates in order, re-evaluation, events, superseding."""

from __future__ import annotations

import pytest

from conveyor.core.errors import NotFound, UsageError
from conveyor.engine.promotion_facts import current_actor, load_roles
from conveyor.promotion.model import Promotion
from conveyor.store import events as event_log
from conveyor.store import promotions as promotion_store

from .harness import Harness
from .promotion_world import LEAD, REQUESTER, T0, World, make_world, through_staging


@pytest.fixture
def world(harness: Harness) -> World:
    return make_world(harness)


def kinds(world: World, promotion: Promotion) -> list[str]:
    return [e.kind for e in event_log.for_subject(world.runs.db, promotion.subject)]


def gates(promotion: Promotion) -> dict[str, str]:
    assert promotion.report is not None
    return {gate.gate: gate.outcome for gate in promotion.report.gates}


def test_a_promotion_without_requirements_is_approved_and_recorded_as_deployed(
    world: World,
) -> None:
    promotion = world.service().promote(world.pipeline, "payments-api", "latest", "dev", REQUESTER)

    assert promotion.state == "deployed"
    assert set(gates(promotion).values()) == {"passed"}
    assert kinds(world, promotion) == [
        "promotion.requested",
        "promotion.approved",
        "promotion.deployed",
    ]
    states = promotion_store.environment_states(
        world.runs.db, project=promotion.project, service="payments-api"
    )
    assert [(s.environment, s.version, s.healthy_since) for s in states] == [("dev", "0.1.0", T0)]


def test_staging_is_blocked_until_dev_runs_the_release_then_waits_out_the_soak(
    world: World,
) -> None:
    service = world.service()
    early = service.promote(world.pipeline, "payments-api", "0.1.0", "staging", REQUESTER)
    service.promote(world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)

    soaking = service.reevaluate(early.id)
    world.clock.advance(600)
    done = service.reevaluate(early.id)

    assert early.state == "blocked"
    assert gates(early)["after"] == "blocked"
    assert soaking.state == "pending"
    assert gates(soaking) == {**gates(soaking), "after": "passed", "soak": "waiting"}
    assert soaking.report is not None
    assert soaking.report.retry_at == T0 + 600
    assert done.state == "deployed"
    assert kinds(world, early) == [
        "promotion.requested",
        "promotion.blocked",
        "promotion.pending",
        "promotion.approved",
        "promotion.deployed",
    ]


def test_re_evaluating_an_unchanged_situation_records_nothing(world: World) -> None:
    service = world.service()
    promotion = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)
    events = len(list(event_log.iter_all(world.runs.db)))

    world.clock.advance(60)
    again = service.reevaluate(promotion.id)

    assert again == promotion
    assert len(list(event_log.iter_all(world.runs.db))) == events


def test_a_newer_promotion_into_the_environment_supersedes_the_open_one(world: World) -> None:
    service = world.service()
    first = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)
    second = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)

    assert service.get(first.id).state == "superseded"
    assert second.state == "blocked"
    assert kinds(world, first)[-1] == "promotion.superseded"
    superseded = event_log.for_subject(world.runs.db, first.subject)[-1]
    assert superseded.data["superseded_by"] == second.id


def test_an_approved_promotion_waits_for_the_deployer_and_is_not_superseded(
    world: World,
) -> None:
    service = world.service(deploy=False)
    approved = service.promote(world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)
    service.promote(world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)

    assert approved.state == "approved"
    assert service.get(approved.id).state == "approved"


def test_artifacts_whose_content_changed_in_the_store_block_for_good(world: World) -> None:
    digest = world.release.artifacts[0].digest
    blob = world.harness.workspace.cas_dir / "sha256" / digest[7:9] / digest[9:]
    blob.chmod(0o644)
    blob.write_text("tampered")

    promotion = world.service().promote(world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)

    assert promotion.state == "blocked"
    assert promotion.report is not None
    signed = promotion.report.gate("signed")
    assert signed.final
    assert signed.reason.startswith("artifact dist/app.whl is sha256:")


def test_policy_rules_are_fixed_when_the_promotion_is_requested(harness: Harness) -> None:
    world = make_world(harness, extra="        policies: [no-thursday]")
    rules = harness.write(
        "policies/release.yaml",
        "version: 1\nrules:\n  - name: no-thursday\n    deny: time.weekday == 'Thu'\n"
        "    message: not on {time.weekday}\n",
    )
    service = world.service()
    service.promote(world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)
    service.promote(world.pipeline, "payments-api", "0.1.0", "staging", REQUESTER)
    world.clock.advance(600)
    service.reevaluate(2)

    promotion = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)
    rules.write_text(
        "version: 1\nrules:\n  - name: no-thursday\n    deny: 'false'\n    message: x\n"
    )
    again = service.approve(promotion.id, LEAD)

    assert promotion.report is not None
    assert promotion.report.gate("policies").reason == "denied by 'no-thursday': not on Thu"
    assert again.state == "blocked"
    assert [rule.name for rule in again.basis.rules] == ["no-thursday"]


def test_a_promotion_waits_out_a_freeze_and_a_window_then_proceeds_by_itself(
    harness: Harness,
) -> None:
    extra = (
        '        window: "Fri 09:00-17:00 UTC"\n'
        "        freeze: [{from: 2025-12-20, until: 2026-01-02, reason: year-end freeze}]"
    )
    world = make_world(harness, extra=extra)
    service = world.service()
    through_staging(world, service)
    promotion = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)

    approved = service.approve(promotion.id, LEAD)
    world.clock.advance(T0 + 86_400 - world.clock.now())  # the freeze ends, Friday 00:00
    thawed = service.reevaluate(promotion.id)
    world.clock.advance(9 * 3600)  # Friday 09:00: the window opens
    opened = service.reevaluate(promotion.id)

    assert gates(approved) == {**gates(approved), "freeze": "blocked", "window": "waiting"}
    assert approved.report is not None
    assert approved.report.gate("freeze").reason == (
        "frozen until 2026-01-02T00:00:00Z: year-end freeze"
    )
    assert (approved.state, thawed.state, opened.state) == ("blocked", "pending", "deployed")
    assert thawed.report is not None
    assert thawed.report.retry_at == T0 + 86_400 + 9 * 3600


def test_why_gives_the_latest_promotion_of_a_release_into_an_environment(world: World) -> None:
    service = world.service()
    service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)
    latest = service.promote(world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)

    assert service.why("payments-api", "v0.1.0", "prod").id == latest.id
    with pytest.raises(NotFound, match=r"0\.1\.0 was never promoted to staging; `conveyor pro"):
        service.why("payments-api", "0.1.0", "staging")
    # A misspelled environment is not a promotion to suggest.
    with pytest.raises(NotFound, match=r"never promoted to prdo; did you mean 'prod'\?$"):
        service.why("payments-api", "0.1.0", "prdo")


@pytest.mark.parametrize(
    ("service_name", "environment", "words"),
    [
        ("payments-api", "prdo", "has no environment 'prdo'; did you mean 'prod'?"),
        ("billing", "prod", "delivers 'payments-api', not 'billing'"),
    ],
)
def test_an_unknown_environment_or_service_is_bad_input(
    world: World, service_name: str, environment: str, words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        world.service().promote(world.pipeline, service_name, "0.1.0", environment, REQUESTER)


def test_the_acting_person_gets_their_roles_from_the_roles_map(harness: Harness) -> None:
    harness.write("conveyor-roles.yaml", "version: 1\nroles:\n  Lead@example.com: [approver]\n")

    lead = current_actor(harness.root, {"CONVEYOR_ACTOR": "lead@example.com"})
    stranger = current_actor(harness.root, {"CONVEYOR_ACTOR": "x@example.com"})

    assert lead.roles == ("approver",)
    assert stranger.roles == ()
    assert load_roles(harness.root / "elsewhere").roles == {}
