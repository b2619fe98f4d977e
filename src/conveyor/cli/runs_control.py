"""`conveyor run --remote`, `cancel` and `retry`: Runs on a server's runners."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.errors import OK, WORK_FAILED
from conveyor.cli.pipeline import FileOption, JsonOption

if TYPE_CHECKING:
    from conveyor.control.remote import RemoteControlPlane
    from conveyor.core.records import RunRecord
    from conveyor.engine.workspace import Workspace

RunArgument = Annotated[
    str, typer.Argument(help="A run id from `conveyor runs`, or 'latest'.", show_default=False)
]


def register(app: typer.Typer) -> None:
    app.command(name="cancel")(cancel)
    app.command(name="retry")(retry)


def remote_plane(file: Path | None, what: str) -> RemoteControlPlane:
    """The server's control plane; UsageError saying how to name one when none is set."""
    from conveyor.control.remote import RemoteControlPlane
    from conveyor.control.select import open_control_plane
    from conveyor.core.errors import UsageError

    plane = open_control_plane(file)
    if not isinstance(plane, RemoteControlPlane):
        plane.close()
        raise UsageError(
            f"{what} needs a server: set CONVEYOR_SERVER to its URL and CONVEYOR_TOKEN to a "
            "token from `conveyor token create` (a local run stops with Ctrl-C)"
        )
    return plane


def run_remote(
    workspace: Workspace,
    options: dict[str, object],
    *,
    json_output: bool,
    quiet: bool,
    wait: bool,
) -> None:
    """Upload the checkout, start its Run on the server, and follow it to its end."""
    from conveyor.cli import render
    from conveyor.cli.output import emit
    from conveyor.core.errors import UsageError
    from conveyor.engine.bundles import bundle_paths, write_bundle

    spec = workspace.relative_spec()
    if spec != "conveyor.yaml":
        raise UsageError(
            f"--remote runs the conveyor.yaml at the checkout's root, not {spec}; run it "
            "from the directory that holds conveyor.yaml"
        )
    plane = remote_plane(workspace.spec_path, "conveyor run --remote")
    try:
        paths = bundle_paths(workspace.root, workspace.state_dir, spec)
        with tempfile.TemporaryDirectory(prefix="conveyor-bundle-") as scratch:
            bundle = Path(scratch) / "bundle.tar.gz"
            with bundle.open("wb") as out:
                write_bundle(workspace.root, paths, out)
            run = plane.submit_run(bundle, options)
        _note(f"run {run.id} submitted to {plane.base_url} ({len(paths)} files)")
        if wait:
            show = (lambda r: None) if quiet or json_output else _progress_printer()
            run = plane.follow_run(int(run.id), show)
    finally:
        plane.close()
    if json_output:
        emit(render.dumps(render.run_json(run, {})))
    elif not wait:
        emit(f"run {run.id}: {run.status}; follow it with `conveyor show {run.id}`")
    elif not quiet or run.status != "success":
        emit(render.summary(run, {}))
    raise typer.Exit(OK if run.status in ("success", "running") else WORK_FAILED)


def _progress_printer() -> Callable[[RunRecord], None]:
    """Plain lines, one per job whose status moved, and one per attempt that did not end
    its job (failed and retried, or taken back by its runner), said once it ended."""
    from conveyor.cli.progress import describe_attempt
    from conveyor.core.records import TERMINAL_JOB_STATES

    last: dict[str, str] = {}
    told: dict[str, int] = {}  # attempts already said, by job

    def show(run: RunRecord) -> None:
        for job in run.jobs:
            ended = [a for a in job.attempt_results if a.status != "running"]
            if job.status in TERMINAL_JOB_STATES:
                ended = ended[:-1]  # the job's own line tells how its last attempt ended
            for attempt in ended[told.get(job.name, 0) :]:
                typer.echo(f"{job.name}: {describe_attempt(attempt)}")
            told[job.name] = max(told.get(job.name, 0), len(ended))
            if last.get(job.name) != job.status and job.status != "pending":
                if job.status == "queued" and job.attempts:
                    typer.echo(f"{job.name}: queued for attempt {job.attempts + 1}")
                else:
                    suffix = f" ({job.reason})" if job.reason and job.status != "success" else ""
                    cached = " (cached)" if job.cached else ""
                    typer.echo(f"{job.name}: {job.status}{cached}{suffix}")
            last[job.name] = job.status

    return show


def _note(text: str) -> None:
    sys.stderr.write(text + "\n")


def cancel(run: RunArgument, file: FileOption = None, json_output: JsonOption = False) -> None:
    """Cancel a Run on the server: jobs not started are canceled, running ones stopped.

    Needs CONVEYOR_SERVER and CONVEYOR_TOKEN (a developer's token or above). A
    local `conveyor run` is stopped with Ctrl-C where it runs. Exit code 0 when
    the Run was canceled, 2 when it had already finished.
    """
    from conveyor.cli import render
    from conveyor.cli.output import emit

    plane = remote_plane(file, "conveyor cancel")
    try:
        found = plane.cancel_run(run)
    finally:
        plane.close()
    if json_output:
        emit(render.dumps(render.run_json(found, {})))
    else:
        emit(f"run {found.id}: cancel requested ({found.status})")


def retry(
    run: RunArgument,
    file: FileOption = None,
    json_output: JsonOption = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the new Run to its end.")
    ] = True,
) -> None:
    """Run a finished Run's failed jobs again, as a new Run on the server.

    Jobs that succeeded are carried over (shown cached) with their outputs;
    the rest run again from the same source bundle. Exit code 0 when the new
    Run succeeds (or, with --no-wait, was started), 1 when it fails, 2 when the
    Run is still running or succeeded.
    """
    from conveyor.cli import render
    from conveyor.cli.output import emit

    plane = remote_plane(file, "conveyor retry")
    try:
        found = plane.retry_run(run)
        _note(f"run {found.id} retries run {run}")
        if wait:
            show = (lambda r: None) if json_output else _progress_printer()
            found = plane.follow_run(int(found.id), show)
    finally:
        plane.close()
    if json_output:
        emit(render.dumps(render.run_json(found, {})))
    else:
        emit(render.summary(found, {}))
    raise typer.Exit(OK if found.status in ("success", "running") else WORK_FAILED)
