"""`conveyor promote`, `approve`, `reject`, `why` and `promotions` end to end, through the CLI."""

from __future__ import annotations

from typing import Any

from .instances import server
from .support import Workspace, WorkspaceFactory, assert_chain_intact, wait_for

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
        approvals: {count: 1, roles: [approver, release-manager]}
"""
FILES = {
    "src/shop/app.py": server(),
    ".gitignore": "dist/\n",
    "conveyor-roles.yaml": (
        "version: 1\n"
        "roles:\n"
        "  lead@example.com: [approver]\n"
        "  dev@example.com: [approver]\n"
        "  intern@example.com: [developer]\n"
    ),
}
LEAD = {"CONVEYOR_ACTOR": "lead@example.com"}


def released(workspace: WorkspaceFactory) -> Workspace:
    """A git workspace (commits by dev@example.com) with release 0.1.0 of `shop`."""
    ws = workspace(SPEC, files=FILES)
    ws.init_git()
    ran = ws.run()
    assert ran.code == 0, ran.err
    made = ws.cli("release", "create", "--run", "latest")
    assert made.code == 0, made.err
    return ws


def promote(ws: Workspace, env: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = ws.cli("promote", "shop", "0.1.0", "--to", env, "--json", *args)
    assert result.out.strip(), result.err
    doc: dict[str, Any] = result.json()
    return result.code, doc


def outcomes(doc: dict[str, Any]) -> dict[str, str]:
    return {gate["gate"]: gate["outcome"] for gate in doc["gates"]}


def test_a_release_moves_to_dev_by_itself_and_to_prod_once_another_person_approves(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)

    dev_code, dev = promote(ws, "dev")
    waiting = ws.start("promote", "shop", "0.1.0", "--to", "prod", "--timeout", "60s")
    wait_for(lambda: _open_prod(ws), what="the prod promotion to be recorded")
    approved = ws.cli("approve", "2", "--comment", "ship it", env=LEAD)
    waiting.wait(timeout=60)
    prod = ws.output_of(waiting)

    assert (dev_code, dev["state"]) == (0, "deployed")
    assert set(outcomes(dev).values()) == {"passed"}
    assert approved.code == 0, approved.err
    assert prod.code == 0, prod.err
    assert "promotion 2 is blocked: approvals: 0 of 1 approvals" in prod.out
    assert "promotion 2: shop 0.1.0 -> prod: deployed" in prod.out
    assert "✓ approvals  passed   approved by lead@example.com (approver)" in prod.out
    assert "lead@example.com approved as approver" in prod.out
    assert_chain_intact(ws.events())


def _open_prod(ws: Workspace) -> bool:
    listed = ws.cli("promotions", "--json", "--env", "prod").json()["promotions"]
    return bool(listed) and listed[0]["state"] == "blocked"


def test_without_waiting_a_promotion_blocked_for_approval_is_recorded_and_exits_0(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)
    promote(ws, "dev")

    code, doc = promote(ws, "prod", "--no-wait")

    assert code == 0
    assert doc["state"] == "blocked"
    assert doc["waited"] == "recorded"
    assert outcomes(doc)["approvals"] == "blocked"
    assert doc["requested_by"] == "e2e@example.com"


def test_waiting_ends_at_the_timeout_with_exit_1_and_every_gate_printed(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)

    result = ws.cli("promote", "shop", "0.1.0", "--to", "prod", "--timeout", "1s")

    assert result.code == 1
    for gate in ("after", "soak", "approvals", "window", "freeze", "policies", "signed"):
        assert f" {gate} " in result.out
    assert "✗ after      blocked  0.1.0 is not deployed in dev; promote it to dev first" in (
        result.out
    )
    assert result.out.rstrip().endswith("waiting ended: timed out waiting")


def test_every_way_around_segregation_of_duties_is_refused_with_exit_1(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)
    promote(ws, "dev")
    promote(ws, "prod", "--no-wait")

    self_approval = ws.cli("approve", "2")
    author = ws.cli("approve", "2", env={"CONVEYOR_ACTOR": "dev@example.com"})
    wrong_role = ws.cli("approve", "2", env={"CONVEYOR_ACTOR": "intern@example.com"})
    state = ws.cli("why", "shop", "0.1.0", "--env", "prod", "--json").json()["state"]

    assert (self_approval.code, author.code, wrong_role.code) == (1, 1, 1)
    assert "e2e@example.com requested promotion 2, so cannot approve it" in self_approval.err
    assert "wrote or committed a change in shop 0.1.0" in author.err
    assert "takes one of the roles approver, release-manager" in wrong_role.err
    assert state == "blocked"
    refused = [e for e in ws.events() if e["kind"] == "approval.refused"]
    assert [e["actor"] for e in refused] == [
        "e2e@example.com",
        "dev@example.com",
        "intern@example.com",
    ]


def test_the_requester_cannot_approve_even_with_an_approving_role(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)
    promote(ws, "dev", "--no-wait")
    ws.cli("promote", "shop", "0.1.0", "--to", "prod", "--no-wait", env=LEAD)

    own = ws.cli("approve", "2", env=LEAD)

    assert own.code == 1
    assert "lead@example.com requested promotion 2, so cannot approve it" in own.err


def test_a_rejected_promotion_cannot_be_approved_and_why_explains_it(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)
    promote(ws, "dev")
    promote(ws, "prod", "--no-wait")

    rejected = ws.cli("reject", "2", "-m", "not this week", env=LEAD)
    late = ws.cli("approve", "2", env={"CONVEYOR_ACTOR": "other@example.com"})
    why = ws.cli("why", "shop", "0.1.0", "--env", "prod")

    assert rejected.code == 0, rejected.err
    assert "promotion 2: shop 0.1.0 -> prod: rejected" in rejected.out
    assert late.code == 1
    assert "promotion 2 was rejected; it cannot be approved or rejected any more" in late.err
    assert why.code == 0
    assert "lead@example.com rejected as approver" in why.out
    assert "not this week" in why.out


def test_why_explains_the_latest_decision_gate_by_gate(workspace: WorkspaceFactory) -> None:
    ws = released(workspace)
    promote(ws, "prod", "--no-wait")

    text = ws.cli("why", "shop", "latest", "--env", "prod")
    doc = ws.cli("why", "shop", "0.1.0", "--env", "prod", "--json").json()
    never = ws.cli("why", "shop", "0.1.0", "--env", "dev")

    assert text.code == 0
    assert "promotion 1: shop 0.1.0 -> prod: blocked" in text.out
    assert "next: `conveyor approve 1` by someone with the role approver or release-manager" in (
        text.out
    )
    assert [g["gate"] for g in doc["gates"]] == [
        "after",
        "soak",
        "approvals",
        "window",
        "freeze",
        "policies",
        "signed",
    ]
    assert doc["requirements"]["approvals"] == {
        "count": 1,
        "roles": ["approver", "release-manager"],
    }
    assert never.code == 2
    assert "shop 0.1.0 was never promoted to dev" in never.err


def test_two_promotions_into_one_environment_at_once_leave_the_older_superseded(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)
    procs = [
        ws.start("promote", "shop", "0.1.0", "--to", "prod", "--no-wait", "--json")
        for _ in range(2)
    ]
    for proc in procs:
        proc.wait(timeout=60)
        assert ws.output_of(proc).code == 0, ws.output_of(proc).err

    listed = ws.cli("promotions", "--json").json()["promotions"]

    assert [(p["id"], p["state"]) for p in listed] == [(2, "blocked"), (1, "superseded")]
    kinds = [e["kind"] for e in ws.events() if e["subject"].endswith("/promotion/1")]
    assert kinds[-1] == "promotion.superseded"


def test_bad_arguments_and_a_bad_roles_file_are_bad_input(workspace: WorkspaceFactory) -> None:
    ws = released(workspace)

    timeout = ws.cli("promote", "shop", "0.1.0", "--to", "prod", "--timeout", "soon")
    env = ws.cli("promote", "shop", "0.1.0", "--to", "prdo")
    missing = ws.cli("approve", "9", env=LEAD)
    ws.write("conveyor-roles.yaml", "version: 1\nroles:\n  lead@example.com: [aprover]\n")
    roles = ws.cli("approve", "1", env=LEAD)

    assert (timeout.code, env.code, missing.code, roles.code) == (2, 2, 2, 2)
    assert "--timeout: 'soon' is not a duration" in timeout.err
    assert "has no environment 'prdo'; did you mean 'prod'?" in env.err
    assert "there is no promotion 9" in missing.err
    assert "conveyor-roles.yaml:3:22: 'aprover' is not a role" in roles.err


def test_promotions_lists_newest_first_and_says_when_there_are_none(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace)
    empty = ws.cli("promotions")
    promote(ws, "dev")
    promote(ws, "prod", "--no-wait")

    listed = ws.cli("promotions")

    assert "no promotions yet" in empty.out
    lines = listed.out.splitlines()
    assert lines[0].split() == ["ID", "SERVICE", "VERSION", "ENV", "STATE", "REQUESTED", "BY"]
    assert lines[1].split()[:5] == ["2", "shop", "0.1.0", "prod", "blocked"]
    assert lines[2].split()[:5] == ["1", "shop", "0.1.0", "dev", "deployed"]
