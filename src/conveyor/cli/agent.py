"""`conveyor agent`: a runner that takes jobs from `conveyor server` and runs them here."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.pipeline import JsonOption

if TYPE_CHECKING:
    from conveyor.artifacts.cas import ContentStore
    from conveyor.control.agent_cache_client import HttpCache
    from conveyor.control.agent_client import HttpWorkSource


def register(app: typer.Typer) -> None:
    app.command(name="agent")(agent)


def agent(
    server: Annotated[
        str,
        typer.Option(
            envvar="CONVEYOR_SERVER",
            help="The server's base URL, e.g. https://conveyor.example.com (env CONVEYOR_SERVER).",
        ),
    ],
    token: Annotated[
        str,
        typer.Option(
            envvar="CONVEYOR_TOKEN",
            help="A runner token: `conveyor token create --role runner` (env CONVEYOR_TOKEN).",
        ),
    ],
    labels: Annotated[
        str,
        typer.Option(help="Comma-separated labels; a job runs here only if its runs_on ⊆ these."),
    ] = "",
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="How many jobs to run at once.")
    ] = 1,
    name: Annotated[
        str | None,
        typer.Option(help="The agent's name in the server's history (default: host-pid)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run jobs handed out by `conveyor server` until stopped.

    The agent long-polls the server for jobs whose `runs_on` labels it has, keeps
    each job's lease by heartbeat, streams its log, uploads its log and outputs by
    digest, and reports the result. A job whose cache key the server's shared cache
    holds is not run: its recorded outputs, log and test counts are reported as
    `cached`, and a job that succeeds is recorded there for every runner. If the
    server goes away the agent keeps retrying and goes on when it is back. SIGTERM or
    Ctrl-C hands running jobs back at once (another agent takes them without waiting
    for the lease), then exits 0.
    A job of a project's commit (as webhooks start them) is fetched with git into the
    job's directory, so git must be installed here and reach the repository; the
    secrets a job declares arrive with it and are masked as *** in its log.
    Progress lines go to stderr (JSON objects with --json).

    Example: conveyor agent --server http://ci:8080 --token cvy_... --labels linux --concurrency 4
    """
    import os
    import shutil
    import socket
    import tempfile

    from conveyor.artifacts.cas import ContentStore
    from conveyor.control.agent_cache_client import HttpCache
    from conveyor.control.agent_client import HttpWorkSource
    from conveyor.core.errors import UsageError

    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server: '{server}' is not a URL; write http://host:port")
    agent_name = name or f"{socket.gethostname()}-{os.getpid()}"
    say = _progress(agent_name, json_output=json_output)
    work_dir = Path(tempfile.mkdtemp(prefix="conveyor-agent-"))
    cas = ContentStore(work_dir / "cas")
    source = HttpWorkSource(server=server, token=token, cas=cas, work_dir=work_dir, progress=say)
    cache = HttpCache(server=server, token=token, progress=say)
    try:
        wanted = [label.strip() for label in labels.split(",") if label.strip()]
        found = source.register(name=agent_name, labels=wanted, concurrency=concurrency)
        say(
            f"registered as agent {found.agent_id} at {server} "
            f"(labels: {', '.join(wanted) or 'none'}; concurrency {concurrency})"
        )
        _serve(source, cache, cas, work_dir, concurrency=concurrency, heartbeat_s=found.heartbeat_s)
    finally:
        source.close()
        cache.close()
        shutil.rmtree(work_dir, ignore_errors=True)


def _serve(
    source: HttpWorkSource,
    cache: HttpCache,
    cas: ContentStore,
    work_dir: Path,
    *,
    concurrency: int,
    heartbeat_s: float,
) -> None:
    """Run jobs until SIGTERM or SIGINT, which hand running jobs back."""
    import signal
    import threading

    from conveyor.engine.agent_loop import AgentLoop
    from conveyor.executors.local import LocalExecutor

    say = source.progress
    loop = AgentLoop(
        source=source,
        executor=LocalExecutor(),
        cas=cas,
        work_dir=work_dir,
        concurrency=concurrency,
        heartbeat_s=heartbeat_s,
        poll_s=0.05,
        cache=cache,
    )

    def stop() -> None:
        say("stopping: handing running jobs back")
        source.stop()
        loop.stop(hand_back=True)

    def on_signal(_signum: int, _frame: object) -> None:
        # The loop takes locks the interrupted code may hold: stop it from another thread.
        threading.Thread(target=stop, name="agent-stop").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    loop.run()
    for error in loop.errors:
        # The job's lease runs out and the server gives it to another agent.
        say(f"a job failed on this agent: {error}")
    say("stopped")


def _progress(name: str, *, json_output: bool) -> Callable[[str], None]:
    def say(line: str) -> None:
        if json_output:
            doc = {"ts": round(time.time(), 3), "agent": name, "message": line}
            sys.stderr.write(json.dumps(doc) + "\n")
        else:
            sys.stderr.write(f"agent {name}: {line}\n")
        sys.stderr.flush()

    return say
