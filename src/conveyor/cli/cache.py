"""`conveyor cache` and `conveyor db`: housekeeping of the local state."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.pipeline import FileOption, JsonOption

if TYPE_CHECKING:
    from conveyor.engine.workspace import Workspace

app = typer.Typer(help="The content-addressed cache of job results.", no_args_is_help=True)
db_app = typer.Typer(help="The database behind the store.", no_args_is_help=True)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="cache")
    main.add_typer(db_app, name="db")


@app.command()
def prune(
    max_size: Annotated[
        str,
        typer.Option(
            "--max-size",
            help="Shrink the cache to at most this size: a number and a unit, decimal (2GB, "
            "500MB) or binary (2GiB); 0 keeps only what recent runs refer to.",
        ),
    ],
    keep_runs: Annotated[
        int,
        typer.Option(
            min=0, help="Keep the logs and artifacts of this many recent runs whatever the size."
        ),
    ] = 20,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove the least recently used cache entries until the cache fits in --max-size.

    Blobs no entry and no recent run refers to go too. What the last
    --keep-runs runs refer to (their logs, artifacts, attempts) stays, even
    past the size.

    Examples:

      conveyor cache prune --max-size 2GB

      conveyor cache prune --max-size 0 --keep-runs 5 --json
    """
    from conveyor.cli import render
    from conveyor.core.durations import parse_size
    from conveyor.core.errors import UsageError
    from conveyor.engine.maintenance import prune_cache
    from conveyor.engine.workspace import discover

    try:
        limit = parse_size(max_size)
    except ValueError as exc:
        raise UsageError(f"--max-size: {exc}") from None
    report = prune_cache(discover(file), max_bytes=limit, keep_runs=keep_runs)
    if json_output:
        sys.stdout.write(render.dumps(report) + "\n")
        return
    typer.echo(
        f"removed {report['entries_removed']} entries and {report['blobs_removed']} blobs; "
        f"{report['bytes_before']:,} -> {report['bytes_after']:,} bytes"
    )
    if report["bytes_after"] > limit:
        typer.echo("note: what recent runs still reference is larger than --max-size; kept it")


@app.command()
def clear(file: FileOption = None) -> None:
    """Forget every cached job result (artifacts of recent runs stay)."""
    from conveyor.engine.maintenance import clear_cache
    from conveyor.engine.workspace import discover

    removed = clear_cache(discover(file))
    typer.echo(f"removed {removed} cache entries")


@db_app.command()
def upgrade(file: FileOption = None) -> None:
    """Create or upgrade the database schema to this version of Conveyor.

    Uses CONVEYOR_DATABASE_URL when set (e.g. postgresql://user@host/db).
    """
    from conveyor.engine.workspace import discover
    from conveyor.store import migrate
    from conveyor.store.db import open_database, redact_url

    workspace = discover(file) if file else _workspace_or_default()
    workspace.ensure_state_dir()
    db = open_database(workspace.database_url)
    try:
        before = migrate.upgrade(db)
    finally:
        db.close()
    where = redact_url(workspace.database_url)
    if before == migrate.HEAD_REVISION:
        typer.echo(f"{where} is already at revision {before}")
    else:
        typer.echo(f"{where}: upgraded from {before or 'empty'} to {migrate.HEAD_REVISION}")


def _workspace_or_default() -> Workspace:
    """The workspace here; outside one, a state directory in the current directory."""
    from conveyor.core.errors import UsageError
    from conveyor.engine.workspace import discover

    try:
        return discover()
    except UsageError:
        return discover(Path.cwd() / "conveyor.yaml", must_exist=False)
