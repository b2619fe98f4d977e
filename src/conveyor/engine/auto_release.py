"""Releasing a successful run of the default branch, and promoting it where `auto: true` says.

After `conveyor run` succeeds on the default branch of a workspace whose
`delivery:` section marks an environment `auto: true`, its artifacts become a Release
with the next version from the Conventional Commits (as `conveyor release
create` derives it), and the Release is requested into every environment
marked `auto: true`, in promotion order; each one approved is deployed
before the next is requested, so `after:` sees it running.

The default branch is the one `origin/HEAD` names when the repository has
it, else `main` (or `master` when only that exists); a run outside git, or
on a detached checkout no CI variable names, is not released. Nothing here
fails the run: a release or promotion that cannot be made is a note.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conveyor.core.errors import ConveyorError
from conveyor.core.records import RunRecord
from conveyor.core.values import frozen
from conveyor.engine.promotions import PromotionService
from conveyor.engine.releases import ReleaseService
from conveyor.engine.sources import git_output
from conveyor.promotion.model import Actor, Promotion
from conveyor.rollout.deployment import Deployment
from conveyor.spec.pipeline import Pipeline

# Carries out an approved Promotion's Deployment until it settles; None when none was queued.
Drive = Callable[[int], Deployment | None]


@frozen
class AutoPromotion:
    """One automatic Promotion and the Deployment that carried it out, if any."""

    promotion: Promotion
    deployment: Deployment | None = None


@frozen
class AutoRelease:
    """What releasing a run did: the version (None when there is none), its promotions, notes."""

    version: str | None
    created: bool = False
    promotions: tuple[AutoPromotion, ...] = ()
    notes: tuple[str, ...] = ()


def default_branch(root: Path) -> str:
    """The branch whose successful runs are released: origin's HEAD, else main (or master)."""
    remote = git_output(root, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD")
    if remote and remote.strip():
        return remote.strip().removeprefix("origin/")
    has_master = git_output(root, "rev-parse", "--verify", "-q", "refs/heads/master")
    has_main = git_output(root, "rev-parse", "--verify", "-q", "refs/heads/main")
    return "master" if has_master and not has_main else "main"


class AutoReleaser:
    """Releases a successful default-branch run and promotes it into `auto: true` environments."""

    def __init__(
        self,
        root: Path,
        *,
        releases: ReleaseService,
        promotions: PromotionService,
        drive: Drive,
    ) -> None:
        self.root = root
        self.releases = releases
        self.promotions = promotions
        self.drive = drive

    def after_run(
        self, pipeline: Pipeline, run: RunRecord, actor: Callable[[], Actor]
    ) -> AutoRelease | None:
        """Release `run` and promote it; None when the pipeline delivers nothing or it failed.

        `actor` is asked for who requests the promotions only when there is one to request.
        """
        delivery = pipeline.delivery
        if delivery is None or run.status != "success":
            return None
        names = tuple(e.name for e in delivery.environments if e.auto)
        if not names:
            return None  # releases are made by hand (`conveyor release create`)
        if run.branch is None:
            return None  # not a git checkout (or a detached one): no default branch to release
        branch = default_branch(self.root)
        if run.branch != branch:
            why = f"run {run.id} is on branch '{run.branch}', not the default '{branch}'"
            return AutoRelease(None, notes=(f"not released: {why}",))
        try:
            outcome = self.releases.create(pipeline, str(run.id))
        except ConveyorError as exc:
            return AutoRelease(None, notes=(f"not released: {exc}",))
        version = outcome.release.version
        if not outcome.created:
            return AutoRelease(version, notes=tuple(f"not released: {r}" for r in outcome.reasons))
        promoted, notes = self._promote(pipeline, version, names, actor)
        return AutoRelease(version, True, promoted, outcome.reasons + notes)

    def _promote(
        self,
        pipeline: Pipeline,
        version: str,
        environments: tuple[str, ...],
        actor: Callable[[], Actor],
    ) -> tuple[tuple[AutoPromotion, ...], tuple[str, ...]]:
        """Request `version` into each of `environments` in order, deploying each."""
        done: list[AutoPromotion] = []
        notes: list[str] = []
        service = pipeline.delivery.service if pipeline.delivery is not None else ""
        for environment in environments:
            try:
                promotion = self.promotions.promote(
                    pipeline, service, version, environment, actor()
                )
                deployment = self.drive(promotion.id) if promotion.state == "approved" else None
            except ConveyorError as exc:
                notes.append(f"not promoted to {environment}: {exc}")
                break
            promotion = self.promotions.get(promotion.id)
            done.append(AutoPromotion(promotion, deployment))
            if promotion.state != "deployed":
                break  # a later environment comes after this one; it would only be blocked
        return tuple(done), tuple(notes)
