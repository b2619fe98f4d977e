"""`conveyor run`, `validate` and `schema`: the pipeline file and running it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from conveyor.cli.output import write_output
from conveyor.cli.running import DEFAULT_PARALLEL, display_path

if TYPE_CHECKING:
    from conveyor.core.errors import SpecError
    from conveyor.spec.pipeline import Pipeline

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file", "-f", help="The pipeline file (default: conveyor.yaml here or in a parent)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def register(app: typer.Typer) -> None:
    app.command(name="run")(run)
    app.command(name="validate")(validate)
    app.command(name="schema")(schema)


def local_pipeline(file: Path | None) -> Callable[[], Pipeline]:
    """Reads the workspace's conveyor.yaml when called: only the embedded control plane
    calls it, so commands against a server work where there is no conveyor.yaml."""

    def read() -> Pipeline:
        from conveyor.engine.specs import load
        from conveyor.engine.workspace import discover

        workspace = discover(file)
        return load(display_path(workspace.spec_path), workspace.state_dir)

    return read


def run(
    jobs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Jobs to run, with everything they need (default: every job).", show_default=False
        ),
    ] = None,
    file: FileOption = None,
    parallel: Annotated[
        int,
        typer.Option("--jobs", "-j", min=1, help="How many jobs may run at once (default: CPUs)."),
    ] = DEFAULT_PARALLEL,
    keep_going: Annotated[
        bool,
        typer.Option(
            "--keep-going", "-k", help="After a failure, still run jobs that don't need it."
        ),
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every job even if the cache has its result.")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Say, for each job that ran, what changed since it was cached."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", "-n", help="Print which jobs would run, be cached or be skipped, and why."
        ),
    ] = False,
    event: Annotated[
        str, typer.Option(help="The event `if:` conditions see (push, pull_request, ...).")
    ] = "local",
    base: Annotated[
        str | None,
        typer.Option(
            help="The git ref `changed()` compares against (default: the branch point, "
            "or the previous commit on the default branch)."
        ),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            help="The branch `if:` conditions see (default: git's, or on a detached checkout "
            "the CI system's, e.g. GITHUB_REF_NAME or CI_COMMIT_BRANCH)."
        ),
    ] = None,
    json_output: JsonOption = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress; the summary only when the run fails or --explain asks for it.",
        ),
    ] = False,
    no_release: Annotated[
        bool,
        typer.Option(
            "--no-release",
            help="Do not release this run, even when it succeeds on the default branch.",
        ),
    ] = False,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Run on the server's runners (CONVEYOR_SERVER, CONVEYOR_TOKEN): upload this "
            "checkout (git-tracked files with their changes) and follow the run.",
        ),
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="With --remote: print the run id and return at once."),
    ] = False,
) -> None:
    """Run the pipeline: every job, or the named ones and their needs.

    Jobs start as soon as what they need is done, up to --jobs at once. A job
    whose inputs, script, environment and upstream outputs are unchanged is
    restored from the cache instead of running. Exit code 0 when every job
    succeeded, 1 when one failed, 2 on a bad pipeline file or argument.

    When the `delivery:` section marks an environment `auto: true`, a run
    that succeeds on the default branch (origin's HEAD, else main) is
    released under the next version from its Conventional Commits, and
    promoted into each environment marked `auto: true` (deployed there
    before the next one is requested). A run
    that cannot be released (nothing changed since the last release, say)
    still succeeds: the reason is printed as a note. --no-release skips it.

    Examples:

      conveyor run                 # everything

      conveyor run test --explain  # `test` and its needs; say why each ran

      conveyor run --dry-run       # the plan, nothing runs

      conveyor run --remote        # on the server's runners; same exit codes
    """
    from conveyor.cli.running import run_pipeline

    run_pipeline(
        jobs=tuple(jobs or ()),
        file=file,
        parallel=parallel,
        keep_going=keep_going,
        no_cache=no_cache,
        explain=explain,
        dry_run=dry_run,
        event=event,
        base=base,
        branch=branch,
        json_output=json_output,
        quiet=quiet,
        no_release=no_release,
        remote=remote,
        no_wait=no_wait,
    )


def validate(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Check the pipeline file and print every problem with its line and column.

    Exit code 0 when the file is valid, 2 when it is not. A valid file may
    still draw warnings: two jobs that name one output file, neither needing
    the other, refuse a Run of both (a Run of only one of them works).
    """
    from conveyor.core.errors import SpecError
    from conveyor.engine.workspace import discover
    from conveyor.spec.loader import load_pipeline

    workspace = discover(file)
    shown = display_path(workspace.spec_path)
    try:
        pipeline = load_pipeline(shown)
    except SpecError as error:
        if not json_output:
            raise
        _invalid_json(error)
    from conveyor.engine.plan import clashes_of_every_run, state_outputs

    state = workspace.state_inside()
    if state is not None and (refused := state_outputs(pipeline.jobs, state)):
        if not json_output:
            raise SpecError(refused)
        _invalid_json(SpecError(refused))
    warnings = clashes_of_every_run(pipeline)  # a Run of some targets may still work
    if json_output:
        from conveyor.cli import render
        from conveyor.cli.errors import issue_json

        doc = {
            "valid": True,
            "file": shown,
            "jobs": list(pipeline.names),
            "warnings": [issue_json(issue) for issue in warnings],
        }
        sys.stdout.write(render.dumps(doc) + "\n")
        return
    for issue in warnings:
        typer.echo(f"warning: {issue.render()}", err=True)
    said = f" ({len(warnings)} warning{'s' if len(warnings) > 1 else ''})" if warnings else ""
    count = len(pipeline.jobs)
    typer.echo(f"{shown}: valid, {count} job{'s' if count != 1 else ''}{said}")


def _invalid_json(error: SpecError) -> NoReturn:
    """`validate --json` of a file with problems: each, then exit 2."""
    from conveyor.cli import render
    from conveyor.cli.errors import issue_json

    issues = [issue_json(issue) for issue in error.issues]
    sys.stdout.write(render.dumps({"valid": False, "errors": issues}) + "\n")
    raise typer.Exit(2) from None


def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of conveyor.yaml, for editors and language servers.

    For VS Code's YAML extension, save it and add to your settings:
    "yaml.schemas": {"./conveyor.schema.json": "conveyor.yaml"}
    """
    import json

    from conveyor.spec.loader import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_output(output, text)
        typer.echo(f"wrote {output}")
