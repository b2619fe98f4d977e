"""`conveyor run` itself, without Typer: what the command does once its arguments are read.

Typer reads the arguments of `conveyor run` in `cli/pipeline.py`; `cli/quick.py`
reads its common forms without importing Typer at all (a start-up cost every
Run would pay). Both hand the same `RunArgs` to `run_pipeline`, so the command
behaves the same whichever read it. Nothing here imports Typer.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from conveyor.cli.errors import OK, exit_code_for_run
from conveyor.cli.output import emit

if TYPE_CHECKING:
    from conveyor.control.base import ControlPlane
    from conveyor.engine.runner import Scheduler
    from conveyor.engine.service import RunRequest, RunResult
    from conveyor.spec.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class RunArgs:
    """The arguments of `conveyor run`, named as the Typer command's parameters are."""

    jobs: tuple[str, ...] = ()
    file: Path | None = None
    parallel: int = os.cpu_count() or 2
    keep_going: bool = False
    no_cache: bool = False
    explain: bool = False
    dry_run: bool = False
    event: str = "local"
    base: str | None = None
    branch: str | None = None
    json_output: bool = False
    quiet: bool = False
    no_release: bool = False
    remote: bool = False
    no_wait: bool = False


def display_path(path: Path) -> str:
    """`path` relative to the current directory when it can be, as users typed it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def run_pipeline(args: RunArgs) -> NoReturn:
    """Run the pipeline as `args` say, print the result and exit with the Run's exit code."""
    from conveyor.control.embedded import EmbeddedControlPlane
    from conveyor.engine.service import RunRequest
    from conveyor.engine.specs import load
    from conveyor.engine.workspace import discover
    from conveyor.executors.local import LocalExecutor

    workspace = discover(args.file)
    if args.remote:
        from conveyor.cli.runs_control import run_remote

        options: dict[str, object] = {"jobs": list(args.jobs), "event": args.event}
        options |= {"keep_going": args.keep_going}
        options |= {"branch": args.branch or _branch(workspace.root)}
        options |= {"commit": _commit(workspace.root)}
        run_remote(
            workspace,
            options,
            json_output=args.json_output,
            quiet=args.quiet,
            wait=not args.no_wait,
        )
    pipeline = load(display_path(workspace.spec_path), workspace.state_dir)
    request = RunRequest(
        targets=args.jobs,
        max_parallel=args.parallel,
        keep_going=args.keep_going,
        use_cache=not args.no_cache,
        explain=args.explain,
        event=args.event,
        base=args.base,
        branch=args.branch,
    )
    plane = EmbeddedControlPlane(workspace, executor=LocalExecutor())
    try:
        if args.dry_run:
            _print_dry_run(plane, pipeline, request, args.json_output)
            sys.exit(OK)
        result = _run_with_signals(
            plane, pipeline, request, json_output=args.json_output, quiet=args.quiet
        )
        delivered = None if args.no_release else plane.release_run(pipeline, result.run)
    finally:
        plane.close()
    from conveyor.cli import render
    from conveyor.cli.delivery_view import auto_release_json, auto_release_text

    # Progress and this summary are views: if they cannot be shown, the run's
    # outcome (recorded in the store) still decides the exit code.
    if args.json_output:
        doc = render.run_json(result.run, result.explanations)
        if delivered is not None:
            doc["release"] = auto_release_json(delivered)
        emit(render.dumps(doc))
    else:
        if not args.quiet or result.run.status != "success":
            emit(render.summary(result.run, result.explanations))
        if delivered is not None:
            emit(auto_release_text(delivered))
    sys.exit(exit_code_for_run(result.run))


def _branch(root: Path) -> str | None:
    from conveyor.engine.service import ci_branch
    from conveyor.engine.sources import git_facts

    return git_facts(root).branch or ci_branch(os.environ)


def _commit(root: Path) -> str | None:
    from conveyor.engine.sources import git_facts

    return git_facts(root).commit


def _run_with_signals(
    plane: ControlPlane,
    pipeline: Pipeline,
    request: RunRequest,
    *,
    json_output: bool,
    quiet: bool,
) -> RunResult:
    """Run with Ctrl-C and SIGTERM turned into a clean cancel of every job."""
    from conveyor.cli.progress import LiveReporter, make_reporter

    reporter = make_reporter(json_mode=json_output, quiet=quiet)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_start(scheduler: Scheduler) -> None:
        def cancel(_signum: int, _frame: object) -> None:
            scheduler.request_cancel()

        for sig in previous:
            signal.signal(sig, cancel)

    try:
        return plane.run(pipeline, request, reporter, on_start=on_start)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if isinstance(reporter, LiveReporter):
            reporter.stop()


def _print_dry_run(
    plane: ControlPlane, pipeline: Pipeline, request: RunRequest, json_output: bool
) -> None:
    from conveyor.cli import render

    planned = plane.dry_run(pipeline, request)
    if json_output:
        doc = {
            "jobs": [
                {"name": p.name, "action": p.action, "reasons": list(p.reasons)} for p in planned
            ]
        }
        emit(render.dumps(doc))
        return
    symbols = {"run": "▶", "cached": "●", "skipped": "○"}
    lines = []
    for item in planned:
        lines.append(f"{symbols[item.action]} {item.name}: would {_verb(item.action)}")
        lines.extend(f"    {reason}" for reason in item.reasons)
    tally = {a: sum(1 for p in planned if p.action == a) for a in ("run", "cached", "skipped")}
    lines.append(f"{tally['run']} would run, {tally['cached']} cached, {tally['skipped']} skipped")
    emit("\n".join(lines))


def _verb(action: str) -> str:
    return {"run": "run", "cached": "be restored from the cache", "skipped": "be skipped"}[action]
