"""The `conveyor` command: one Typer app, one module per noun."""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, NoReturn

from conveyor.cli.errors import INFRASTRUCTURE, report
from conveyor.cli.output import discard_stdout
from conveyor.cli.quick import read_run
from conveyor.core.errors import ConveyorError

if TYPE_CHECKING:
    import typer

HELP = (
    "Conveyor: pipelines as code that run the same on a laptop and on runners, "
    "cached by content, recorded as a tamper-evident event log.\n\n"
    "Start with `conveyor run` in a directory with a conveyor.yaml. "
    "Exit codes: 0 success, 1 the work failed, 2 bad input, 3 infrastructure fault."
)

# The module of `conveyor.cli` whose `register(app)` adds each top-level command
# (tests/unit/cli/test_commands.py keeps this table equal to what the modules register).
COMMANDS: dict[str, str] = {
    "run": "pipeline",
    "validate": "pipeline",
    "schema": "pipeline",
    "cancel": "runs_control",
    "retry": "runs_control",
    "runs": "history",
    "show": "history",
    "logs": "history",
    "explain": "history",
    "artifacts": "history",
    "promote": "promote",
    "approve": "promote",
    "reject": "promote",
    "why": "promote",
    "promotions": "promote",
    "status": "deploy",
    "deployments": "deploy",
    "reconcile": "deploy",
    "change-record": "evidence",
    "evidence": "evidence",
    "server": "server",
    "agent": "agent",
    "cache": "cache",
    "db": "cache",
    "audit": "audit",
    "policy": "policy",
    "project": "project",
    "release": "release",
    "secret": "secret",
    "token": "token",
    "waiver": "waiver",
}
MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def version() -> None:
    """Print Conveyor's version."""
    from conveyor import __version__

    print(__version__)


def build_app(argv: Sequence[str] = ()) -> typer.Typer:
    """The `conveyor` app: every command, or only those of the module that owns argv's command.

    Typer turns the signature of every registered command into options when
    the app starts (40 ms for all of them), so `conveyor run` imports only
    `cli/pipeline.py` and keeps only its `run` command. Help, an unknown
    command or no command get the whole app, so usage and did-you-mean see
    every command.
    """
    import typer

    app = typer.Typer(
        name="conveyor",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    first = argv[0] if argv else None
    named = COMMANDS.get(first) if first else None
    modules = () if first in ("version", "--version") else (named,) if named else MODULES
    for module in modules:
        import_module(f"conveyor.cli.{module}").register(app)
    if named:
        app.registered_commands = [c for c in app.registered_commands if c.name == first]
        app.registered_groups = [g for g in app.registered_groups if g.name == first]
    app.command(name="version")(version)

    def group(
        _version: bool = typer.Option(
            False,
            "--version",
            help="Print Conveyor's version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ) -> None:
        """Commands come after `conveyor`; the group itself does nothing."""

    app.callback()(group)  # a group even with one command: `conveyor version`, not `conveyor`
    return app


def _print_version(given: bool) -> None:
    """`conveyor --version`, as `conveyor version`."""
    if given:
        import typer

        version()
        raise typer.Exit(0)


if TYPE_CHECKING:  # Typer's own copy of click's exception (the type its printer takes)
    from typer._click.exceptions import ClickException as _UsageError


def _usage_errors_as_json() -> None:
    """With --json, a usage error Typer reports (a bad option or value) is also one JSON
    object on stdout, as every other error is (`cli/errors.py`).

    Typer prints such an error itself and exits 2 before any command runs; its
    printer is wrapped to say it for programs too.
    """
    import json

    from typer import rich_utils

    show = rich_utils.rich_format_error

    def show_both(self: _UsageError) -> None:  # Typer's printer's signature, `self` and all
        show(self)
        doc = {"error": {"message": self.format_message(), "exit_code": self.exit_code}}
        try:
            sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        except OSError:
            pass  # the text on stderr still says it

    rich_utils.rich_format_error = show_both


def main() -> NoReturn:
    """Entry point: Typer handles usage errors (exit 2); Conveyor's errors map here.

    The common forms of `conveyor run` skip Typer (`cli/quick.py`): they are
    handled as Typer would, Ctrl-C before the Run starts included.
    """
    try:
        arguments = read_run(sys.argv[1:])
        if arguments is None:
            gc.enable()  # off while starting (cli/start.py); Typer's commands run with it
            if "--json" in sys.argv[1:]:
                _usage_errors_as_json()
            build_app(sys.argv[1:])()
        else:
            _run_quickly(arguments)
    except ConveyorError as error:
        sys.exit(report(error, as_json="--json" in sys.argv[1:]))
    except BrokenPipeError:
        # The reader went away (`conveyor runs | head`): it has what it wanted.
        discard_stdout()
        sys.exit(0)
    except OSError as error:
        # An operating-system fault (a full disk, a vanished directory) is infrastructure.
        discard_stdout()
        sys.stderr.write(f"error: {error}\n")
        sys.exit(INFRASTRUCTURE)
    sys.exit(0)


def entry() -> NoReturn:
    """The console script: `main()`, then end the process without tearing Python down.

    Once a command is done, freeing every module and object one by one only
    costs time (about 20 ms for `conveyor run`). Exit handlers still run and
    output is flushed; while a thread other than daemons is still at work, the
    interpreter ends the usual way, waiting for it.
    """
    try:
        main()
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:  # Ctrl-C before a command set its own handling up
        code = 130  # as a shell reports a command ended by SIGINT; nothing was started
    else:  # pragma: no cover - main() always exits
        code = 0
    if not isinstance(code, int | None) or not _may_end_at_once():
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # as Python itself exits when it cannot flush its output
    os._exit(code or 0)


def _run_quickly(arguments: dict[str, Any]) -> NoReturn:
    """`conveyor run` read by `cli/quick.py`, ending as it would under Typer."""
    from conveyor.cli.running import run_pipeline

    try:
        run_pipeline(**arguments)
    except KeyboardInterrupt:
        sys.exit(130)  # Typer's code for Ctrl-C, silently
    except EOFError:
        sys.stderr.write("\nAborted.\n")  # as Typer says it
        sys.exit(1)


def _may_end_at_once() -> bool:
    """Whether `os._exit` would skip nothing Python's own exit does but freeing memory.

    Not while a thread other than daemons still works (Python waits for it),
    nor when standard output or error is closed or missing (Python skips them).
    """
    current = threading.current_thread()
    if any(t is not current and not t.daemon for t in threading.enumerate()):
        return False
    return all(s is not None and not s.closed for s in (sys.stdout, sys.stderr))
