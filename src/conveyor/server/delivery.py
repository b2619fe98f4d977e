"""The delivery of the server's workspace: the same services `conveyor` uses embedded.

The server delivers the workspace it runs in: the directory holding its
state directory, with `conveyor.yaml`, `policies/` and the roles map. Rules
live in the engine's services; this only composes them over the server's
database, content store and clock, and names who acts: the token's owner,
with the token's role as their role.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from conveyor.access.roles import Principal
from conveyor.artifacts.cas import ContentStore
from conveyor.core.clock import Clock
from conveyor.core.values import frozen
from conveyor.engine.change_records import ChangeRecords
from conveyor.engine.history import History
from conveyor.engine.local_deployments import LocalDeployments
from conveyor.engine.promotion_facts import ContentCheck
from conveyor.engine.promotions import PromotionService
from conveyor.engine.releases import ReleaseService
from conveyor.engine.specs import load
from conveyor.engine.waivers import WaiverService
from conveyor.engine.workspace import Workspace
from conveyor.promotion.model import Actor
from conveyor.rollout.deployment import Deployment
from conveyor.server.logs import LOGGER
from conveyor.spec.pipeline import Pipeline
from conveyor.store.db import Database

log = logging.getLogger(LOGGER)


def actor_of(principal: Principal) -> Actor:
    """Who acts through the API: the token's owner, in the token's role."""
    return Actor(principal.name, (principal.role,))


@frozen
class ServerDelivery:
    """Releases, Promotions, Waivers and Deployments of the server's workspace."""

    workspace: Workspace
    db: Database
    clock: Clock
    environ: Mapping[str, str]
    releases: ReleaseService
    promotions: PromotionService
    waivers: WaiverService
    deployments: LocalDeployments

    @property
    def project(self) -> str:
        return self.workspace.project

    def pipeline(self) -> Pipeline:
        """The workspace's pipeline as it is now (its `delivery:` section decides)."""
        return load(os.fspath(self.workspace.spec_path), self.workspace.state_dir)

    def releases_by(self, principal: Principal) -> ReleaseService:
        """The release service recording `principal`'s name as who made a release."""
        releases = self.releases
        return ReleaseService(
            self.workspace,
            db=self.db,
            cas=releases.cas,
            history=releases.history,
            clock=self.clock,
            environ={**self.environ, "CONVEYOR_ACTOR": principal.name},
        )

    def reconcile_once(self) -> list[Deployment]:
        """One pass: re-evaluate open promotions, then drive each due Deployment one step."""
        return self.deployments.reconcile(
            timeout_s=0.0, once=True, before_pass=self.promotions.reevaluate_open
        )

    def close(self) -> None:
        self.deployments.close()


def open_delivery(
    workspace: Workspace,
    *,
    db: Database,
    cas: ContentStore,
    history: History,
    clock: Clock,
    environ: Mapping[str, str],
) -> ServerDelivery:
    """The delivery services over the server's database, content store and clock."""
    releases = ReleaseService(
        workspace, db=db, cas=cas, history=history, clock=clock, environ=environ
    )
    deployments = LocalDeployments(workspace, db=db, cas=cas, clock=clock)
    change_records = ChangeRecords(
        db=db, releases=releases, clock=clock, environ=environ, warn=log.warning
    )
    promotions = PromotionService(
        workspace,
        db=db,
        releases=releases,
        artifacts=ContentCheck(cas),
        clock=clock,
        deployer=deployments.deployer,
        observers=(change_records,),
    )
    return ServerDelivery(
        workspace=workspace,
        db=db,
        clock=clock,
        environ=environ,
        releases=releases,
        promotions=promotions,
        waivers=WaiverService(workspace, db=db, clock=clock),
        deployments=deployments,
    )
