"""Change records on a real store, filed when a promotion is recorded, POSTed to a real server."""

from __future__ import annotations

import json

import pytest

from conveyor.core.digest import canonical_json, of_bytes
from conveyor.core.errors import NotFound
from conveyor.engine.change_records import (
    DELIVERED,
    DELIVERY_FAILED,
    FILED,
    TOKEN_VARIABLE,
    WEBHOOK_VARIABLE,
)
from conveyor.release.change_record import to_json
from conveyor.store import promotions as promotion_store
from servers.webhook import Answer, WebhookServer, closed_port_url

from .change_desk import desk
from .harness import Harness
from .promotion_world import LEAD, REQUESTER, through_staging

TOKEN = "s3cr3t-itsm-token"


def webhook(url: str) -> dict[str, str]:
    return {WEBHOOK_VARIABLE: url, TOKEN_VARIABLE: TOKEN}


def test_a_promotion_into_an_environment_that_keeps_change_records_files_one(
    harness: Harness,
) -> None:
    d = desk(harness)

    dev = d.service.promote(d.world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)
    prod = d.to_prod()

    filed = d.event(prod, FILED)
    assert d.kinds(prod) == ["promotion.requested", "promotion.blocked", FILED]
    assert filed["digest"] == of_bytes(canonical_json(to_json(d.records.build(prod))))
    assert filed["webhook"] is None
    assert FILED not in d.kinds(dev)
    with pytest.raises(NotFound, match="only environments with `change_record: true`"):
        d.records.get(dev)


def test_the_record_shows_the_gates_the_approvals_the_notes_and_the_risk(
    harness: Harness,
) -> None:
    d = desk(harness)
    through_staging(d.world, d.service)
    prod = d.to_prod()
    d.service.approve(prod.id, LEAD, comment="dashboards are green")

    record = d.records.get(d.service.get(prod.id))

    assert record.state == "deployed"
    assert [(g.gate, g.outcome) for g in record.gates][:3] == [
        ("after", "passed"),
        ("soak", "passed"),
        ("approvals", "passed"),
    ]
    assert [(a.by, a.role, a.comment) for a in record.approvals] == [
        ("lead@example.com", "approver", "dashboards are green")
    ]
    assert record.notes.sections[0].title == "Features"
    assert record.risk.level == "medium"
    assert record.risk.reasons == ("no test results were reported by the release's run (medium)",)


def test_a_record_is_posted_with_the_token_and_its_delivery_is_recorded(
    harness: Harness,
) -> None:
    with WebhookServer() as server:
        d = desk(harness, webhook(server.url))
        prod = d.to_prod()

    (request,) = server.requests
    assert request.path == "/itsm/changes"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == to_json(d.records.build(prod))
    assert of_bytes(request.body) == d.event(prod, FILED)["digest"]
    assert d.event(prod, DELIVERED) == {
        "promotion": prod.id,
        "webhook": server.url,
        "status": 201,
        "reason": "HTTP 201 Created",
    }
    assert d.warnings == []
    assert TOKEN not in d.whole_log()


def test_a_webhook_that_fails_is_recorded_and_reported_and_the_promotion_goes_on(
    harness: Harness,
) -> None:
    with WebhookServer(Answer(status=503)) as server:
        d = desk(harness, webhook(server.url))
        prod = d.to_prod()

    assert prod.state == "blocked"
    assert d.kinds(prod)[-2:] == [FILED, DELIVERY_FAILED]
    failed = d.event(prod, DELIVERY_FAILED)
    assert (failed["status"], failed["reason"]) == (503, "HTTP 503 Service Unavailable")
    (warning,) = d.warnings
    assert warning.startswith(f"the change record of promotion {prod.id} was not delivered to")
    assert TOKEN not in d.whole_log() + warning


def test_a_reason_that_echoes_the_token_is_masked(harness: Harness) -> None:
    with WebhookServer(Answer(status=401, reason=f"bad token {TOKEN}")) as server:
        d = desk(harness, webhook(server.url))
        prod = d.to_prod()

    assert d.event(prod, DELIVERY_FAILED)["reason"] == "HTTP 401 bad token ***"
    assert TOKEN not in d.whole_log() + "".join(d.warnings)


def test_an_unreachable_webhook_is_a_failed_delivery_without_a_status(harness: Harness) -> None:
    d = desk(harness, webhook(closed_port_url()))

    prod = d.to_prod()

    failed = d.event(prod, DELIVERY_FAILED)
    assert failed["status"] is None
    assert failed["reason"] == "Connection refused"


def test_a_webhook_that_does_not_answer_in_time_is_a_failed_delivery(harness: Harness) -> None:
    with WebhookServer(Answer(delay_s=2.0)) as server:
        d = desk(harness, webhook(server.url))
        prod = d.to_prod()

    assert d.event(prod, DELIVERY_FAILED)["reason"] == "no answer within 0.5s"


def test_a_redirect_is_not_followed_so_the_token_reaches_only_the_configured_host(
    harness: Harness,
) -> None:
    elsewhere = WebhookServer()
    redirecting = WebhookServer(Answer(status=302, location=elsewhere.url))
    with elsewhere, redirecting:
        d = desk(harness, webhook(redirecting.url))
        prod = d.to_prod()

    assert elsewhere.requests == []
    assert d.event(prod, DELIVERY_FAILED)["status"] == 302


def test_a_webhook_url_is_recorded_without_its_credentials_or_query(harness: Harness) -> None:
    with WebhookServer() as server:
        url = server.url.replace("http://", "http://user:pw@") + "?key=k3y"
        d = desk(harness, {WEBHOOK_VARIABLE: url})
        prod = d.to_prod()

    assert d.event(prod, FILED)["webhook"] == server.url + "?..."
    assert "k3y" not in d.whole_log()
    assert "pw@" not in d.whole_log()


def test_a_failed_last_deployment_into_the_environment_makes_the_next_record_high_risk(
    harness: Harness,
) -> None:
    d = desk(harness)
    through_staging(d.world, d.service)
    first = d.to_prod()
    d.service.approve(first.id, LEAD)
    with d.world.runs.db.write() as tx:
        promotion_store.set_state(tx, promotion_id=first.id, state="failed", now=0.0)

    record = d.records.get(d.to_prod())

    assert record.risk.level == "high"
    assert "the last deployment into this environment (0.1.0) failed (high)" in record.risk.reasons


def test_policy_warnings_are_reasons_of_the_risk(harness: Harness) -> None:
    harness.write(
        "policies/release.yaml",
        "version: 1\nrules:\n  - name: any-change\n    warn: release.change.commits > 0\n"
        "    message: '{release.change.commits} commit(s): watch the rollout'\n",
    )
    d = desk(harness, extra="        policies: [any-change]")

    record = d.records.get(d.to_prod())

    assert record.facts.warnings == ("'any-change' warns: 1 commit(s): watch the rollout",)
    assert "policy warning: 'any-change' warns: 1 commit(s): watch the rollout (medium)" in (
        record.risk.reasons
    )
