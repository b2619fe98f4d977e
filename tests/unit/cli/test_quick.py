"""`conveyor run` read without Typer (cli/quick.py) reads exactly what Typer would.

The quick reader is a second reading of one command's arguments, so these tests
hold it to the Typer command: the same options, the same fields and defaults,
and for each form of argv either the same `RunArgs` or a hand-over to Typer.
"""

from __future__ import annotations

import dataclasses

import pytest
import typer
import typer.main
from typer.core import TyperArgument, TyperCommand, TyperOption
from typer.testing import CliRunner

from conveyor.cli import main as cli_main
from conveyor.cli import running
from conveyor.cli.main import build_app
from conveyor.cli.quick import FLAGS, TO_TYPER, VALUES, read_run
from conveyor.cli.running import RunArgs


def run_command() -> TyperCommand:
    group = typer.main.get_command(build_app(["run"]))
    command = group.commands["run"]  # type: ignore[attr-defined]
    assert isinstance(command, TyperCommand)
    return command


def typer_reads(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> RunArgs | int:
    """What the Typer command hands to `run_pipeline` for argv, or its exit code if nothing."""
    seen: list[RunArgs] = []
    monkeypatch.setattr(running, "run_pipeline", seen.append)
    result = CliRunner().invoke(build_app(argv), argv)
    return seen[0] if seen else result.exit_code


def test_the_table_has_every_option_of_the_typer_command_and_nothing_else() -> None:
    options = [p for p in run_command().params if isinstance(p, TyperOption)]
    spellings = {s for o in options for s in (*o.opts, *o.secondary_opts)}

    help_options = {"-h", "--help"}  # the app's help_option_names, not a parameter
    assert spellings | help_options == set(FLAGS) | set(VALUES) | TO_TYPER
    for option in options:
        for spelling in option.opts:
            if spelling in FLAGS:
                assert option.is_flag and FLAGS[spelling] == option.name, spelling
            elif spelling in VALUES:
                assert not option.is_flag and VALUES[spelling] == option.name, spelling


def test_run_args_are_the_commands_parameters_with_the_same_defaults() -> None:
    params = {p.name: p for p in run_command().params}
    fields = {f.name: f for f in dataclasses.fields(RunArgs)}

    assert set(fields) == set(params)
    (jobs,) = [p for p in params.values() if isinstance(p, TyperArgument)]
    assert jobs.name == "jobs" and jobs.default is None and fields["jobs"].default == ()
    for name, param in params.items():
        if name != "jobs":
            assert fields[name].default == param.default, name


READ_ALIKE = [
    ["run"],
    ["run", "-q", "-j", "10"],
    ["run", "--jobs=3", "test", "lint"],
    ["run", "test", "--explain", "--json"],
    ["run", "build", "--keep-going", "test"],
    ["run", "-k", "--no-cache", "-n", "--no-release", "--quiet"],
    ["run", "--file", "ci/conveyor.yaml", "--event", "push", "--base", "origin/main"],
    ["run", "-f", "other.yaml", "--branch", "main", "--dry-run"],
    ["run", "--event=pull_request", "--branch=feature=x"],
    ["run", "-j", "2", "-j", "5"],
    ["run", "-j", " 4 "],
    ["run", "-q", "-q", ""],
]


@pytest.mark.parametrize("argv", READ_ALIKE, ids=" ".join)
def test_the_common_forms_are_read_as_typer_reads_them(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = read_run(argv)

    assert quick is not None
    assert quick == typer_reads(argv, monkeypatch)


LEFT_TO_TYPER = [
    ["run", "-h"],
    ["run", "--help"],
    ["run", "-qk"],
    ["run", "-j4"],
    ["run", "-j=4"],
    ["run", "-j", "0"],
    ["run", "-j", "many"],
    ["run", "--jobs"],
    ["run", "--branch", "-q"],
    ["run", "--json=1"],
    ["run", "--remote"],
    ["run", "--remote", "--no-wait"],
    ["run", "--", "test"],
    ["run", "-"],
    ["run", "--bogus"],
    ["run", "--keep-goin"],
]


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_everything_else_is_left_to_typer(argv: list[str]) -> None:
    assert read_run(argv) is None


@pytest.mark.parametrize("argv", [[], ["runs"], ["show", "run"], ["--help"], ["validate"]])
def test_other_commands_are_left_to_typer(argv: list[str]) -> None:
    assert read_run(argv) is None


def test_usage_errors_still_get_typers_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    for argv in (["run", "-j", "0"], ["run", "-j", "many"], ["run", "--bogus"]):
        assert typer_reads(argv, monkeypatch) == 2, argv


def test_shell_completion_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_CONVEYOR_COMPLETE", "complete_bash")

    assert read_run(["run", "-q"]) is None


def test_ctrl_c_before_the_run_starts_exits_as_under_typer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(_args: RunArgs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(running, "run_pipeline", interrupted)

    with pytest.raises(SystemExit) as exited:
        cli_main._run_quickly(RunArgs())
    assert exited.value.code == 130
