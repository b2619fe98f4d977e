"""Which scripts are one simple command bash would only exec, and what it would exec."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.executors.local import direct_argv

PATH = {"PATH": os.environ["PATH"]}


def which(name: str) -> str:
    found = shutil.which(name, path=PATH["PATH"])
    assert found is not None, f"{name} is not installed"
    return found


def executable(path: Path, text: str = "#!/bin/sh\necho hi\n", mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("sleep 0.1", ["sleep", "0.1"]),
        ("  ls   -l  /tmp  ", ["ls", "-l", "/tmp"]),
        ("\n\tls -l\n\n", ["ls", "-l"]),
        ("env FOO=1 BAR=", ["env", "FOO=1", "BAR="]),
        ("date +%Y-%m-%d", ["date", "+%Y-%m-%d"]),
    ],
)
def test_a_simple_command_gives_its_words_with_the_resolved_program(
    tmp_path: Path, script: str, words: list[str]
) -> None:
    argv = direct_argv(script, PATH, str(tmp_path))
    assert argv == [which(words[0]), *words[1:]]
    assert argv is not None
    assert Path(argv[0]).is_absolute()


@pytest.mark.parametrize("char", list("#;\"'*?[]&|<>(){}$`^~!\\"))
def test_a_character_bash_gives_a_meaning_leaves_the_script_to_bash(
    tmp_path: Path, char: str
) -> None:
    assert direct_argv(f"ls a{char}b", PATH, str(tmp_path)) is None
    assert direct_argv(f"ls {char}", PATH, str(tmp_path)) is None


@pytest.mark.parametrize(
    "space",
    ["\t", "\r", "\n", "\v", "\f", "\xa0", "\u2003", "\x00", "\x1b"],
    ids=["tab", "cr", "newline", "vt", "ff", "nbsp", "em-space", "nul", "esc"],
)
def test_whitespace_or_control_characters_inside_leave_the_script_to_bash(
    tmp_path: Path, space: str
) -> None:
    # Bash splits words on spaces and tabs only; `str.split()` would split on more.
    assert direct_argv(f"ls{space}-l", PATH, str(tmp_path)) is None


def test_a_trailing_carriage_return_is_not_stripped_away(tmp_path: Path) -> None:
    # Bash looks for a command named "ls\r" (and reports it missing); so must this.
    assert direct_argv("ls\r", PATH, str(tmp_path)) is None
    assert direct_argv("ls -l\r\n", PATH, str(tmp_path)) is None


@pytest.mark.parametrize(
    "script",
    ["true", "false", "echo hi", "exit 3", "cd x", "test -f x", "pwd", "printf x", "kill 1"],
)
def test_a_builtin_is_left_to_bash(tmp_path: Path, script: str) -> None:
    assert direct_argv(script, PATH, str(tmp_path)) is None


@pytest.mark.parametrize("script", ["if", "then x", "while x", "time sleep 1", "coproc x"])
def test_a_keyword_is_left_to_bash(tmp_path: Path, script: str) -> None:
    assert direct_argv(script, PATH, str(tmp_path)) is None


def test_every_builtin_and_keyword_of_the_bash_here_is_left_to_bash(tmp_path: Path) -> None:
    listed = subprocess.run(
        [which("bash"), "--noprofile", "--norc", "-c", "compgen -b; compgen -k"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "cd" in listed
    assert "while" in listed
    direct = [word for word in listed if direct_argv(word, PATH, str(tmp_path)) is not None]
    assert direct == []


@pytest.mark.parametrize("script", ["FOO=1 env", "A=b=c env", "=x"])
def test_an_assignment_is_left_to_bash(tmp_path: Path, script: str) -> None:
    assert direct_argv(script, PATH, str(tmp_path)) is None


def test_a_job_spec_is_left_to_bash(tmp_path: Path) -> None:
    # `%1` alone means `fg %1` to bash.
    assert direct_argv("%1", PATH, str(tmp_path)) is None


@pytest.mark.parametrize("script", ["ls\nls", "ls -l\npwd", "sleep 1\n\nsleep 2"])
def test_several_lines_are_left_to_bash(tmp_path: Path, script: str) -> None:
    assert direct_argv(script, PATH, str(tmp_path)) is None


@pytest.mark.parametrize("script", ["", " ", "\n", " \t\n\n "])
def test_an_empty_script_is_left_to_bash(tmp_path: Path, script: str) -> None:
    assert direct_argv(script, PATH, str(tmp_path)) is None


def test_a_command_not_on_path_is_left_to_bash(tmp_path: Path) -> None:
    assert direct_argv("no-such-command-xyz --help", PATH, str(tmp_path)) is None


def test_a_relative_executable_resolves_against_cwd(tmp_path: Path) -> None:
    tool = executable(tmp_path / "tool")
    executable(tmp_path / "bin" / "build")
    argv = direct_argv("./tool a b", PATH, str(tmp_path))
    assert argv is not None
    assert (Path(argv[0]), argv[1:]) == (tool, ["a", "b"])
    assert Path(argv[0]).is_absolute()
    argv = direct_argv("bin/build", PATH, str(tmp_path))
    assert argv is not None
    assert Path(argv[0]) == tmp_path / "bin" / "build"


def test_a_relative_cwd_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = executable(tmp_path / "work" / "tool")
    monkeypatch.chdir(tmp_path)
    argv = direct_argv("./tool", PATH, "work")
    assert argv is not None
    assert Path(argv[0]).is_absolute()
    assert Path(argv[0]) == tool


def test_an_absolute_program_is_used_as_it_is(tmp_path: Path) -> None:
    env = which("env")
    assert direct_argv(f"{env} -i", PATH, str(tmp_path)) == [env, "-i"]


def test_a_relative_program_is_not_looked_up_in_the_callers_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable(tmp_path / "tool")
    (tmp_path / "job").mkdir()
    monkeypatch.chdir(tmp_path)
    assert direct_argv("./tool", PATH, str(tmp_path / "job")) is None


@pytest.mark.parametrize(
    ("name", "mode"),
    [("data.txt", 0o644), ("dir", None), ("tool/", 0o755)],
    ids=["not-executable", "directory", "trailing-slash"],
)
def test_what_cannot_be_exec_d_is_left_to_bash(tmp_path: Path, name: str, mode: int | None) -> None:
    if mode is None:
        (tmp_path / name).mkdir(mode=0o755)
    else:
        executable(tmp_path / name.rstrip("/"), mode=mode)
    assert direct_argv(f"./{name}", PATH, str(tmp_path)) is None


def test_the_path_of_the_job_is_searched_not_the_callers(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    tool = executable(bin_dir / "job-only-tool")
    assert direct_argv("job-only-tool -v", PATH, str(tmp_path)) is None
    env = {"PATH": f"{bin_dir}{os.pathsep}{PATH['PATH']}"}
    assert direct_argv("job-only-tool -v", env, str(tmp_path)) == [str(tool), "-v"]
    # `sleep` is on the caller's PATH, not on the job's.
    assert direct_argv("sleep 1", {"PATH": str(bin_dir)}, str(tmp_path)) is None


def test_the_first_match_on_path_wins(tmp_path: Path) -> None:
    shadow = executable(tmp_path / "bin" / "sleep")
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{PATH['PATH']}"}
    assert direct_argv("sleep 1", env, str(tmp_path)) == [str(shadow), "1"]


@pytest.mark.parametrize(
    "path",
    [None, "", f"bin{os.pathsep}/usr/bin", f"/usr/bin{os.pathsep}", f"{os.pathsep}/usr/bin"],
    ids=["unset", "empty", "relative", "trailing-empty", "leading-empty"],
)
def test_a_path_bash_would_read_its_own_way_is_left_to_bash(
    tmp_path: Path, path: str | None
) -> None:
    # Bash has its own default PATH, and reads relative entries against the job's cwd.
    env = {} if path is None else {"PATH": path}
    assert direct_argv("ls", env, str(tmp_path)) is None


@pytest.mark.parametrize(
    "extra",
    [
        {"BASH_FUNC_ls%%": "() { echo not ls; }"},
        {"BASH_ENV": "/etc/profile"},
        {"SHELLOPTS": "xtrace"},
        {"BASHOPTS": "extglob"},
        {"EXECIGNORE": "*/ls"},
    ],
    ids=["exported-function", "bash-env", "shellopts", "bashopts", "execignore"],
)
def test_an_environment_that_changes_what_bash_runs_is_left_to_bash(
    tmp_path: Path, extra: dict[str, str]
) -> None:
    assert direct_argv("ls", {**PATH, **extra}, str(tmp_path)) is None


def test_unrelated_or_empty_bash_variables_keep_the_command_direct(tmp_path: Path) -> None:
    env = {**PATH, "BASH_FUNC_other%%": "() { :; }", "BASH_ENV": "", "SHLVL": "3"}
    assert direct_argv("ls", env, str(tmp_path)) == [which("ls")]
