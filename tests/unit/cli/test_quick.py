"""`conveyor run` read without Typer (cli/quick.py) reads exactly what Typer would.

The quick reader is a second reading of one command's arguments, so these tests
hold it to the Typer command: the same options, the same parameters and
defaults, and for each form of argv either the same keyword arguments of
`run_pipeline` or a hand-over to Typer.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
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


@pytest.mark.parametrize(
    ("raised", "code"), [(KeyboardInterrupt, 130), (EOFError, 1)], ids=["ctrl-c", "eof"]
)
def test_an_interrupted_run_ends_as_under_typer(
    raised: type[BaseException],
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(**_arguments: object) -> None:
        raise raised

    monkeypatch.setattr(running, "run_pipeline", interrupted)
    ended = {}
    for argv in (["conveyor", "run", "-q"], ["conveyor", "run", "-qq"]):  # quick, then Typer
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            cli_main.main()
        ended[argv[-1]] = (exited.value.code, capsys.readouterr().err.strip())

    assert read_run(["run", "-q"]) is not None and read_run(["run", "-qq"]) is None
    assert ended["-q"] == ended["-qq"]
    assert ended["-q"][0] == code


def test_a_file_that_exists_but_cannot_be_read_is_left_to_typer(tmp_path: Path) -> None:
    spec = tmp_path / "conveyor.yaml"
    spec.write_text("version: 1\njobs: {}\n")
    spec.chmod(0)
    probe = (
        "from conveyor.cli.quick import read_run; print(read_run(['run', '-f', 'conveyor.yaml']))"
    )
    # Without the capabilities that let root read any file.
    argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    done = subprocess.run(
        [*argv, sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "None"
    readable = subprocess.run(
        [sys.executable, "-c", probe.replace("conveyor.yaml", "other.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "PosixPath('other.yaml')" in readable.stdout  # a missing file is ours to report
