"""Who may do what: the role table, project limits and runner tokens."""

from __future__ import annotations

import pytest

from conveyor.access.roles import ACTIONS, PERMISSIONS, ROLES, Principal, allowed, check_role


def test_a_viewer_may_read_runs_but_not_cancel_them() -> None:
    viewer = Principal("v", "user", "viewer")
    assert allowed(viewer, "runs.read").allowed
    refused = allowed(viewer, "runs.cancel")
    assert not refused.allowed
    assert "developer" in refused.reason


def test_only_approvers_release_managers_and_admins_approve_promotions() -> None:
    holders = [
        r for r in ROLES if allowed(Principal("p", _kind(r), r), "promotions.approve").allowed
    ]
    assert holders == ["approver", "release-manager", "admin"]


def test_only_runner_tokens_do_agent_work_and_nothing_else() -> None:
    runner = Principal("agent", "runner", "runner")
    assert allowed(runner, "agent.work").allowed
    # Agents also fetch sources and needed outputs, upload outputs and logs, by digest,
    # and share the job cache.
    assert sorted(a for a in ACTIONS if allowed(runner, a).allowed) == [
        "agent.work",
        "artifacts.read",
        "artifacts.write",
        "cache.read",
        "cache.write",
        "self.read",
    ]
    assert not allowed(Principal("root", "user", "admin"), "agent.work").allowed
    assert not allowed(Principal("root", "user", "admin"), "cache.write").allowed


def test_a_project_token_acts_only_on_its_project() -> None:
    dev = Principal("d", "user", "developer", project="shop")
    assert allowed(dev, "runs.create", "shop").allowed
    assert "limited to project shop" in allowed(dev, "runs.create", "billing").reason


def test_an_unknown_action_is_refused_even_for_an_admin() -> None:
    assert not allowed(Principal("root", "user", "admin"), "runs.delete").allowed


def test_a_user_token_with_the_runner_role_is_refused() -> None:
    assert not allowed(Principal("x", "user", "runner"), "agent.work").allowed


def test_an_unknown_role_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="use one of viewer, developer, approver"):
        check_role("root")
    assert set(PERMISSIONS) == set(ROLES)


def _kind(role: str) -> str:
    return "runner" if role == "runner" else "user"
