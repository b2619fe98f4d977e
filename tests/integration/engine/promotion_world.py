"""A workspace in git with a released service, and the Promotion service over it, for tests."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from conveyor.core.clock import FrozenClock
from conveyor.engine.history import History
from conveyor.engine.promotion_facts import ContentCheck
from conveyor.engine.promotions import PromotionService, RecordAsDeployed
from conveyor.engine.releases import ReleaseService
from conveyor.engine.service import RunRequest, RunService
from conveyor.executors.base import ExecRequest
from conveyor.executors.fake import FakeExecutor, FakeOutcome
from conveyor.promotion.model import Actor
from conveyor.release.model import Release
from conveyor.spec.pipeline import Pipeline

from .harness import Harness, parse

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday
SPEC = """\
version: 1
jobs:
  build:
    run: build
    inputs: []
    env: {{CONTENT: {content}}}
    outputs: ["dist/*.whl"]
delivery:
  service: payments-api
  artifacts: ["dist/*.whl"]
  run: python -m app --port $PORT
  environments:
    - name: dev
    - name: staging
      requires: {{after: dev, soak: 10m}}
    - name: prod
      requires:
        after: staging
        approvals: {{count: {count}, roles: [approver, release-manager]}}
{extra}
"""
REQUESTER = Actor("dev@example.com", ("developer",))
LEAD = Actor("lead@example.com", ("approver",))
MANAGER = Actor("rm@example.com", ("release-manager",))


def producing(request: ExecRequest, _attempt: int) -> FakeOutcome:
    """Writes $CONTENT to dist/app.whl."""
    path = request.cwd / "dist" / "app.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(request.env["CONTENT"])
    return FakeOutcome()


def git(harness: Harness, *args: str, author: str = "Ada Lovelace <ada@example.com>") -> None:
    name, email = author.rstrip(">").split(" <")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": "Merge Bot",
        "GIT_COMMITTER_EMAIL": "merge-bot@example.com",
    }
    subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args], cwd=harness.root, env=env, check=True
    )


@dataclass
class World:
    """One released service, with a frozen clock the tests move."""

    harness: Harness
    clock: FrozenClock
    runs: RunService
    releases: ReleaseService
    pipeline: Pipeline
    release: Release

    def service(self, *, deploy: bool = True) -> PromotionService:
        """A Promotion service; approved promotions are recorded as deployed unless told not to."""
        runs = self.runs
        return PromotionService(
            self.harness.workspace,
            db=runs.db,
            releases=self.releases,
            artifacts=ContentCheck(runs.cas),
            clock=self.clock,
            deployer=RecordAsDeployed(runs.db, self.clock, "conveyor") if deploy else None,
        )


def make_world(harness: Harness, *, count: int = 1, extra: str = "") -> World:
    """Commit, run and release the service; authored by Ada, co-authored by Grace."""
    pipeline = parse(SPEC.format(content="v1", count=count, extra=extra))
    git(harness, "init", "-q", "-b", "main")
    harness.write("README", "payments\n")
    git(harness, "add", "-A")
    git(
        harness,
        "commit",
        "-q",
        "-m",
        "feat: refunds\n\nCo-authored-by: Grace Hopper <grace@example.com>",
    )
    clock = FrozenClock(T0)
    runs = harness.service(FakeExecutor(producing))
    runs.run(pipeline, RunRequest(max_parallel=1), harness.reporter)
    history = History(harness.workspace, db=runs.db, cas=runs.cas, executor=runs.executor)
    releases = ReleaseService(
        harness.workspace,
        db=runs.db,
        cas=runs.cas,
        history=history,
        clock=clock,
        environ=harness.environ,
    )
    release = releases.create(pipeline, "latest").release
    return World(harness, clock, runs, releases, pipeline, release)


def through_staging(world: World, service: PromotionService) -> None:
    """Deploy 0.1.0 to dev and staging, and wait out staging's soak (the clock moves 10m)."""
    service.promote(world.pipeline, "payments-api", "0.1.0", "dev", REQUESTER)
    staging = service.promote(world.pipeline, "payments-api", "0.1.0", "staging", REQUESTER)
    world.clock.advance(600)
    assert service.reevaluate(staging.id).state == "deployed"
