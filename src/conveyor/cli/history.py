"""`conveyor runs`, `show`, `logs`, `explain` and `artifacts`: what happened."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.output import output_file
from conveyor.cli.pipeline import FileOption, JsonOption

if TYPE_CHECKING:
    from conveyor.control.base import ControlPlane

RunArgument = Annotated[
    str, typer.Argument(help="A run id from `conveyor runs`, or 'latest'.", show_default=False)
]
JobArgument = Annotated[str, typer.Argument(help="A job name as `conveyor show` lists it.")]

artifacts_app = typer.Typer(
    help="Artifacts: the content-addressed files jobs declare as outputs.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command(name="runs")(runs)
    app.command(name="show")(show)
    app.command(name="logs")(logs)
    app.command(name="explain")(explain)
    app.add_typer(artifacts_app, name="artifacts")


def _plane(file: Path | None) -> ControlPlane:
    """The server's control plane when CONVEYOR_SERVER is set, else this workspace's."""
    from conveyor.control.select import open_control_plane

    return open_control_plane(file)


def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    status: Annotated[
        str | None, typer.Option(help="Only runs with this status (success, failed, ...).")
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Only runs of this branch.")] = None,
    before: Annotated[
        int | None,
        typer.Option(min=1, max=10**18, help="Only runs older than this id (to page back)."),
    ] = None,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the history of runs, newest first.

    Examples:

      conveyor runs -n 5

      conveyor runs --status failed --branch main --json
    """
    from conveyor.cli import render
    from conveyor.core.errors import UsageError
    from conveyor.core.records import RUN_STATUSES

    if status is not None and status not in RUN_STATUSES:
        raise UsageError(
            f"--status: '{status}' is not a run status; use one of {', '.join(RUN_STATUSES)}"
        )
    plane = _plane(file)
    try:
        found = plane.list_runs(limit=limit, status=status, branch=branch, before=before)
    finally:
        plane.close()
    if json_output:
        doc = {"runs": [render.run_json(run) for run in found]}
        sys.stdout.write(render.dumps(doc) + "\n")
    elif not found and (status, branch, before) != (None, None, None):
        filters = {"--status": status, "--branch": branch, "--before": before}
        given = " ".join(f"{flag} {value}" for flag, value in filters.items() if value is not None)
        typer.echo(f"no runs match {given}")
    else:
        typer.echo(render.runs_table(found))


def show(
    run: RunArgument = "latest", file: FileOption = None, json_output: JsonOption = False
) -> None:
    """Show one run: its jobs, their outcomes, artifacts and test results.

    Examples:

      conveyor show              # the latest run

      conveyor show 42 --json
    """
    from conveyor.cli import render

    plane = _plane(file)
    try:
        record = plane.get_run(run)
    finally:
        plane.close()
    if json_output:
        sys.stdout.write(render.dumps(render.run_json(record)) + "\n")
    else:
        typer.echo(render.show(record))


def logs(
    run: RunArgument,
    job: JobArgument,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-F",
            help="Keep printing while the job (with --attempt: that attempt) runs.",
        ),
    ] = False,
    attempt: Annotated[
        int | None,
        typer.Option(
            "--attempt",
            min=1,
            help="Print that attempt's own log (`conveyor show RUN` lists a retried job's "
            "attempts; a job that ran once is its own attempt 1). Without it, a retried job's "
            "log holds every attempt, each marked '--- attempt N of M ---'.",
        ),
    ] = None,
    file: FileOption = None,
) -> None:
    """Print a job's log (secrets masked as ***).

    Examples:

      conveyor logs latest build

      conveyor logs 42 'test (python=3.12)' --follow

      conveyor logs 42 flaky --attempt 1
    """
    plane = _plane(file)
    try:
        text, live = plane.job_log(run, job, attempt)
        sys.stdout.write(text)
        printed = len(text)
        while follow and live:
            time.sleep(0.3)
            text, live = plane.job_log(run, job, attempt)
            sys.stdout.write(text[printed:])
            sys.stdout.flush()
            printed = len(text)
    finally:
        plane.close()


def explain(
    run: RunArgument, job: JobArgument, file: FileOption = None, json_output: JsonOption = False
) -> None:
    """Say why a job ran instead of being restored from the cache.

    Compares the job's inputs with its last cached execution and names each
    difference: a file, an environment variable, an upstream output, the script.

    Example:

      conveyor explain latest test
    """
    from conveyor.cli import render

    plane = _plane(file)
    try:
        found = plane.explain(run, job)
    finally:
        plane.close()
    if json_output:
        doc = {
            "run": found.run_id,
            "job": found.job,
            "status": found.status,
            "compared_to_run": found.compared_to,
            "reasons": list(found.reasons),
        }
        sys.stdout.write(render.dumps(doc) + "\n")
        return
    against = f" (compared with run {found.compared_to})" if found.compared_to else ""
    typer.echo(f"{found.job} in run {found.run_id}: {found.status}{against}")
    for reason in found.reasons:
        typer.echo(f"  {reason}")


@artifacts_app.command(name="ls")
def artifacts_ls(
    run: RunArgument = "latest", file: FileOption = None, json_output: JsonOption = False
) -> None:
    """List the artifacts of a run with their digests.

    Example:

      conveyor artifacts ls latest     # then: conveyor artifacts get sha256:<start> -o FILE
    """
    from conveyor.cli import render
    from conveyor.core.digest import short

    plane = _plane(file)
    try:
        record = plane.get_run(run)
        present = {
            o.digest: plane.artifact_available(o.digest) for j in record.jobs for o in j.outputs
        }
    finally:
        plane.close()
    items = [
        {
            "job": j.name,
            "path": o.path,
            "digest": o.digest,
            "size": o.size,
            "available": present[o.digest],
        }
        for j in record.jobs
        for o in j.outputs
    ]
    if json_output:
        sys.stdout.write(render.dumps({"run": record.id, "artifacts": items}) + "\n")
        return
    if not items:
        typer.echo(f"run {record.id} has no artifacts")
        return
    rows = [("JOB", "PATH", "DIGEST", "SIZE", "")]
    for item in items:
        rows.append(
            (
                str(item["job"]),
                str(item["path"]),
                short(str(item["digest"])),
                str(item["size"]),
                "" if item["available"] else "(pruned)",
            )
        )
    typer.echo(render.table(rows))


@artifacts_app.command(name="get")
def artifacts_get(
    digest: Annotated[str, typer.Argument(help="The artifact's digest (sha256:...).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to write the file (missing directories are made)."
        ),
    ],
    file: FileOption = None,
) -> None:
    """Write an artifact's content to a file, checking its digest.

    The digest may be shortened as `conveyor artifacts ls` shows it.

    Example:

      conveyor artifacts get sha256:73cb3858a687 -o dist/app.whl
    """
    output_file(output, make_parents=True)
    plane = _plane(file)
    try:
        plane.fetch_artifact(digest, output.resolve())
    finally:
        plane.close()
    typer.echo(f"wrote {output}")
