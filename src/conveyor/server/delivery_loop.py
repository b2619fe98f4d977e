"""The server's delivery loop: promotions proceed and Deployments are carried out unattended.

Every few seconds one reconcile pass re-evaluates the open promotions (a soak
that ended, a window that opened, an approval given through the API) and
drives each due Deployment one step on the workspace's local target. Any
number of replicas may run it: a Deployment is worked on under a lease, so
one replica drives it at a time, and another takes over when it stops.
"""

from __future__ import annotations

import asyncio
import logging

from conveyor.server.background import repeat
from conveyor.server.logs import LOGGER
from conveyor.server.state import ServerState

RECONCILE_EVERY_S = 2.0

log = logging.getLogger(LOGGER)


async def reconcile_deliveries(
    state: ServerState, stop: asyncio.Event, *, every_s: float = RECONCILE_EVERY_S
) -> None:
    """One reconcile pass every `every_s` seconds, until `stop` is set."""
    failed = "the delivery reconcile pass failed; trying again"
    await repeat(stop, every_s, lambda: reconcile_once(state), failed=failed)


def reconcile_once(state: ServerState) -> None:
    """One pass, when the workspace has a pipeline with a `delivery:` section to deliver."""
    delivery = state.delivery
    if not delivery.workspace.spec_path.is_file():
        return
    moved = delivery.reconcile_once()
    for deployment in moved:
        log.info(
            "deployment reconciled",
            extra={"deployment": deployment.id, "phase": deployment.phase},
        )
