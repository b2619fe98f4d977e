"""The whole road through the CLI: one Release from dev through a soak in staging to prod."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from .instances import delivering, get, server
from .support import WorkspaceFactory, assert_chain_intact
from .timeshift import at, later

SPEC = delivering(
    """\
    - name: dev
    - name: staging
      requires: {after: dev, soak: 10m}
    - name: prod
      requires:
        after: staging
        approvals: {count: 1, roles: [approver]}
"""
)
FILES = {
    "app/server.py": server(),
    ".gitignore": "dist/\n",
    "conveyor-roles.yaml": "version: 1\nroles:\n  lead@example.com: [approver]\n",
}


def state_of(doc: dict[str, Any]) -> str:
    return str(doc["state"])


def test_a_release_goes_from_dev_through_a_soak_in_staging_to_an_approved_prod(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC, files=FILES)
    ws.init_git()
    assert ws.run().code == 0
    assert ws.cli("release", "create", "--run", "latest").code == 0
    soaked = later(ws.side, 11 * 60)
    lead = {**soaked, "CONVEYOR_ACTOR": "lead@example.com"}

    dev = ws.cli("promote", "hello", "0.1.0", "--to", "dev", "--json")
    too_early = ws.cli("promote", "hello", "0.1.0", "--to", "staging", "--no-wait", "--json")
    # Eleven minutes later the soak has passed: the waiting promotion proceeds by itself.
    moved_on = ws.cli("reconcile", "--timeout", "60s", env=soaked)
    prod = ws.cli("promote", "hello", "0.1.0", "--to", "prod", "--no-wait", "--json", env=soaked)
    self_approval = ws.cli("approve", str(prod.json()["id"]), env=soaked)
    approved = ws.cli("approve", str(prod.json()["id"]), "--comment", "go", env=lead)
    deployed = ws.cli("reconcile", "--timeout", "60s", env=soaked)
    status = ws.cli("status", "--json", env=soaked)
    verified = ws.cli("audit", "verify", env=soaked)

    assert state_of(dev.json()) == "deployed", dev.text
    assert state_of(too_early.json()) == "pending"
    soak = next(g for g in too_early.json()["gates"] if g["gate"] == "soak")
    assert soak["outcome"] == "waiting"
    assert moved_on.code == 0, moved_on.text
    assert state_of(prod.json()) == "blocked"
    assert self_approval.code == 1
    assert approved.code == 0, approved.text
    assert deployed.code == 0, deployed.text
    environments = {e["name"]: e for e in status.json()["environments"]}
    for name in ("dev", "staging", "prod"):
        env = environments[name]
        assert env["release"]["version"] == "0.1.0", env
        assert [get(i["address"]) for i in env["instances"]] == [(200, "0.1.0")]
    assert verified.code == 0, verified.text
    assert_chain_intact(ws.events())


FROZEN = delivering(
    """\
    - name: dev
      requires:
        freeze: [{{from: {start}, until: {end}, reason: year-end freeze}}]
"""
)


def test_a_freeze_blocks_a_promotion_with_its_reason_until_it_ends_then_it_proceeds(
    workspace: WorkspaceFactory,
) -> None:
    today = datetime.now(UTC).date()
    ws = workspace(FROZEN.format(start=today, end=today + timedelta(days=2)), files=FILES)
    assert ws.run().code == 0
    assert ws.cli("release", "create", "--run", "latest").code == 0
    thawed = at(ws.side, datetime.combine(today + timedelta(days=3), time(9), UTC).timestamp())

    frozen = ws.cli("promote", "hello", "0.1.0", "--to", "dev", "--no-wait", "--json")
    still = ws.cli("reconcile", "--once", "--json")
    after = ws.cli("reconcile", "--timeout", "60s", env=thawed)
    listed = ws.cli("promotions", "--env", "dev", "--json", env=thawed)

    assert frozen.code == 0, frozen.text
    freeze = next(g for g in frozen.json()["gates"] if g["gate"] == "freeze")
    assert freeze["outcome"] != "passed"
    assert "year-end freeze" in freeze["reason"]
    assert still.json()["deployments"] == []
    assert after.code == 0, after.text
    assert listed.json()["promotions"][0]["state"] == "deployed"
