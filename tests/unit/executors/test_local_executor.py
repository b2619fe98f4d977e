"""Jobs as real local processes: exit codes, output, timeouts, cancel and leftovers."""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import Ways
from processes import Output, wait_gone

from conveyor.executors import local
from conveyor.executors.base import ExecRequest, ExecResult, Execution
from conveyor.executors.local import LocalExecutor

# The function itself: `both_ways` counts the calls made through the module.
SPAWN_HERE = local._spawn_here

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("both_ways")]


def request(script: str, cwd: Path) -> ExecRequest:
    return ExecRequest(job="job", script=script, env={"PATH": os.environ["PATH"]}, cwd=cwd)


def run(
    script: str,
    cwd: Path,
    *,
    timeout_s: float | None = None,
    executor: LocalExecutor | None = None,
    env: dict[str, str] | None = None,
) -> tuple[ExecResult, Output]:
    output = Output()
    request = ExecRequest(
        job="job",
        script=script,
        env={"PATH": os.environ["PATH"], **(env or {})},
        cwd=cwd,
        timeout_s=timeout_s,
    )
    execution = (executor or LocalExecutor(kill_grace_s=2.0)).start(request, output)
    return execution.wait(), output


def read_cmdline(pid: int, within_s: float = 2.0) -> bytes:
    """The arguments of `pid`, which /proc may show empty for a moment after the exec."""
    deadline = time.monotonic() + within_s
    while not (cmdline := Path(f"/proc/{pid}/cmdline").read_bytes()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return cmdline


def wait_canceled_after(execution: Execution, seconds: float) -> ExecResult:
    """Wait for `execution` while another thread cancels it after `seconds`."""
    timer = threading.Timer(seconds, execution.cancel)
    timer.start()
    try:
        return execution.wait()
    finally:
        timer.join()


def read_pid(path: Path, within_s: float = 5.0) -> int:
    deadline = time.monotonic() + within_s
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.01)
    return int(path.read_text())


@pytest.mark.parametrize(("script", "code"), [("true", 0), ("exit 3", 3), ("exit 255", 255)])
def test_the_exit_code_of_the_script_is_reported(tmp_path: Path, script: str, code: int) -> None:
    result, _ = run(script, tmp_path)
    assert (result.outcome, result.exit_code) == ("exited", code)
    assert result.duration_s >= 0


def test_a_failing_command_stops_the_script(tmp_path: Path) -> None:
    result, output = run("false\necho after", tmp_path)
    assert result.exit_code == 1
    assert "after" not in output.text


def test_a_failure_inside_a_pipeline_fails_the_script(tmp_path: Path) -> None:
    result, _ = run("false | true", tmp_path)
    assert result.exit_code == 1


def test_stdout_and_stderr_arrive_merged_and_in_order(tmp_path: Path) -> None:
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done"
    result, output = run(script, tmp_path)
    assert result.exit_code == 0
    assert output.text == "out1\nerr1\nout2\nerr2\nout3\nerr3\n"


def test_large_output_arrives_whole(tmp_path: Path) -> None:
    result, output = run("head -c 1000000 /dev/zero | tr '\\0' x; echo", tmp_path)
    assert result.exit_code == 0
    assert output.text == "x" * 1_000_000 + "\n"


def test_the_script_runs_in_its_cwd_with_its_environment(tmp_path: Path) -> None:
    result, output = run('pwd; echo "$GREETING"', tmp_path, env={"GREETING": "hi there"})
    assert result.exit_code == 0
    assert output.text == f"{tmp_path}\nhi there\n"


def test_a_job_in_this_process_directory_is_started_by_posix_spawn(
    tmp_path: Path, both_ways: Ways
) -> None:
    result, output = run("echo hi", tmp_path)
    assert (result.exit_code, output.text) == (0, "hi\n")
    assert len(both_ways.spawned) == (1 if both_ways.way == "posix_spawn" else 0)


def test_no_descriptor_but_the_standard_three_reaches_a_job(tmp_path: Path) -> None:
    # One handed down by whatever started Conveyor (a CI runner, a make jobserver) ...
    given = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(given, True)
    made = -1
    try:
        first, first_out = run(f"test -e /proc/self/fd/{given} && echo given || echo -", tmp_path)
        # ... and one made inheritable after jobs started (os.dup2 makes one so).
        made = os.dup2(given, 50)
        second, second_out = run(f"test -e /proc/self/fd/{made} && echo made || echo -", tmp_path)
    finally:
        os.close(given)
        if made >= 0:
            os.close(made)
    assert (first.exit_code, first_out.text) == (0, "-\n")
    assert (second.exit_code, second_out.text) == (0, "-\n")


def test_a_job_starts_after_this_process_directory_was_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone, work = tmp_path / "gone", tmp_path / "work"
    gone.mkdir()
    work.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    result, output = run("pwd", work)
    assert (result.exit_code, output.text) == (0, f"{work}\n")


