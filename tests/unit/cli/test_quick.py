"""`conveyor run` read without Typer (cli/quick.py) reads exactly what Typer would.

The quick reader is a second reading of one command's arguments, so these tests
hold it to the Typer command: the same options, the same parameters and
defaults, and for each form of argv either the same keyword arguments of
`run_pipeline` or a hand-over to Typer.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import typer
import typer.main
from typer.core import TyperArgument, TyperCommand, TyperOption
from typer.testing import CliRunner

from conveyor.cli import main as cli_main
from conveyor.cli import running
from conveyor.cli.main import build_app
from conveyor.cli.quick import FLAGS, TO_TYPER, VALUES, read_run


def run_command() -> TyperCommand:
    group = typer.main.get_command(build_app(["run"]))
    command = group.commands["run"]  # type: ignore[attr-defined]
    assert isinstance(command, TyperCommand)
    return command


SIGNATURE = inspect.signature(running.run_pipeline)  # before any test replaces it


def complete(arguments: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments with the defaults of those not given, as `run_pipeline` sees them."""
    bound = SIGNATURE.bind(**arguments)
    bound.apply_defaults()
    return dict(bound.arguments)


def typer_reads(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any] | int:
    """What the Typer command hands to `run_pipeline` for argv, or its exit code if nothing."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(running, "run_pipeline", lambda **arguments: seen.append(arguments))
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


def test_run_pipeline_takes_the_commands_parameters_with_the_same_defaults() -> None:
    params = {p.name: p for p in run_command().params}
    keywords = SIGNATURE.parameters

    assert set(keywords) == set(params)
    assert all(k.kind is inspect.Parameter.KEYWORD_ONLY for k in keywords.values())
    (jobs,) = [p for p in params.values() if isinstance(p, TyperArgument)]
    assert jobs.name == "jobs" and jobs.default is None and keywords["jobs"].default == ()
    for name, param in params.items():
        if name != "jobs":
            assert keywords[name].default == param.default, name


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
    typer_read = typer_reads(argv, monkeypatch)

    assert quick is not None
    assert isinstance(typer_read, dict), f"Typer refused it: exit {typer_read}"
    assert complete(quick) == complete(typer_read)


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
    def interrupted(**_arguments: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(running, "run_pipeline", interrupted)

    with pytest.raises(SystemExit) as exited:
        cli_main._run_quickly({"quiet": True})
    assert exited.value.code == 130
