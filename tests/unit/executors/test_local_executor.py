"""Jobs as real local processes: exit codes, output, timeouts, cancel and leftovers."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from conveyor.executors.base import ExecRequest, ExecResult
from conveyor.executors.local import LocalExecutor

pytestmark = pytest.mark.timeout(30)


class Output:
    """Collects the chunks an execution hands over."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()


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


def is_gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_gone(pid: int, within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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
    timer = threading.Timer(0.1, execution.cancel)
    started = time.monotonic()
    timer.start()
    try:
        result = execution.wait()
    finally:
        timer.join()
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