def test_a_process_started_by_posix_spawn_and_dropped_leaves_no_zombie() -> None:
    # Its owner gave up on it without waiting: it is reaped by a later start, as Popen
    # reaps its own.
    env = {"PATH": os.environ["PATH"]}
    sleep, true = shutil.which("sleep"), shutil.which("true")
    assert sleep is not None and true is not None
    dropped = SPAWN_HERE(["sleep", "0.2"], env, sleep)
    pid = dropped.pid
    assert dropped.stdout is not None
    dropped.stdout.close()
    del dropped
    gc.collect()
    time.sleep(0.5)  # it has exited by now
    later = SPAWN_HERE(["true"], env, true)
    assert later.wait() == 0
    assert later.stdout is not None
    later.stdout.close()
    assert not Path(f"/proc/{pid}").exists()  # reaped, not a zombie


def test_the_script_cannot_read_the_terminal(tmp_path: Path) -> None:
    result, output = run("cat; echo done", tmp_path)
    assert (result.exit_code, output.text) == (0, "done\n")


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    script = "sleep 300 &\necho $! > child.pid\necho $$ > main.pid\nsleep 300\n"
    started = time.monotonic()
    result, _ = run(script, tmp_path, timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert result.outcome == "timed_out"
    assert result.exit_code is None
    assert result.detail == "timed out after 0.5s"
    assert 0.5 <= elapsed < 5
    assert wait_gone(read_pid(tmp_path / "child.pid"))
    assert wait_gone(read_pid(tmp_path / "main.pid"))


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    script = "trap '' TERM\necho $$ > main.pid\nwhile true; do sleep 0.05; done\n"
    started = time.monotonic()
    result, _ = run(script, tmp_path, timeout_s=0.3, executor=LocalExecutor(kill_grace_s=0.3))
    assert result.outcome == "timed_out"
    assert time.monotonic() - started < 5
    assert wait_gone(read_pid(tmp_path / "main.pid"))


def test_cancel_from_another_thread_ends_the_wait_promptly(tmp_path: Path) -> None:
    output = Output()
    request = ExecRequest(
        job="job",
        script="echo started\nsleep 300 &\necho $! > child.pid\nsleep 300\n",
        env={"PATH": os.environ["PATH"]},
        cwd=tmp_path,
    )
    execution = LocalExecutor(kill_grace_s=2.0).start(request, output)
    child = read_pid(tmp_path / "child.pid")
    started = time.monotonic()
    result = wait_canceled_after(execution, 0.1)
    assert result.outcome == "canceled"
    assert result.exit_code is None
    assert time.monotonic() - started < 3
    assert output.text.startswith("started\n")
    assert wait_gone(child)


def test_cancel_is_idempotent(tmp_path: Path) -> None:
    request = ExecRequest(
        job="job", script="sleep 300", env={"PATH": os.environ["PATH"]}, cwd=tmp_path
    )
    execution = LocalExecutor(kill_grace_s=2.0).start(request, Output())
    execution.cancel()
    execution.cancel()
    assert execution.wait().outcome == "canceled"
    execution.cancel()


def test_a_missing_cwd_fails_to_start_with_a_readable_detail(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    result, output = run("true", missing)
    assert result.outcome == "failed_to_start"
    assert result.exit_code is None
    assert str(missing) in result.detail
    assert "No such file or directory" in result.detail
    assert output.chunks == []


def test_a_background_process_holding_the_pipe_does_not_hold_the_job(tmp_path: Path) -> None:
    script = "sleep 300 &\necho $! > orphan.pid\necho main done\n"
    executor = LocalExecutor(kill_grace_s=2.0, orphan_grace_s=0.2)
    started = time.monotonic()
    result, output = run(script, tmp_path, executor=executor)
    assert (result.outcome, result.exit_code) == ("exited", 0)
    assert time.monotonic() - started < 3
    assert output.text == "main done\n"
    assert wait_gone(read_pid(tmp_path / "orphan.pid"))


def test_output_of_a_background_process_within_the_grace_is_kept(tmp_path: Path) -> None:
    script = "(sleep 0.1; echo late) &\necho early\n"
    executor = LocalExecutor(kill_grace_s=2.0, orphan_grace_s=2.0)
    result, output = run(script, tmp_path, executor=executor)
    assert result.exit_code == 0
    assert output.text == "early\nlate\n"


# A script of one simple command is exec'd without bash; the job sees what it saw under bash.


@pytest.mark.parametrize(
    "script", ["ls /nonexistent-dir-xyz", "sleep 0.05", "ls -a", "wc -c a-file", "cat -"]
)
def test_a_lone_command_gives_the_output_and_exit_code_the_shell_gives(
    tmp_path: Path, script: str
) -> None:
    (tmp_path / "a-file").write_text("some text\n")
    direct, direct_output = run(script, tmp_path)
    shell, shell_output = run(f"{script};", tmp_path)  # the `;` makes bash run it
    assert (direct.outcome, direct.exit_code) == (shell.outcome, shell.exit_code)
    assert direct_output.text == shell_output.text


def test_a_lone_command_gets_the_environment_bash_would_pass_on(tmp_path: Path) -> None:
    env = {"SHLVL": "1", "PWD": "/"}  # bash corrects PWD, and would add SHLVL=0 if missing
    _, direct = run("env", tmp_path, env=env)
    _, shell = run("env;", tmp_path, env=env)
    # All but `_`, which bash sets to the program it runs (see the next test).
    assert without_underscore(direct.text) == without_underscore(shell.text)


def without_underscore(env_output: str) -> list[str]:
    return sorted(line for line in env_output.splitlines() if not line.startswith("_="))


def test_a_lone_command_failing_reports_its_own_exit_code_and_message(tmp_path: Path) -> None:
    result, output = run("ls /nonexistent-dir-xyz", tmp_path)
    assert (result.outcome, result.exit_code) == ("exited", 2)
    # Named as typed, as under bash, not by the path it was found at.
    assert output.text.startswith("ls: cannot access '/nonexistent-dir-xyz'")


def test_a_lone_command_runs_without_a_shell(tmp_path: Path) -> None:
    # Bash sets `_` to the program it execs; exec'd directly, the given value stays.
    env = {"SHLVL": "7", "_": "set-by-the-test"}
    result, output = run("env", tmp_path, env=env)
    assert result.exit_code == 0
    assert "\nSHLVL=7\n" in f"\n{output.text}"
    assert "\n_=set-by-the-test\n" in f"\n{output.text}"
    # The same command with `;` goes through bash: this test tells the two apart.
    result, output = run("env;", tmp_path, env=env)
    assert result.exit_code == 0
    assert "_=set-by-the-test" not in output.text
    assert f"\n_={shutil.which('env', path=os.environ['PATH'])}\n" in f"\n{output.text}"


def test_a_lone_command_sees_the_pwd_bash_would_give_it(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for inherited in ("/", str(tmp_path / "sub" / "..")):
        env = {"PWD": inherited}
        _, direct = run("env", tmp_path, env=env)
        _, shell = run("env;", tmp_path, env=env)
        pwd = [line for line in direct.text.splitlines() if line.startswith("PWD=")]
        assert pwd == [line for line in shell.text.splitlines() if line.startswith("PWD=")]
    assert pwd == [f"PWD={tmp_path / 'sub' / '..'}"]  # it names the cwd: kept as bash keeps it


def test_a_timeout_still_kills_a_lone_command(tmp_path: Path) -> None:
    output = Output()
    request = ExecRequest(
        job="job", script="sleep 30", env={"PATH": os.environ["PATH"]}, cwd=tmp_path, timeout_s=0.3
    )
    started = time.monotonic()
    execution = LocalExecutor(kill_grace_s=2.0).start(request, output)
    pid = execution.pid
    assert pid is not None
    cmdline = read_cmdline(pid)
    result = execution.wait()
    assert cmdline == b"sleep\x0030\x00"  # the job's own process is the command, as typed
    assert (result.outcome, result.exit_code) == ("timed_out", None)
    assert time.monotonic() - started < 3
    assert wait_gone(pid)


def test_cancel_still_stops_a_lone_command(tmp_path: Path) -> None:
    request = ExecRequest(
        job="job", script="sleep 30", env={"PATH": os.environ["PATH"]}, cwd=tmp_path
    )
    execution = LocalExecutor(kill_grace_s=2.0).start(request, Output())
    pid = execution.pid
    assert pid is not None
    started = time.monotonic()
    result = wait_canceled_after(execution, 0.1)
    assert (result.outcome, result.exit_code) == ("canceled", None)
    assert time.monotonic() - started < 3
    assert wait_gone(pid)


def test_a_missing_command_still_gets_bashs_message(tmp_path: Path) -> None:
    result, output = run("no-such-command-xyz --flag", tmp_path)
    assert (result.outcome, result.exit_code) == ("exited", 127)
    assert "no-such-command-xyz: command not found" in output.text


def test_a_file_that_is_not_executable_still_gets_bashs_message(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("x\n")
    result, output = run("./data.txt", tmp_path)
    assert (result.outcome, result.exit_code) == ("exited", 126)
    assert "Permission denied" in output.text


def test_an_executable_without_a_shebang_is_run_by_bash_as_before(tmp_path: Path) -> None:
    # exec fails (ENOEXEC) where bash would read the file as a script: the shell takes over.
    script = tmp_path / "build"
    script.write_text("echo built in $PWD\n")
    script.chmod(0o755)
    result, output = run("./build", tmp_path)
    assert (result.outcome, result.exit_code) == ("exited", 0)
    assert output.text == f"built in {tmp_path}\n"
