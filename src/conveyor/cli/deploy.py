"""`conveyor status`, `deployments` and `reconcile`: what runs where, and carrying it out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.errors import WORK_FAILED
from conveyor.cli.pipeline import FileOption, JsonOption, local_pipeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from conveyor.control.base import ControlPlane
    from conveyor.rollout.deployment import Deployment

TimeoutOption = Annotated[
    str,
    typer.Option(
        "--timeout", help="How long to drive Deployments and wait for promotions, like 10m or 1h."
    ),
]


def register(app: typer.Typer) -> None:
    app.command(name="status")(status)
    app.command(name="deployments")(deployments)
    app.command(name="reconcile")(reconcile)


def _plane(file: Path | None) -> ControlPlane:
    from conveyor.control.select import open_control_plane

    return open_control_plane(file)


def status(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Show each environment: the release deployed there, its Deployment, and its instances.

    Instances are listed with their address (http://127.0.0.1:PORT) and their
    health, checked now. Environments are those of conveyor.yaml's
    `delivery:` section, in promotion order.
    """
    from conveyor.cli.deployment_view import status_json, status_text

    plane = _plane(file)
    try:
        service, views = plane.environment_status(local_pipeline(file))
    finally:
        plane.close()
    if json_output:
        _print_json(status_json(service, views))
    else:
        typer.echo(status_text(service, views))


def deployments(
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only this service.")
    ] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 50,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """List Deployments, newest first, with their phase and step."""
    from conveyor.cli.deployment_view import deployment_json, deployments_table

    plane = _plane(file)
    try:
        found = plane.list_deployments(service=service, environment=env, limit=limit)
    finally:
        plane.close()
    if json_output:
        _print_json({"deployments": [deployment_json(d) for d in found]})
    elif not found:
        typer.echo("no deployments yet; an approved promotion queues one")
    else:
        typer.echo(deployments_table(found))


def reconcile(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="One pass: evaluate open promotions again, step each due Deployment, return.",
        ),
    ] = False,
    timeout: TimeoutOption = "10m",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Carry out queued Deployments until none is left (what `promote` does while it waits).

    Each pass first evaluates the gates of open promotions again, so one
    waiting for a soak to end or a window to open is approved when its time
    comes, and its Deployment is queued and carried out in the same run.
    Without --once it goes on until no Deployment is unsettled and no
    promotion waits only for time (one that waits for a person, or for a
    time after the timeout, does not keep it running), or the timeout.

    Takes over a Deployment whose controller was killed and goes on from
    where it was: instances it started are adopted, none is started twice.

    Exit codes: 0 every Deployment driven succeeded; 1 one failed, was rolled
    back, or was still in progress at the timeout; 3 the store or the target
    cannot be used.
    """
    from conveyor.cli.deployment_view import deployment_json
    from conveyor.core.durations import parse_duration
    from conveyor.core.errors import UsageError

    try:
        timeout_s = parse_duration(timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    plane = _plane(file)
    try:
        driven = plane.reconcile(
            timeout_s=timeout_s, once=once, on_progress=progress_printer(quiet=json_output)
        )
    finally:
        plane.close()
    if json_output:
        _print_json({"deployments": [deployment_json(d) for d in driven]})
    elif not driven:
        typer.echo("no deployment is due")
    failed = [d for d in driven if d.phase in ("failed", "rolled_back") or (d.active and not once)]
    if failed:
        raise typer.Exit(WORK_FAILED)


def progress_printer(*, quiet: bool) -> Callable[[Deployment], None]:
    """Print a Deployment's line when its phase or step changes (stderr with --json)."""
    from conveyor.cli.deployment_view import deployment_line

    last: dict[int, tuple[str, str]] = {}

    def show(deployment: Deployment) -> None:
        where = (deployment.phase, deployment.step)
        if last.get(deployment.id) == where:
            return
        last[deployment.id] = where
        stream = sys.stderr if quiet else sys.stdout
        stream.write(deployment_line(deployment) + "\n")
        stream.flush()

    return show


def _print_json(doc: object) -> None:
    from conveyor.cli.render import dumps

    sys.stdout.write(dumps(doc) + "\n")
