"""The `conveyor` command: one Typer app, one module per noun."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from conveyor.cli import agent as agent_commands
from conveyor.cli import audit, history, pipeline, runs_control
from conveyor.cli import cache as cache_commands
from conveyor.cli import deploy as deploy_commands
from conveyor.cli import evidence as evidence_commands
from conveyor.cli import policy as policy_commands
from conveyor.cli import project as project_commands
from conveyor.cli import promote as promote_commands
from conveyor.cli import release as release_commands
from conveyor.cli import secret as secret_commands
from conveyor.cli import server as server_commands
from conveyor.cli import token as token_commands
from conveyor.cli import waiver as waiver_commands
from conveyor.cli.errors import INFRASTRUCTURE, report
from conveyor.cli.output import discard_stdout
from conveyor.core.errors import ConveyorError

app = typer.Typer(
    name="conveyor",
    help=(
        "Conveyor: pipelines as code that run the same on a laptop and on runners, "
        "cached by content, recorded as a tamper-evident event log.\n\n"
        "Start with `conveyor run` in a directory with a conveyor.yaml. "
        "Exit codes: 0 success, 1 the work failed, 2 bad input, 3 infrastructure fault."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

pipeline.register(app)
runs_control.register(app)
history.register(app)
promote_commands.register(app)
deploy_commands.register(app)
evidence_commands.register(app)
server_commands.register(app)
agent_commands.register(app)
app.add_typer(cache_commands.app, name="cache")
app.add_typer(history.artifacts_app, name="artifacts")
app.add_typer(cache_commands.db_app, name="db")
app.add_typer(audit.app, name="audit")
app.add_typer(policy_commands.app, name="policy")
app.add_typer(project_commands.app, name="project")
app.add_typer(release_commands.app, name="release")
app.add_typer(secret_commands.app, name="secret")
app.add_typer(token_commands.app, name="token")
app.add_typer(waiver_commands.app, name="waiver")


@app.command()
def version() -> None:
    """Print Conveyor's version."""
    from conveyor import __version__

    typer.echo(__version__)


def main() -> NoReturn:
    """Entry point: Typer handles usage errors (exit 2); Conveyor's errors map here."""
    try:
        app()
    except ConveyorError as error:
        sys.exit(report(error))
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
