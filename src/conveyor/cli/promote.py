"""`conveyor promote`, `approve`, `reject`, `why`, `promotions`: Releases into Environments."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.errors import WORK_FAILED
from conveyor.cli.pipeline import FileOption, JsonOption, local_pipeline

if TYPE_CHECKING:
    from conveyor.control.base import ControlPlane
    from conveyor.promotion.model import Promotion
    from conveyor.rollout.deployment import Deployment

POLL_S = 1.0

ServiceArgument = Annotated[
    str,
    typer.Argument(help="The service (delivery.service), like payments-api.", show_default=False),
]
VersionArgument = Annotated[
    str,
    typer.Argument(help="A released version (1.4.0 or v1.4.0), or 'latest'.", show_default=False),
]
PromotionArgument = Annotated[
    int,
    typer.Argument(
        help="The promotion's id, from `conveyor promotions`.", min=1, show_default=False
    ),
]
CommentOption = Annotated[
    str, typer.Option("--comment", "-m", help="Why; recorded with the decision.")
]


def register(app: typer.Typer) -> None:
    app.command(name="promote")(promote)
    app.command(name="approve")(approve)
    app.command(name="reject")(reject)
    app.command(name="why")(why)
    app.command(name="promotions")(promotions)


def _plane(file: Path | None) -> ControlPlane:
    from conveyor.control.select import open_control_plane

    return open_control_plane(file)


def promote(
    service: ServiceArgument,
    version: VersionArgument,
    to: Annotated[
        str, typer.Option("--to", help="The environment to promote into.", show_default=False)
    ],
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once the promotion is recorded.")
    ] = False,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout",
            help="How long to wait for the gates, then for the deployment, like 10m or 1h.",
        ),
    ] = "10m",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Promote a release into an environment: evaluate every gate, wait for them, deploy.

    Gates: `after` (deployed and healthy in the environment before), `soak`,
    `approvals`, `window`, `freeze`, `policies` and `signed`; each is printed
    with its outcome and reason. A newer promotion into the same environment
    supersedes an older one still open. Waiting, the gates are re-evaluated
    until they all pass, one blocks for good (a policy denies, a rejection,
    artifacts that do not match), one cannot pass before the timeout (a
    freeze, a window), or the timeout ends. Once approved, its Deployment is
    queued and carried out (after any earlier one into the environment):
    new instances start, and once healthy replace the previous release's.

    Exit codes: 0 deployed; 1 blocked, rejected, failed to deploy (the
    previous release keeps serving), or still waiting at the timeout (the
    deployment goes on with `conveyor reconcile`); with --no-wait, 0 once
    recorded unless a gate blocks for good; 2 bad input; 3 the store or the
    target cannot be used.

    Examples:

      conveyor promote payments-api 1.4.0 --to staging

      conveyor promote payments-api latest --to prod --no-wait
    """
    from conveyor.core.durations import parse_duration
    from conveyor.core.errors import UsageError
    from conveyor.promotion.waiting import can_proceed

    try:
        timeout_s = parse_duration(timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    plane = _plane(file)
    deployment: Deployment | None = None
    try:
        promotion = plane.promote(local_pipeline(file), service, version, to)
        ended = "recorded"
        if not no_wait:
            promotion, ended = _wait(plane, promotion, timeout_s, json_output)
        if not no_wait and promotion.state == "approved":
            promotion, deployment, ended = _deploy(plane, promotion, timeout_s, json_output)
    finally:
        plane.close()
    _show(promotion, json_output, ended, deployment)
    ok = promotion.state == "deployed" or (no_wait and can_proceed(promotion))
    if not ok:
        raise typer.Exit(WORK_FAILED)


def _wait(
    plane: ControlPlane, promotion: Promotion, timeout_s: float, quiet: bool
) -> tuple[Promotion, str]:
    """Re-evaluate until the promotion is decided; it, and why waiting ended."""
    from conveyor.promotion.waiting import next_step

    deadline = time.time() + timeout_s
    first = True
    try:
        while True:
            step = next_step(promotion, now=time.time(), deadline=deadline, poll_s=POLL_S)
            if step.done:
                return promotion, step.reason
            if first:
                _progress(promotion, quiet, first=True)
                first = False
            time.sleep(max(0.0, step.sleep_until - time.time()))
            before = promotion
            promotion = plane.reevaluate(promotion.id)
            if promotion.state != before.state or not _same_gates(promotion, before):
                _progress(promotion, quiet)
    except KeyboardInterrupt:
        return promotion, "stopped waiting; the promotion stays recorded"


def _deploy(
    plane: ControlPlane, promotion: Promotion, timeout_s: float, quiet: bool
) -> tuple[Promotion, Deployment | None, str]:
    """Carry out the approved promotion's Deployment; the outcome, and why waiting ended."""
    from conveyor.cli.deploy import progress_printer

    try:
        promotion, deployment = plane.await_deployment(
            promotion.id, timeout_s=timeout_s, on_progress=progress_printer(quiet=quiet)
        )
    except KeyboardInterrupt:
        return promotion, None, "stopped waiting; `conveyor reconcile` carries the deployment on"
    if deployment is None:
        return promotion, None, "approved, but no deployment was queued"
    if deployment.active:
        return (
            promotion,
            deployment,
            (
                f"timed out while deployment {deployment.id} was {deployment.phase}; "
                "`conveyor reconcile` carries it on"
            ),
        )
    if deployment.phase == "succeeded":
        return promotion, deployment, "deployed"
    return promotion, deployment, f"deployment {deployment.id} {deployment.phase}"


def _same_gates(a: Promotion, b: Promotion) -> bool:
    return a.report is not None and a.report.same_as(b.report)


def _progress(promotion: Promotion, quiet: bool, *, first: bool = False) -> None:
    """One line for each change while waiting (on stderr with --json, so stdout stays JSON)."""
    if promotion.report is None:
        return
    open_gates = [g for g in promotion.report.gates if not g.passed]
    detail = "; ".join(f"{g.gate}: {g.reason}" for g in open_gates)
    head = f"promotion {promotion.id} {'is' if first else 'now'} {promotion.state}"
    line = f"{head}: {detail}" if detail and promotion.open else head
    stream = sys.stderr if quiet else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def _show(
    promotion: Promotion,
    json_output: bool,
    ended: str | None = None,
    deployment: Deployment | None = None,
) -> None:
    from conveyor.cli.deployment_view import deployment_json, deployment_line
    from conveyor.cli.promotion_view import promotion_json, promotion_text

    if json_output:
        doc = promotion_json(promotion)
        if ended is not None:
            doc["waited"] = ended
            doc["deployment"] = None if deployment is None else deployment_json(deployment)
        _print_json(doc)
        return
    typer.echo(promotion_text(promotion))
    if deployment is not None:
        typer.echo(deployment_line(deployment))
    if ended is not None and ended != "recorded" and promotion.state != "deployed":
        typer.echo(f"waiting ended: {ended}")


def approve(
    promotion: PromotionArgument,
    comment: CommentOption = "",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Approve a promotion as yourself (CONVEYOR_ACTOR, else git's user.email).

    Your roles come from conveyor-roles.yaml next to conveyor.yaml; one must
    be among the environment's `requires.approvals.roles`. Refused (exit 1,
    with the reason) when you requested the promotion, wrote or committed a
    change in the release, decided on it before, or it was rejected or
    superseded. After the approval the gates are evaluated again.
    """
    plane = _plane(file)
    try:
        decided = plane.approve(promotion, comment=comment)
    finally:
        plane.close()
    _show(decided, json_output)


def reject(
    promotion: PromotionArgument,
    comment: CommentOption = "",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Reject a promotion: it is closed and can never be approved.

    The requester may withdraw their own; anyone else needs a role that may
    approve in that environment. Refused with the reason (exit 1) otherwise.
    """
    plane = _plane(file)
    try:
        decided = plane.reject(promotion, comment=comment)
    finally:
        plane.close()
    _show(decided, json_output)


def why(
    service: ServiceArgument,
    version: VersionArgument,
    env: Annotated[
        str, typer.Option("--env", help="The environment it was promoted into.", show_default=False)
    ],
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Explain the latest promotion of a release into an environment: every gate and why."""
    plane = _plane(file)
    try:
        found = plane.why(service, version, env)
    finally:
        plane.close()
    _show(found, json_output)


def promotions(
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only this service.")
    ] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 50,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """List promotions, newest first, with their state."""
    from conveyor.cli.promotion_view import promotion_json, promotions_table

    plane = _plane(file)
    try:
        found = plane.list_promotions(service=service, environment=env, limit=limit)
    finally:
        plane.close()
    if json_output:
        _print_json({"promotions": [promotion_json(p) for p in found]})
    elif not found:
        typer.echo(
            "no promotions yet; request one with `conveyor promote SERVICE VERSION --to ENV`"
        )
    else:
        typer.echo(promotions_table(found))


def _print_json(doc: object) -> None:
    from conveyor.cli.render import dumps

    sys.stdout.write(dumps(doc) + "\n")
