"""`conveyor run` itself, without Typer: what the command does once its arguments are read.

Typer reads the arguments of `conveyor run` in `cli/pipeline.py`; `cli/quick.py`
reads its common forms without importing Typer at all (a start-up cost every
Run would pay). Both call `run_pipeline` with the same keyword arguments, named
as the Typer command's parameters, so the command behaves the same whichever
read it. Nothing here imports Typer; nor is there a dataclass of the arguments,
whose creation at import (generated methods compiled one by one on Python
3.11) would cost a tenth of what skipping Typer saves.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from conveyor.cli.errors import OK, exit_code_for_run
from conveyor.cli.output import emit

if TYPE_CHECKING:
    from conveyor.control.base import ControlPlane
    from conveyor.engine.runner import Scheduler
    from conveyor.engine.service import RunRequest, RunResult
    from conveyor.spec.pipeline import Pipeline


def display_path(path: Path) -> str:
    """`path` relative to the current directory when it can be, as users typed it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


DEFAULT_PARALLEL = os.cpu_count() or 2


def run_pipeline(
    *,
    jobs: Sequence[str] = (),
    file: Path | None = None,
    parallel: int = DEFAULT_PARALLEL,
    keep_going: bool = False,
    no_cache: bool = False,
    explain: bool = False,
    dry_run: bool = False,
    event: str = "local",
    base: str | None = None,
    branch: str | None = None,
    json_output: bool = False,
    quiet: bool = False,
    no_release: bool = False,
    remote: bool = False,
    no_wait: bool = False,
) -> NoReturn:
    """Run the pipeline as the options say, print the result and exit with the Run's code."""
    from conveyor.control.embedded import EmbeddedControlPlane
    from conveyor.engine.service import RunRequest
    from conveyor.engine.specs import load
    from conveyor.engine.workspace import discover
    from conveyor.executors.local import LocalExecutor

    workspace = discover(file)
    if remote:
        from conveyor.cli.runs_control import run_remote

        options: dict[str, object] = {"jobs": list(jobs), "event": event}
        options |= {"keep_going": keep_going, "branch": branch or _branch(workspace.root)}
        options |= {"commit": _commit(workspace.root)}
        run_remote(workspace, options, json_output=json_output, quiet=quiet, wait=not no_wait)
    pipeline = load(display_path(workspace.spec_path), workspace.state_dir)
    request = RunRequest(
        targets=tuple(jobs),
        max_parallel=parallel,
        keep_going=keep_going,
        use_cache=not no_cache,
        explain=explain,
        event=event,
        base=base,
        branch=branch,
    )
    plane = EmbeddedControlPlane(workspace, executor=LocalExecutor())
    try:
        if dry_run:
            _print_dry_run(plane, pipeline, request, json_output)
            sys.exit(OK)
        result = _run_with_signals(plane, pipeline, request, json_output=json_output, quiet=quiet)
        delivered = None if no_release else plane.release_run(pipeline, result.run)
    finally:
        plane.close()
    from conveyor.cli import render
    from conveyor.cli.delivery_view import auto_release_json, auto_release_text

    # Progress and this summary are views: if they cannot be shown, the run's
    # outcome (recorded in the store) still decides the exit code.
    if json_output:
        doc = render.run_json(result.run, result.explanations)
        if delivered is not None:
            doc["release"] = auto_release_json(delivered)
        emit(render.dumps(doc))
    else:
        if not quiet or explain or result.run.status != "success":
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

        if not gc.isenabled():  # off while Conveyor started (cli/start.py)
            gc.freeze()  # what start-up made lives as long as the process: never walk it again
            gc.enable()

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
