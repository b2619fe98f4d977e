"""`conveyor reconcile` moves waiting promotions on: a soak that ends, a window that opens."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from .instances import delivering, get, server
from .support import Workspace, WorkspaceFactory
from .timeshift import at, later

SPEC = delivering(
    """\
    - name: dev
    - name: staging
      requires: {{after: dev, soak: {soak}}}
    - name: prod
      requires: {{after: dev, window: "{window}"}}
"""
)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def next_window() -> tuple[str, datetime]:
    """A half-hour window two hours from now (so closed now), and the moment it opens."""
    opens = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    end = opens + timedelta(minutes=30)
    return f"{DAYS[opens.weekday()]} {opens:%H:%M}-{end:%H:%M} UTC", opens


def in_dev(workspace: WorkspaceFactory, *, soak: str = "10m") -> tuple[Workspace, datetime]:
    window, opens = next_window()
    ws = workspace(SPEC.format(soak=soak, window=window), files={"app/server.py": server()})
    assert ws.run().code == 0
    assert ws.cli("release", "create", "--run", "latest").code == 0
    deployed = ws.cli("promote", "hello", "0.1.0", "--to", "dev")
    assert deployed.code == 0, deployed.text
    return ws, opens


def promotion(ws: Workspace, env: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    listed = ws.cli("promotions", "--env", env, "--json", env=extra).json()["promotions"]
    assert listed, f"no promotion into {env}"
    found: dict[str, Any] = listed[0]
    return found


def test_a_promotion_waiting_out_a_soak_is_deployed_by_reconcile_once_the_soak_ended(
    workspace: WorkspaceFactory,
) -> None:
    ws, _ = in_dev(workspace)
    waiting = ws.cli("promote", "hello", "0.1.0", "--to", "staging", "--no-wait", "--json")
    early = ws.cli("reconcile", "--once", "--json")
    still = promotion(ws, "staging")
    after_soak = later(ws.side, 11 * 60)
    once = ws.cli("reconcile", "--once", "--json", env=after_soak)
    approved = promotion(ws, "staging", after_soak)
    driven = ws.cli("reconcile", "--timeout", "60s", env=after_soak)

    assert (waiting.code, waiting.json()["state"]) == (0, "pending")
    assert early.code == 0, early.text
    assert (still["state"], early.json()["deployments"]) == ("pending", [])
    assert once.code == 0, once.text
    assert approved["state"] in ("approved", "deployed")
    assert [d["environment"] for d in once.json()["deployments"]] == ["staging"]
    assert driven.code == 0, driven.text
    assert promotion(ws, "staging", after_soak)["state"] == "deployed"
    status = ws.cli("status", "--json", env=after_soak).json()
    staging = next(e for e in status["environments"] if e["name"] == "staging")
    assert get(staging["instances"][0]["address"]) == (200, "0.1.0")


def test_reconcile_keeps_going_until_a_short_soak_ends_and_the_promotion_is_deployed(
    workspace: WorkspaceFactory,
) -> None:
    ws, _ = in_dev(workspace, soak="3s")
    ws.cli("promote", "hello", "0.1.0", "--to", "staging", "--no-wait")
    started = time.monotonic()

    driven = ws.cli("reconcile", "--timeout", "60s", "--json")

    assert driven.code == 0, driven.text
    assert [d["phase"] for d in driven.json()["deployments"]] == ["succeeded"]
    assert promotion(ws, "staging")["state"] == "deployed"
    assert time.monotonic() - started < 30


def test_a_promotion_waiting_for_a_window_is_deployed_by_reconcile_once_the_window_opens(
    workspace: WorkspaceFactory,
) -> None:
    ws, opens = in_dev(workspace)
    waiting = ws.cli("promote", "hello", "0.1.0", "--to", "prod", "--no-wait", "--json")
    closed = ws.cli("reconcile", "--timeout", "5s")
    still = promotion(ws, "prod")
    inside = at(ws.side, (opens + timedelta(minutes=5)).timestamp())
    driven = ws.cli("reconcile", "--timeout", "60s", env=inside)

    assert (waiting.code, waiting.json()["state"]) == (0, "pending")
    window = next(g for g in waiting.json()["gates"] if g["gate"] == "window")
    assert window["outcome"] == "waiting"
    assert closed.code == 0, closed.text
    assert "no deployment is due" in closed.out
    assert still["state"] == "pending"
    assert driven.code == 0, driven.text
    assert promotion(ws, "prod", inside)["state"] == "deployed"


def test_reconcile_does_not_wait_for_a_person(workspace: WorkspaceFactory) -> None:
    ws, _ = in_dev(workspace)
    ws.cli("promote", "hello", "0.1.0", "--to", "prod", "--no-wait")
    started = time.monotonic()

    result = ws.cli("reconcile", "--timeout", "30s")

    assert result.code == 0
    assert time.monotonic() - started < 15
