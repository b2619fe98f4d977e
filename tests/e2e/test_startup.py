"""What a command loads decides how fast it starts: the run path stays free of delivery."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .support import Workspace, WorkspaceFactory

SPEC = """
version: 1
jobs:
  build:
    run: echo built
delivery:
  service: shop
  artifacts: ["dist/*"]
  run: python -m http.server $PORT
  environments:
    - name: dev
"""
# Loaded only by commands about releases, promotions, Deployments, policy or the server.
HEAVY = (
    "conveyor.engine.promotions",
    "conveyor.engine.releases",
    "conveyor.engine.local_deployments",
    "conveyor.engine.evidence",
    "celpy",
    "sqlalchemy",
    "httpx",
    "fastapi",
)
PROBE = """\
import sys
from conveyor.cli.main import main
sys.argv = ["conveyor", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    loaded = sorted(name for name in {heavy!r} if name in sys.modules)
    sys.stderr.write(f"\\nexit {{done.code}} loaded {{loaded}}")
"""


def probe(ws: Workspace, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -c SCRIPT ARGS` in ws, as the `conveyor` command would run there."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ws.root,
        env=ws.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def loaded_by(ws: Workspace, command: list[str], heavy: tuple[str, ...]) -> str:
    """`conveyor COMMAND` run in ws: its exit code and which of `heavy` it loaded."""
    done = probe(ws, PROBE.format(heavy=heavy), *command)
    return done.stderr.rstrip().rpartition("\n")[2] or done.stderr


@pytest.mark.parametrize("command", [["run", "-q"], ["runs", "--json"], ["show", "latest"]])
def test_running_and_reading_history_load_no_delivery_or_server_module(
    workspace: WorkspaceFactory, command: list[str]
) -> None:
    ws = workspace(SPEC)
    assert ws.run().code == 0

    assert loaded_by(ws, command, HEAVY) == "exit 0 loaded []"


@pytest.mark.parametrize(
    ("command", "loaded"),
    [
        (["run", "-q", "--json"], []),
        (["run", "build", "-j", "2", "--explain"], []),
        (["run", "--help"], ["typer"]),  # help, usage errors and the rest are Typer's
    ],
)
def test_a_run_in_its_common_forms_reads_its_arguments_without_typer(
    workspace: WorkspaceFactory, command: list[str], loaded: list[str]
) -> None:
    ws = workspace(SPEC)

    assert loaded_by(ws, command, ("typer",)) == f"exit 0 loaded {loaded}"


LOUD = """
version: 1
jobs:
  loud:
    run: seq 1 40000
  broken:
    run: exit 3
    needs: [loud]
"""


def test_the_command_ends_with_its_own_exit_code_and_all_of_its_output(
    workspace: WorkspaceFactory,
) -> None:
    # The console script ends the process without tearing Python down: what
    # the command printed must still all arrive, and its exit code stand.
    ws = workspace(LOUD)

    failed = ws.cli("run", "-q")
    log = ws.cli("logs", "latest", "loud")
    usage = ws.cli("run", "--no-such-option")

    assert failed.code == 1, failed.text
    assert "broken" in failed.out
    assert log.code == 0, log.err
    assert log.out.split() == [str(n) for n in range(1, 40001)]
    assert usage.code == 2
    assert "--no-such-option" in usage.err


def test_the_command_ends_cleanly_when_its_standard_output_is_closed(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(LOUD)

    done = subprocess.run(
        ["bash", "-c", 'exec >&-; exec "$0" -m conveyor version', sys.executable],
        cwd=ws.root,
        env=ws.env,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode, done.stderr) == (0, "")


def test_a_ctrl_c_before_the_command_is_set_up_ends_it_with_130_and_no_traceback() -> None:
    # Where Ctrl-C lands depends on timing; here it lands where a command would first see it.
    interrupted = (
        "import conveyor.cli.main as cli\n"
        "def main():\n"
        "    raise KeyboardInterrupt\n"
        "cli.main = main\n"
        "cli.entry()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", interrupted],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode, done.stderr) == (130, "")


GC_PROBE = """\
import atexit, gc, sys
import conveyor.cli.start as start
off = not gc.isenabled()
atexit.register(lambda: sys.stderr.write(f"\\noff at start {off}, on at end {gc.isenabled()}, "
                                         f"frozen {gc.get_freeze_count() > 0}"))
sys.argv = ["conveyor", *sys.argv[1:]]
start.entry()
"""


@pytest.mark.parametrize(
    ("command", "frozen"),
    [(["run", "-q"], True), (["version"], False), (["runs", "--json"], False)],
)
def test_the_collector_is_off_while_starting_and_on_for_the_command(
    workspace: WorkspaceFactory, command: list[str], frozen: bool
) -> None:
    # Off while modules load; back on before a Run starts its jobs (with what start-up
    # made frozen), and before Typer runs any other command.
    ws = workspace(SPEC)
    done = probe(ws, GC_PROBE, *command)

    assert done.returncode == 0, done.stderr
    last = done.stderr.rstrip().rpartition("\n")[2]
    assert last == f"off at start True, on at end True, frozen {frozen}"


FIRST_JOB_PROBE = """\
import os, subprocess, sys
from conveyor.cli.start import entry
spawn, posix_spawn = subprocess.Popen._execute_child, os.posix_spawn
seen = []
def note(argv):
    if argv[0] != "git" and not seen:  # the job: git is asked who acts before
        seen.append(sorted(name for name in {heavy!r} if name in sys.modules))
        sys.stderr.write(f"\\nat the first job: {{seen[0]}}\\n")
def first_job(self, args, *rest, **kwargs):
    note(args)
    return spawn(self, args, *rest, **kwargs)
def first_spawned(path, argv, *rest, **kwargs):  # a job in the workspace's directory
    note(argv)
    return posix_spawn(path, argv, *rest, **kwargs)
subprocess.Popen._execute_child = first_job
os.posix_spawn = first_spawned
sys.argv = ["conveyor", "run", "-q", "--no-cache"]
entry()
"""


def test_a_run_starts_its_first_job_without_importing_dataclasses_or_inspect(
    workspace: WorkspaceFactory,
) -> None:
    # Importing `dataclasses` imports `inspect`, `ast`, `dis` and `tokenize`: a tenth of
    # what a Run does before its first job. The values of core/values.py need neither.
    # (Reading a pipeline file that changed takes pydantic, which imports both.)
    ws = workspace("version: 1\njobs:\n  build:\n    run: echo built\n")
    assert ws.run().code == 0
    done = probe(ws, FIRST_JOB_PROBE.format(heavy=("dataclasses", "inspect", "ast")))

    assert done.returncode == 0, done.stderr
    assert "\nat the first job: []\n" in done.stderr, done.stderr
