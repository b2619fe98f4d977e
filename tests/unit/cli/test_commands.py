"""The table of which module registers each command stays equal to what the modules do."""

from __future__ import annotations

from importlib import import_module

import typer

from conveyor.cli.main import COMMANDS, MODULES, build_app


def registered(app: typer.Typer) -> set[str]:
    commands = {info.name for info in app.registered_commands}
    groups = {info.name for info in app.registered_groups}
    assert None not in commands | groups, "every command is registered under an explicit name"
    return {name for name in commands | groups if name is not None}


def test_each_module_registers_exactly_the_commands_the_table_gives_it() -> None:
    for module in MODULES:
        app = typer.Typer()
        import_module(f"conveyor.cli.{module}").register(app)

        expected = {name for name, owner in COMMANDS.items() if owner == module}
        assert registered(app) == expected, module


def test_a_named_command_builds_only_itself() -> None:
    assert registered(build_app(["run", "-q"])) == {"run", "version"}
    assert registered(build_app(["cache", "prune"])) == {"cache", "version"}
    assert registered(build_app(["version"])) == {"version"}


def test_help_an_unknown_command_or_none_build_every_command() -> None:
    everything = set(COMMANDS) | {"version"}

    for argv in ([], ["--help"], ["rnu"]):
        assert registered(build_app(argv)) == everything, argv


def test_version_as_an_option_prints_the_version_and_builds_no_command() -> None:
    from typer.testing import CliRunner

    from conveyor import __version__

    app = build_app(["--version"])
    done = CliRunner().invoke(app, ["--version"])

    assert done.exit_code == 0
    assert done.output == f"{__version__}\n"
    assert registered(app) == {"version"}
    assert CliRunner().invoke(app, ["version"]).output == done.output
