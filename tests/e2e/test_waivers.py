"""`conveyor waiver` end to end: a rule that blocks prod, excused for a while by a second person."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .instances import server
from .support import Workspace, WorkspaceFactory, assert_chain_intact
from .timeshift import later

SPEC = """
version: 1
jobs:
  build:
    inputs: ["src/**"]
    run: |
      mkdir -p dist
      cp src/shop/app.py dist/app.py
    outputs: ["dist/*.py"]
delivery:
  service: shop
  artifacts: ["dist/*.py"]
  run: python dist/app.py
  environments:
    - name: dev
    - name: prod
      requires:
        after: dev
        policies: [no-prod-during-migration]
"""
RULES = """\
version: 1
rules:
  - name: no-prod-during-migration
    when: environment.name == 'prod'
    deny: "true"
    message: prod is frozen while the database migrates
"""
FILES = {
    "src/shop/app.py": server(),
    ".gitignore": "dist/\n",
    "policies/release.yaml": RULES,
    "conveyor-roles.yaml": (
        "version: 1\nroles:\n  lead@example.com: [approver]\n  e2e@example.com: [approver]\n"
    ),
}
LEAD = {"CONVEYOR_ACTOR": "lead@example.com"}
RULE = "no-prod-during-migration"


def released(workspace: WorkspaceFactory) -> Workspace:
    ws = workspace(SPEC, files=FILES)
    ws.init_git()
    assert ws.run().code == 0
    made = ws.cli("release", "create", "--run", "latest")
    assert made.code == 0, made.err
    deployed = ws.cli("promote", "shop", "0.1.0", "--to", "dev")
    assert deployed.code == 0, deployed.text
    return ws


def create(ws: Workspace, *args: str) -> Any:
    return ws.cli("waiver", "create", "--rule", RULE, "--env", "prod", *args)


def gate(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(g for g in doc["gates"] if g["gate"] == name)
    return found


def test_a_waiver_approved_by_a_second_person_lets_a_blocked_prod_promotion_proceed(
    workspace: WorkspaceFactory, tmp_path: Path
) -> None:
    ws = released(workspace)
    blocked = ws.cli("promote", "shop", "0.1.0", "--to", "prod", "--no-wait", "--json")
    requested = create(ws, "--expires", "2h", "--reason", "migration hotfix INC-42", "--json")
    own = ws.cli("waiver", "approve", "1")
    approved = ws.cli("waiver", "approve", "1", "-m", "go ahead", "--json", env=LEAD)
    driven = ws.cli("reconcile", "--timeout", "60s")
    why = ws.cli("why", "shop", "0.1.0", "--env", "prod", "--json")
    why_text = ws.cli("why", "shop", "0.1.0", "--env", "prod")
    hours_later = later(ws.side, 3 * 3600)
    expired = ws.cli("waiver", "show", "1", "--json", env=hours_later)
    again = ws.cli(
        "promote", "shop", "0.1.0", "--to", "prod", "--no-wait", "--json", env=hours_later
    )

    assert blocked.code == 1
    assert gate(blocked.json(), "policies")["reason"] == (
        f"denied by '{RULE}': prod is frozen while the database migrates"
    )
    assert requested.code == 0, requested.err
    assert (requested.json()["state"], requested.json()["requested_by"]) == (
        "pending",
        "e2e@example.com",
    )
    assert own.code == 1
    assert "e2e@example.com requested waiver 1, so cannot approve it" in own.err
    assert approved.code == 0, approved.err
    assert (approved.json()["state"], approved.json()["decided_by"]) == (
        "active",
        "lead@example.com",
    )
    assert driven.code == 0, driven.text
    assert why.json()["state"] == "deployed"
    reason = gate(why.json(), "policies")["reason"]
    assert f"'{RULE}' waived by waiver 1 until {requested.json()['expires_at']}" in reason
    assert "(migration hotfix INC-42)" in reason
    assert gate(why.json(), "policies")["waivers"] == [1]
    assert "waived by waiver 1" in why_text.out
    assert expired.json()["state"] == "expired"
    assert again.code == 1
    assert again.json()["state"] == "blocked"
    assert gate(again.json(), "policies")["outcome"] == "blocked"

    events = ws.events()
    waiver_events = [(e["kind"], e["subject"]) for e in events if e["kind"].startswith("waiver.")]
    assert waiver_events == [
        ("waiver.requested", "waiver/ws/1"),
        ("waiver.refused", "waiver/ws/1"),
        ("waiver.approved", "waiver/ws/1"),
        ("waiver.used", "release/shop/0.1.0/promotion/2"),
    ]
    used = json.loads(next(e["data"] for e in events if e["kind"] == "waiver.used"))
    assert (used["waiver"], used["promotion"], used["rule"]) == (1, 2, RULE)
    assert_chain_intact(events)

    bundle = tmp_path / "evidence.zip"
    exported = ws.cli("evidence", "export", "shop", "0.1.0", "-o", str(bundle))
    assert exported.code == 0, exported.text
    with zipfile.ZipFile(bundle) as archive:
        promotions = json.loads(archive.read("promotions.json"))["promotions"]
        kinds = [json.loads(line)["kind"] for line in archive.read("events.jsonl").splitlines()]
        report = archive.read("report.html").decode()
    prod = next(p for p in promotions if p["id"] == 2)
    assert [(w["id"], w["rule"], w["decided_by"]) for w in prod["waivers"]] == [
        (1, RULE, "lead@example.com")
    ]
    assert {"waiver.requested", "waiver.approved", "waiver.used"} <= set(kinds)
    assert "Waivers relied on:" in report
    assert f"<td>{RULE}</td><td>migration hotfix INC-42</td>" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--rule", "no-prod-during-migratio", "--env", "prod"],
            f"policies/*.yaml defines no rule 'no-prod-during-migratio'; did you mean '{RULE}'?",
        ),
        (["--rule", RULE, "--env", "prd"], "has no environment 'prd'; did you mean 'prod'?"),
    ],
)
def test_an_unknown_rule_or_environment_is_bad_input_naming_the_valid_one(
    workspace: WorkspaceFactory, args: list[str], message: str
) -> None:
    ws = workspace(SPEC, files=FILES)

    result = ws.cli("waiver", "create", *args, "--expires", "1h", "--reason", "why")

    assert result.code == 2
    assert message in result.err


@pytest.mark.parametrize(
    ("expires", "reason", "message"),
    [
        ("0s", "why", "--expires: a waiver must last some time"),
        ("31d", "why", "--expires: a waiver lasts at most 30d"),
        ("soon", "why", "--expires: 'soon' is not a duration"),
        ("1h", "  ", "--reason is empty"),
    ],
)
def test_a_bad_duration_or_an_empty_reason_is_bad_input_and_nothing_is_stored(
    workspace: WorkspaceFactory, expires: str, reason: str, message: str
) -> None:
    ws = workspace(SPEC, files=FILES)

    result = create(ws, "--expires", expires, "--reason", reason)
    listed = ws.cli("waiver", "list", "--json")

    assert result.code == 2
    assert message in result.err
    assert listed.json() == {"waivers": []}


def test_list_and_show_explain_each_waiver_and_what_moves_it_on(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC, files=FILES)
    create(ws, "--expires", "48h", "--reason", "hotfix")

    listed = ws.cli("waiver", "list")
    shown = ws.cli("waiver", "show", "1")
    unknown_state = ws.cli("waiver", "list", "--state", "activ")
    missing = ws.cli("waiver", "show", "7")

    assert listed.code == 0
    assert "pending" in listed.out and RULE in listed.out
    assert f"waiver 1: '{RULE}' in prod: pending" in shown.out
    assert "next: `conveyor waiver approve 1` by someone else" in shown.out
    assert unknown_state.code == 2
    assert "did you mean 'active'?" in unknown_state.err
    assert missing.code == 2
    assert "there is no waiver 7" in missing.err


def test_a_rejected_waiver_cannot_be_approved_and_the_requester_may_withdraw_theirs(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC, files=FILES)
    create(ws, "--expires", "48h", "--reason", "first")
    create(ws, "--expires", "48h", "--reason", "second")

    rejected = ws.cli("waiver", "reject", "1", "-m", "no", env=LEAD)
    late = ws.cli("waiver", "approve", "1", env=LEAD)
    withdrawn = ws.cli("waiver", "revoke", "2", "--json")

    assert rejected.code == 0
    assert late.code == 1
    assert "waiver 1 was rejected by lead@example.com, so it cannot be approved" in late.err
    assert withdrawn.json()["state"] == "revoked"
