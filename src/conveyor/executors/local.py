"""Jobs as local processes, each in its own process group.

The script runs under `bash -eo pipefail` in a new session, so a timeout or
a cancel can signal the whole tree the job started (SIGTERM, then SIGKILL
after a grace period). A script of a single simple command (`pytest -q
tests`) is the exception: bash would only start, parse it and exec the
command in its own process, so the command is exec'd directly, as bash
itself would do, saving the shell's start-up (about 1.6 ms a job). Output is
read from one pipe (stdout and stderr merged, in order) by whoever advances
the execution: `wait()`, or the scheduler's event loop.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal, Protocol

from conveyor.executors.base import ExecRequest, ExecResult, OutputSink

# Read in small pieces: an event loop serving many jobs hands each its turn
# in between, so a job that floods its output delays the others little
# (bench/log_flood_bench.py: 16 KiB reads let a flood slow a chain of jobs
# 1.8x, 4 KiB 1.2x; a 21 MB log is captured in 5-7 s either way).
_READ = 4096
# Without a pidfd the script's exit is polled: every 2 ms at first (a short
# script), backing off to every 50 ms (a long one).
_POLL_FIRST_S, _POLL_MAX_S = 0.002, 0.05
# The longest `wait()` blocks before it looks at a cancel from another thread.
_CHECK_S = 0.5
# At most this many reads of what a stopped script left in its output.
_DRAIN_READS = 16
# A single argument may hold 128 KiB on Linux; longer scripts go through a file.
_INLINE_LIMIT = 100_000
# How long empty environments are read again while processes may be mid-exec
# (see _environment), and the flag of a kernel thread, whose environment is empty.
_EXEC_WAIT_S = 0.05
_PF_KTHREAD = 0x00200000


# What `bash -c 'compgen -b; compgen -k'` prints (bash 5.2): words bash runs itself.
_BASH_WORDS = frozenset(
    """
    . : [ alias bg bind break builtin caller cd command compgen complete compopt continue
    declare dirs disown echo enable eval exec exit export false fc fg getopts hash help
    history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly
    return set shift shopt source suspend test times trap true type typeset ulimit umask
    unalias unset wait
    if then else elif fi case esac for select while until do done in function time
    { } ! [[ ]] coproc
    """.split()  # noqa: SIM905 - as compgen prints them, to compare at a glance
)
# Characters bash gives a meaning (quoting, expansion, globbing, redirection,
# operators, comments), control characters, and any whitespace but a space:
# `str.split()` splits on tabs or no-break spaces, bash does not.
_SPECIAL = re.compile(r"""[#;"'*?\[\]&|<>(){}$`^~!\\\x00-\x1f\x7f]|[^\S ]""")
# Variables that make bash run or look up something else before the command.
_BASH_HOOKS = ("BASH_ENV", "SHELLOPTS", "BASHOPTS", "EXECIGNORE")


def direct_argv(script: str, env: Mapping[str, str], cwd: str) -> list[str] | None:
    """The argv to exec instead of running `script` under bash, or None for the shell.

    For a script of one simple command bash only starts, parses and execs the
    command in its own process, so running it directly changes only the time
    the shell takes to start, and the few variables bash sets for the command
    itself (`_`, and `SHLVL` when it was unset). Anything bash would read differently
    from words split on spaces returns None: quoting, expansion, redirection,
    several commands, an assignment, a builtin or keyword, a job spec (`%1`),
    an exported function of that name, a start-up file or options given in
    `env`. So does a command that is not found or not executable, for bash to
    report it (127, 126) as before. argv[0] is the resolved path.
    """
    line = script.strip(" \t\n")
    if not line or _SPECIAL.search(line):
        return None
    argv = line.split()
    word = argv[0]
    if "=" in word or word[0] == "%" or word in _BASH_WORDS or _bash_redefines(word, env):
        return None
    path = _resolve(word, env, cwd)
    return None if path is None else [path, *argv[1:]]


def _bash_redefines(word: str, env: Mapping[str, str]) -> bool:
    """Whether bash, given `env`, would run or find something other than `word` on PATH."""
    return f"BASH_FUNC_{word}%%" in env or any(env.get(name) for name in _BASH_HOOKS)


def _resolve(word: str, env: Mapping[str, str], cwd: str) -> str | None:
    """The executable bash would exec for `word`, or None.

    Looked up every time: a cached answer would miss a program installed
    since in a directory earlier on PATH (a virtualenv's `python`), and a
    lookup costs only a few stats. Relative PATH entries (bash reads them
    against the job's cwd) and no PATH at all (bash has its own default) are
    left to bash.
    """
    if "/" not in word:
        search = env.get("PATH", "")
        if not search or not all(entry.startswith("/") for entry in search.split(os.pathsep)):
            return None
        return shutil.which(word, path=search)
    base = cwd if cwd.startswith("/") else str(Path(cwd).absolute())
    # Joined as text: Path would drop a trailing slash, on which exec fails.
    path = word if word.startswith("/") else f"{base}/{word}"
    return path if os.access(path, os.X_OK) and Path(path).is_file() else None


def _bash_env(env: Mapping[str, str], cwd: str) -> dict[str, str]:
    """`env` as bash would pass it on: PWD names the job's directory.

    Bash keeps an inherited PWD that names its directory and otherwise sets
    the physical path; an inherited one usually names the directory
    `conveyor` started in.
    """
    pwd = env.get("PWD", "")
    with contextlib.suppress(OSError):
        if pwd.startswith("/") and (pwd == cwd or Path(pwd).samefile(cwd)):
            return dict(env)
    return {**env, "PWD": str(Path(cwd).resolve())}


def _shell() -> list[str]:
    bash = shutil.which("bash")
    if bash:
        return [bash, "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    return ["/bin/sh", "-e", "-c"]


class LocalExecutor:
    """Runs each attempt as a local subprocess tree."""

    def __init__(self, *, kill_grace_s: float = 5.0, orphan_grace_s: float = 1.0) -> None:
        self.kill_grace_s = kill_grace_s
        self.orphan_grace_s = orphan_grace_s
        self._shell = _shell()
        # Only bash is known to exec a lone simple command; /bin/sh always runs the script.
        self._direct = Path(self._shell[0]).name == "bash"

    def stop_orphans(self, pgid: int, markers: Sequence[str]) -> bool:
        return stop_orphaned_group(pgid, markers)

    def start(self, request: ExecRequest, output: OutputSink) -> LocalExecution:
        return LocalExecution(self, request, output)


class LocalExecution:
    """One running attempt, driven by `wait()` or by the caller's own event loop.

    Its state changes only in `advance()`, which never blocks: output is read
    as it arrives, the script's exit is seen through a pidfd where the kernel
    offers one (else polled), and deadlines (timeout, the grace before
    SIGKILL, orphans holding the output) are checked. `cancel()` may be
    called from any thread.
    """

    def __init__(self, executor: LocalExecutor, request: ExecRequest, output: OutputSink) -> None:
        self._executor = executor
        self._request = request
        self._output = output
        self._canceled_at: float | None = None
        self._started = time.monotonic()
        self._next_poll = self._started
        self._poll_every = _POLL_FIRST_S
        self._deadline = None if request.timeout_s is None else self._started + request.timeout_s
        self._proc: _Process | None = None
        self._script_file: str | None = None
        self._result: ExecResult | None = None
        self._selector: selectors.BaseSelector | None = None
        self._out_fd = -1
        self._pidfd: int | None = None
        self._exited_at: float | None = None
        self._stopping: Literal["timed_out", "canceled"] | None = None
        self._kill_at: float | None = None
        try:
            self._proc = self._start_direct() or self._spawn(
                self._command(request.script), dict(request.env)
            )
        except OSError as exc:
            detail = f"cannot start the job's shell in {request.cwd}: {exc.strerror}"
            self._result = ExecResult("failed_to_start", None, 0.0, detail)
            self._remove_script_file()
            return
        assert self._proc.stdout is not None
        self._out_fd = self._proc.stdout.fileno()
        self._pidfd = _open_pidfd(self._proc.pid)

    def _start_direct(self) -> _Process | None:
        """The job's lone simple command exec'd without bash, or None to use the shell.

        The command keeps the argv[0] it was typed with, as under bash (it
        shows in messages such as `ls: cannot access ...`). When the exec
        fails (the file went away, or has no `#!` line and bash would run it
        as a script) the shell runs the script instead and reports as before.
        """
        if not self._executor._direct:
            return None
        request, cwd = self._request, str(self._request.cwd)
        argv = direct_argv(request.script, request.env, cwd)
        if argv is None:
            return None
        typed = request.script.split()  # the same words, the command as typed
        try:
            return self._spawn(typed, _bash_env(request.env, cwd), executable=argv[0])
        except OSError:
            return None

    def _spawn(
        self, argv: list[str], env: dict[str, str], executable: str | None = None
    ) -> _Process:
        """The process of `argv` (`executable` when given, else argv[0]), reading its output.

        `posix_spawn` where it does what `Popen` would (the job's directory is
        this process's own, on Linux): it starts a process in 0.3 ms where
        `Popen` takes 0.5 ms, most of it Python around the same system calls.
        """
        cwd = str(self._request.cwd)
        path = argv[0] if executable is None else executable
        # As text: a Path for each start would cost more than the call it saves.
        if _SPAWN_HERE and path.startswith("/") and cwd == _here():
            with contextlib.suppress(NotImplementedError):  # no POSIX_SPAWN_SETSID
                return _spawn_here(argv, env, path)
        return subprocess.Popen(
            argv,
            executable=executable,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _command(self, script: str) -> list[str]:
        """The shell with the script: inline, or from a private file when too long for argv."""
        if len(script.encode()) <= _INLINE_LIMIT:
            return [*self._executor._shell, script]
        import tempfile  # only for scripts too long for argv

        fd, self._script_file = tempfile.mkstemp(prefix="conveyor-job-", suffix=".sh")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(script)
        # `bash -c SCRIPT` becomes `bash FILE`: the same options, the script read from the file.
        return [*self._executor._shell[:-1], self._script_file]

    def _remove_script_file(self) -> None:
        if self._script_file is not None:
            with contextlib.suppress(OSError):
                Path(self._script_file).unlink()
            self._script_file = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def cancel(self) -> None:
        if self._canceled_at is None:
            self._canceled_at = time.monotonic()
        if self._result is None:
            self._signal(signal.SIGTERM)

    def wait(self) -> ExecResult:
        with selectors.DefaultSelector() as selector:
            self.attach(selector)
            while (result := self.advance(())) is None:
                for key, _ in selector.select(self._timeout()):
                    self.advance((key.fd,))
            return result

    def attach(self, selector: selectors.BaseSelector) -> None:
        if self._result is not None:
            return
        self._selector = selector
        selector.register(self._out_fd, selectors.EVENT_READ, self)
        if self._pidfd is not None:
            selector.register(self._pidfd, selectors.EVENT_READ, self)

    def wake_at(self) -> float | None:
        """When `advance` has a deadline or a poll to check, with nothing readable."""
        if self._result is not None:
            return None
        # Each time is fixed until `advance` acts on it: a loop may ask again after it slept.
        times = [self._kill_at]
        if self._stopping is None:
            times += [self._deadline, self._canceled_at]
        if self._exited_at is None and self._pidfd is None:
            times.append(self._next_poll)
        if self._exited_at is not None and self._out_fd >= 0:
            times.append(self._exited_at + self._executor.orphan_grace_s)
        return min((t for t in times if t is not None), default=None)

    def _timeout(self) -> float:
        # Bounded, so that a cancel from another thread is acted on within that time.
        wake = self.wake_at()
        if wake is None:
            return _CHECK_S
        return min(_CHECK_S, max(0.0, wake - time.monotonic()))

    def advance(self, ready: Iterable[int]) -> ExecResult | None:
        if self._result is not None:
            return self._result
        for fd in ready:
            if fd == self._pidfd:
                self._exited_at = time.monotonic()
                self._close_pidfd()
            elif fd == self._out_fd:
                self._read()
        self._check(time.monotonic())
        return self._result

    def _read(self) -> None:
        try:
            chunk = os.read(self._out_fd, _READ)
        except BlockingIOError:
            return
        if chunk:
            self._output(chunk)
        else:
            self._close_output()

    def _check(self, now: float) -> None:
        """Act on what time alone decides: exit by polling, timeout, cancel, orphans, kill."""
        proc = self._proc
        assert proc is not None
        if self._exited_at is None and self._pidfd is None:
            if proc.poll() is not None:
                self._exited_at = now
            else:
                self._next_poll = now + self._poll_every
                self._poll_every = min(self._poll_every * 2, _POLL_MAX_S)
        if self._stopping is None:
            if self._deadline is not None and now >= self._deadline:
                self._stop("timed_out", now)
            elif self._canceled_at is not None:
                self._stop("canceled", now)
        if self._exited_at is None:
            if self._kill_at is not None and now >= self._kill_at:
                self._signal(signal.SIGKILL)
                self._kill_at = None
            return
        if self._out_fd >= 0 and self._stopping is not None:
            self._drain()
        elif self._out_fd >= 0 and now >= self._exited_at + self._executor.orphan_grace_s:
            # Processes the script left behind hold the output; they go with the group.
            self._close_output()
        if self._out_fd < 0:
            self._finish(proc)

    def _drain(self) -> None:
        """Keep what a stopped script wrote before it exited, without waiting for more."""
        os.set_blocking(self._out_fd, False)
        for _ in range(_DRAIN_READS):
            try:
                chunk = os.read(self._out_fd, _READ)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._output(chunk)
        self._close_output()

    def abandon(self) -> None:
        """Kill the attempt's processes at once, reap it and release its descriptors.

        For an attempt its caller gives up on after a fault of its own: no
        result follows, and nothing of the job is left running or open.
        """
        if self._result is not None:
            return
        self._canceled_at = self._canceled_at or time.monotonic()
        self._stopping = "canceled"
        self._signal(signal.SIGKILL)
        self._close_output()
        assert self._proc is not None
        self._finish(self._proc)

    def _stop(self, why: Literal["timed_out", "canceled"], now: float) -> None:
        """SIGTERM the job's group; SIGKILL follows after the grace period."""
        self._stopping = why
        self._signal(signal.SIGTERM)
        self._kill_at = now + self._executor.kill_grace_s

    def _finish(self, proc: _Process) -> None:
        exit_code = proc.wait()  # the script has exited: this only reaps it
        # Whatever the script left behind in its group goes with it.
        self._signal(signal.SIGKILL)
        self._close_pidfd()
        self._remove_script_file()
        duration = time.monotonic() - self._started
        if self._stopping == "timed_out":
            detail = f"timed out after {self._request.timeout_s:g}s"
            self._result = ExecResult("timed_out", None, duration, detail)
        elif self._canceled_at is not None:
            self._result = ExecResult("canceled", None, duration, "canceled")
        else:
            self._result = ExecResult("exited", exit_code, duration)

    def _close_output(self) -> None:
        if self._out_fd < 0:
            return
        if self._selector is not None:
            self._selector.unregister(self._out_fd)
        assert self._proc is not None and self._proc.stdout is not None
        self._proc.stdout.close()
        self._out_fd = -1

    def _close_pidfd(self) -> None:
        if self._pidfd is None:
            return
        if self._selector is not None:
            self._selector.unregister(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


class _Process(Protocol):
    """A job's process as this module uses it: a `Popen`, or one `_spawn_here` started."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


# Processes are started with posix_spawn on Linux, where /proc lists the descriptors a
# started process must not inherit (see _no_inherited_descriptors).
_SPAWN_HERE = sys.platform == "linux" and hasattr(os, "posix_spawn")
_DESCRIPTORS = "/proc/self/fd"
# Processes of executions dropped before they were reaped: reaped at the next start,
# as Popen does for its own.
_unreaped: list[int] = []


def _here() -> str | None:
    """This process's directory; None once it was removed (jobs then start through Popen)."""
    try:
        return os.getcwd()  # noqa: PTH109 - a Path for each start would cost more than it saves
    except OSError:
        return None


class _Spawned:
    """A process `_spawn_here` started: as much of `Popen` as a LocalExecution uses."""

    def __init__(self, pid: int, stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reaped(os.WNOHANG)
        return self.returncode

    def __del__(self) -> None:
        # Dropped before it was reaped (its owner gave up without `wait()`): reaped later.
        with contextlib.suppress(Exception):
            if self.poll() is None:
                _unreaped.append(self.pid)

    def wait(self) -> int:
        while self.returncode is None:
            self._reaped(0)
        return self.returncode

    def _reaped(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:  # reaped by the system (SIGCHLD ignored): as Popen says
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def _spawn_here(argv: list[str], env: Mapping[str, str], path: str) -> _Spawned:
    """Start `path` as `Popen` would, in this process's directory, with one system call.

    As `Popen(stdin=DEVNULL, stdout=PIPE, stderr=STDOUT, start_new_session=True)`:
    a new session, SIGPIPE and SIGXFSZ back to their defaults (Python ignores
    them), and no descriptor but the three standard ones. `Popen` closes the
    others in the new process; here each is marked close-on-exec, as Python
    opens all of its own (PEP 446): each time, for any this process was given
    or made inheritable since (about 30 us).
    """
    _reap_dropped()
    _no_inherited_descriptors()
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            path,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_DUP2, write_end, 2),
            ],
            setsid=True,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return _Spawned(pid, open(read_end, "rb", buffering=0))


def _no_inherited_descriptors() -> None:
    """Mark every descriptor above the standard three close-on-exec.

    Python opens its own so; one this process was given by whatever started
    it (a CI runner's, a make jobserver's), or one made inheritable since
    (`os.dup2`, a C library), would otherwise reach the job.
    """
    with contextlib.suppress(OSError):
        for name in os.listdir(_DESCRIPTORS):  # noqa: PTH208 - names, not paths
            fd = int(name)
            if fd > 2:
                with contextlib.suppress(OSError):  # the listing's own, closed by now
                    if os.get_inheritable(fd):
                        os.set_inheritable(fd, False)


def _reap_dropped() -> None:
    """Reap the processes of dropped executions that have exited since."""
    for pid in list(_unreaped):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere
            done = pid
        if done:
            with contextlib.suppress(ValueError):  # another thread took it first
                _unreaped.remove(pid)


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _environment(process: Path, deadline: float) -> bytes:
    """The environment of the process at /proc/PID, read again while it is caught mid-exec.

    During an exec /proc shows a process with an empty environment, or none
    (ESRCH); one still running (not a kernel thread) is read again until
    `deadline` (the same rule as the local target's `procfs.environment`,
    which this layer may not import).
    """
    while True:
        try:
            environ = (process / "environ").read_bytes()
        except PermissionError:
            return b""
        except OSError:
            environ = b""
        if environ or time.monotonic() >= deadline:
            return environ
        try:
            fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] in ("Z", "X") or int(fields[6]) & _PF_KTHREAD:
                return environ
        except (OSError, IndexError, ValueError):
            return b""
        time.sleep(0.001)


def stop_orphaned_group(pgid: int, markers: Sequence[str]) -> bool:
    """SIGKILL process group `pgid` if a member's environment holds every marker.

    After the `conveyor` process that ran a job was killed, the job's
    processes may live on. A group id alone is no proof (ids are reused), so
    a member must carry the job's own variables, such as
    `CONVEYOR_RUN_ID=7`. Linux only (reads /proc); elsewhere nothing is stopped.
    """
    # Each marker whole, or as a starting bash shows it while it splits it in place.
    needles = [
        (whole, whole.replace(b"=", b"\0", 1))
        for whole in (b"\0" + marker.encode() + b"\0" for marker in markers)
    ]
    proc = Path("/proc")
    if not needles or not proc.is_dir():
        return False
    deadline = time.monotonic() + _EXEC_WAIT_S  # for the whole scan, however many members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The fields after the command name (which may hold spaces) follow its ')'.
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp != pgid:
                continue
        except (OSError, ValueError, IndexError):
            continue
        environ = b"\0" + _environment(entry, deadline) + b"\0"
        if all(whole in environ or split in environ for whole, split in needles):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            return True
    return False
