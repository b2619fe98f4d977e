"""Gathering what the Gates of a Promotion read: the store, the content store, the workspace.

The Gates themselves are pure (`conveyor.promotion.gates`); this module is
the I/O around them: what runs in the previous environment, the Release's
Run and tests, the policy rules, the roles map, and whether the artifacts
still match the Release's digests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from conveyor.artifacts.cas import ContentStore
from conveyor.core.clock import iso
from conveyor.core.digest import of_stream, short
from conveyor.core.records import RunId
from conveyor.engine.policies import load_workspace_rules
from conveyor.engine.service import actor_name
from conveyor.policy.decision_input import (
    Artifact,
    DecisionInput,
    EnvironmentFacts,
    PastDeployment,
    ReleaseChange,
    ReleaseFacts,
    ReleaseTests,
    Requester,
)
from conveyor.policy.model import Rule
from conveyor.promotion.duties import ROLES_FILE, people_of
from conveyor.promotion.model import (
    Actor,
    Approval,
    EnvironmentState,
    NewPromotion,
    PromotionFacts,
)
from conveyor.promotion.roles import RoleMap, read_roles
from conveyor.release.commits import is_merge
from conveyor.release.model import Release
from conveyor.spec.delivery import Requirements
from conveyor.store import promotions as promotion_store
from conveyor.store import runs as run_store
from conveyor.store import waivers as waiver_store
from conveyor.store.db import Database


class ArtifactCheck(Protocol):
    """The `signed` Gate's hook: what is wrong with a Release's artifacts (nothing: empty).

    Checks that the content matches the recorded digests now; signature and
    provenance verification extend it.
    """

    def problems(self, release: Release) -> tuple[str, ...]: ...


class ContentCheck:
    """Each artifact is in the content store and hashes to its recorded digest.

    Hashing large artifacts on every re-evaluation would cost seconds, so a
    digest that verified once is trusted for the life of this object.
    """

    def __init__(self, cas: ContentStore) -> None:
        self.cas = cas
        self._verified: set[str] = set()

    def problems(self, release: Release) -> tuple[str, ...]:
        found = []
        for artifact in release.artifacts:
            problem = self._problem(artifact.path, artifact.digest)
            if problem is not None:
                found.append(problem)
        return tuple(found)

    def _problem(self, path: str, digest: str) -> str | None:
        if digest in self._verified:
            return None
        if not self.cas.has(digest):
            return f"artifact {path} ({short(digest)}) is not in the content store"
        try:
            with self.cas.open(digest) as stream:
                actual = of_stream(stream)
        except OSError as exc:
            return f"artifact {path} ({short(digest)}) cannot be read: {exc.strerror or exc}"
        if actual != digest:
            return f"artifact {path} is {short(actual)}, not the released {short(digest)}"
        self._verified.add(digest)
        return None


def load_roles(root: Path) -> RoleMap:
    """The workspace's roles map (`conveyor-roles.yaml`); empty when there is none."""
    path = root / ROLES_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return RoleMap()
    return read_roles(data, _shown(path))


def current_actor(root: Path, environ: Mapping[str, str]) -> Actor:
    """Who is acting here (CONVEYOR_ACTOR, else git's user.email) with their mapped roles."""
    name = actor_name(root, environ)
    return Actor(name, load_roles(root).of(name))


def required_rules(root: Path, requirements: Requirements) -> tuple[Rule, ...]:
    """The workspace's rules that `requirements.policies` names (none read when it names none)."""
    if not requirements.policies:
        return ()
    wanted = set(requirements.policies)
    return tuple(rule for rule in load_workspace_rules(root) if rule.name in wanted)


def gather(
    db: Database,
    promotion: NewPromotion,
    release: Release,
    *,
    approvals: Sequence[Approval],
    artifacts: ArtifactCheck,
) -> PromotionFacts:
    """The facts about `promotion` of `release` as they are now."""
    requirements = promotion.basis.requirements
    previous = None
    if requirements.after is not None:
        with db.read() as tx:
            previous = promotion_store.environment_state(
                tx,
                project=promotion.project,
                service=promotion.service,
                environment=requirements.after,
            )
    return PromotionFacts(
        environment=promotion.environment,
        version=release.version,
        release_id=release.id,
        release_digest=promotion.release_digest,
        requester=promotion.requested_by,
        authors=people_of(release.commits),
        previous=previous,
        approvals=tuple(approvals),
        rules=promotion.basis.rules,
        policy_input=_policy_input(db, promotion, release)
        if requirements.policies
        else DecisionInput(),
        artifact_problems=artifacts.problems(release) if requirements.signed else (),
        waivers=tuple(
            waiver_store.approved_for(
                db, project=promotion.project, environment=promotion.environment
            )
        )
        if requirements.policies
        else (),
    )


def _policy_input(db: Database, promotion: NewPromotion, release: Release) -> DecisionInput:
    """The decision input rules read, but for `time` and `approvals` (the Gate fills those)."""
    states = promotion_store.environment_states(
        db, project=promotion.project, service=promotion.service
    )
    return DecisionInput(
        release=ReleaseFacts(
            service=release.service,
            version=release.version,
            commit=release.commit_sha or "",
            artifacts=tuple(Artifact(a.path, a.digest) for a in release.artifacts),
            tests=_tests(db, release.run_id),
            change=ReleaseChange(commits=sum(1 for c in release.commits if not is_merge(c))),
        ),
        environment=EnvironmentFacts(promotion.environment, promotion.basis.requirements.after),
        requester=Requester(promotion.requested_by, promotion.basis.requester_roles),
        previous_deployments=tuple(_deployment(state) for state in states),
    )


def _tests(db: Database, run_id: RunId) -> ReleaseTests:
    run = run_store.get_run(db, run_id=run_id)
    counts = [job.tests for job in run.jobs if job.tests is not None]
    return ReleaseTests(
        passed=sum(c.passed for c in counts),
        failed=sum(c.failed for c in counts),
        skipped=sum(c.skipped for c in counts),
    )


def _deployment(state: EnvironmentState) -> PastDeployment:
    at = (iso(state.deployed_at) or "").replace("Z", "+00:00")
    return PastDeployment(state.environment, state.version, "succeeded", at)


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
