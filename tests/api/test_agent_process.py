"""Real `conveyor server` and `conveyor agent` processes: runs, lost agents, stops and restarts.

Work is submitted with the dispatch service straight on the server's database
(as the run-submission endpoint will). The server runs with a short lease so a
killed agent's job comes back within seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.core.clock import SystemClock
from conveyor.core.records import RunId
from conveyor.core.secrets import format_key
from conveyor.engine.dispatch import DispatchService
from conveyor.engine.dispatch_rules import Source, Submission
from conveyor.engine.plan import make_plan
from conveyor.engine.projects import ProjectService
from conveyor.engine.secrets import SecretService
from conveyor.spec.loader import parse_pipeline
from conveyor.store import attempts
from conveyor.store import events as event_log
from conveyor.store import runs as run_store
from conveyor.store.db import Database, open_database
from conveyor.triggers.signature import github_signature
from integration.engine.queue_world import new_run
from integration.engine.test_remote_secrets import stored_anywhere

from .conftest import BACKENDS, free_port
from .test_commit_runs import FIXTURES, HOOK_SECRET, Repository
from .test_server_process import _env, cli


class Plant:
    """A server's directory, its database, a runner token, and the processes started."""

    def __init__(self, root: Path, database_url: str | None = None) -> None:
        self.root = root
        self.url_db = database_url or f"sqlite:///{root / '.conveyor' / 'conveyor.db'}"
        self.env = {"CONVEYOR_DATABASE_URL": database_url} if database_url else {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        (root / "conveyor.yaml").write_text("version: 1\njobs:\n  a: {run: 'true'}\n")
        (root / "src").mkdir()
        (root / "src" / "README").write_text("the sources\n")
        assert cli(root, "db", "upgrade", **self.env).returncode == 0
        made = self.cli("token", "create", "--role", "runner", "--name", "pool", "--json")
        assert made.returncode == 0, made.stderr
        self.token = json.loads(made.stdout)["token"]
        self.db: Database = open_database(self.url_db)

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return cli(self.root, *args, **self.env, **env)

    def server(self, lease: str = "2s") -> subprocess.Popen[bytes]:
        with (self.root / f"server-{len(self.procs)}.log").open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "server", "--port", str(self.port)],
                cwd=self.root,
                env=_env(CONVEYOR_LEASE=lease, **self.env),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.procs.append(proc)
        wait_for(lambda: _healthy(self.url), 20, "the server did not start")
        return proc

    def agent(self, name: str) -> subprocess.Popen[bytes]:
        with (self.root / f"agent-{name}.log").open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "agent", "--server", self.url, "--name", name],
                cwd=self.root,
                env=_env(CONVEYOR_TOKEN=self.token, **self.env),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.procs.append(proc)
        return proc

    def agent_log(self, name: str) -> str:
        return (self.root / f"agent-{name}.log").read_text()

    def submit(self, spec: str, **env: str) -> RunId:
        pipeline = parse_pipeline(textwrap.dedent(spec))
        plan = make_plan(pipeline, (), lambda _job: None)
        service = DispatchService(db=self.db, clock=SystemClock())
        return service.submit(
            Submission(
                run=new_run(spec_digest=pipeline.digest, created_at=time.time()),
                plan=plan,
                source=Source(path=str(self.root / "src")),
                env=env,
            )
        )

    def status(self, run: RunId) -> str:
        return run_store.get_run(self.db, run_id=run).status

    def finished(self, run: RunId, timeout_s: float = 60) -> str:
        wait_for(lambda: self.status(run) != "running", timeout_s, f"run {run} did not finish")
        return self.status(run)

    def attempts(self, run: RunId) -> list[tuple[str, str | None]]:
        """(status, agent name) of every attempt, oldest first."""
        with self.db.read() as tx:
            found = attempts.attempts_of(tx, run)
            names = dict(tx.execute("SELECT id, name FROM agents"))
        return [(a.status, names.get(a.agent_id)) for a in found]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.db.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    """A server's directory on SQLite."""
    made = Plant(tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


@pytest.fixture(params=BACKENDS)
def any_plant(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Plant]:
    """A server's directory on SQLite, or on a PostgreSQL schema of its own."""
    url = request.getfixturevalue("postgres_schema_url") if request.param == "postgresql" else None
    made = Plant(tmp_path, url)
    try:
        yield made
    finally:
        made.stop_all()


SECRET = "s3cr3t-for-a-real-agent"

# Runs long the first time (MARK absent), at once when tried again.
ONCE_SLOW = """\
version: 1
jobs:
  slow:
    run: 'if [ -e "$MARK" ]; then echo tried again; else touch "$MARK"; sleep 20; fi'
    retry: {max: 1}
"""


def test_two_agents_run_a_pipeline_and_its_outputs_reach_the_jobs_that_need_them(
    plant: Plant,
) -> None:
    plant.server()
    plant.agent("one"), plant.agent("two")
    run = plant.submit(
        """\
        version: 1
        jobs:
          build: {run: 'mkdir -p out && echo v1 > out/app && echo built', outputs: [out/app]}
          lint: {run: 'cat README'}
          test: {run: 'test "$(cat out/app)" = v1 && echo tested', needs: build}
        """
    )

    assert plant.finished(run) == "success"
    assert {status for status, _ in plant.attempts(run)} == {"success"}
    record = run_store.get_run(plant.db, run_id=run)
    build = next(job for job in record.jobs if job.name == "build")
    assert [o.path for o in build.outputs] == ["out/app"]
    viewer = json.loads(cli(plant.root, "token", "create", "--role", "viewer", "--json").stdout)
    log = httpx.get(
        f"{plant.url}/api/v1/runs/{run}/jobs/test/log",
        headers={"Authorization": f"Bearer {viewer['token']}"},
    )
    assert log.text == "tested\n"
    assert "claimed run" in plant.agent_log("one") + plant.agent_log("two")


def test_a_job_of_an_agent_killed_mid_job_is_retried_on_another_after_its_lease(
    any_plant: Plant, tmp_path: Path
) -> None:
    plant = any_plant
    plant.server(lease="2s")
    first = plant.agent("first")
    run = plant.submit(ONCE_SLOW, MARK=str(tmp_path / "mark"))
    wait_for((tmp_path / "mark").exists, 30, "the job did not start")
    plant.agent("second")

    first.send_signal(signal.SIGKILL)

    assert plant.finished(run, timeout_s=30) == "success"
    assert plant.attempts(run) == [("runner_lost", "first"), ("success", "second")]
    kinds = [e.kind for e in event_log.for_subject(plant.db, f"run/{run}/job/slow")]
    assert kinds == [
        "job.queued",
        "job.running",
        "job.runner_lost",
        "job.retrying",
        "job.running",
        "job.success",
    ]


def test_sigterm_on_an_agent_hands_its_job_back_and_exits_0(plant: Plant, tmp_path: Path) -> None:
    plant.server(lease="30s")
    first = plant.agent("first")
    run = plant.submit(ONCE_SLOW, MARK=str(tmp_path / "mark"))
    wait_for((tmp_path / "mark").exists, 30, "the job did not start")

    started = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 0
    assert time.monotonic() - started < 15  # far less than the lease: handed back, not lost
    assert plant.attempts(run) == [("handed_back", "first")]
    assert "handed back" in plant.agent_log("first")
    plant.agent("second")

    assert plant.finished(run) == "success"
    assert plant.attempts(run)[-1] == ("success", "second")


def test_a_server_killed_mid_run_and_restarted_loses_and_duplicates_no_event(
    any_plant: Plant,
) -> None:
    plant = any_plant
    server = plant.server(lease="10s")
    plant.agent("one"), plant.agent("two")
    run = plant.submit(
        """\
        version: 1
        jobs:
          a: {run: 'sleep 1; echo a', retry: {max: 1}}
          b: {run: 'sleep 1; echo b', needs: a, retry: {max: 1}}
          c: {run: 'sleep 1; echo c', needs: a, retry: {max: 1}}
          d: {run: 'sleep 1; echo d', needs: [b, c], retry: {max: 1}}
        """
    )
    # Killed while a job runs on an agent (a claim answered but never received would
    # only come back when its lease runs out: retried, and still no Event twice).
    wait_for(lambda: "claimed run" in plant.agent_log("one") + plant.agent_log("two"), 30, "idle")

    server.send_signal(signal.SIGKILL)
    server.wait(10)
    time.sleep(1.5)
    plant.server(lease="10s")

    assert plant.finished(run) == "success"
    verified = plant.cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    with plant.db.read() as tx:
        seqs = [int(row[0]) for row in tx.execute("SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    tried = plant.attempts(run)
    for job in "abcd":
        kinds = [e.kind for e in event_log.for_subject(plant.db, f"run/{run}/job/{job}")]
        assert kinds.count("job.queued") == 1, (job, kinds)
        assert kinds.count("job.success") == 1, (job, kinds)
    assert len([k for k in _kinds(plant, run) if k == "job.running"]) == len(tried)
    assert any("retrying in" in plant.agent_log(name) for name in ("one", "two"))


def _kinds(plant: Plant, run: RunId) -> list[str]:
    return [e.kind for e in event_log.for_subject(plant.db, f"run/{run}")]


# --- bad input -----------------------------------------------------------------


def test_an_agent_given_a_server_that_is_not_a_url_exits_2(tmp_path: Path) -> None:
    done = cli(tmp_path, "agent", "--server", "ci:8080", "--token", "cvy_x")
    assert done.returncode == 2
    assert "--server: 'ci:8080' is not a URL; write http://host:port" in done.stderr


def test_an_agent_without_a_token_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = cli(tmp_path, "agent", "--server", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert "CONVEYOR_TOKEN" in done.stderr


def test_an_agent_with_a_user_token_is_refused_with_exit_2(plant: Plant) -> None:
    plant.server()
    made = cli(plant.root, "token", "create", "--role", "developer", "--json")
    developer = json.loads(made.stdout)["token"]
    done = cli(plant.root, "agent", "--server", plant.url, CONVEYOR_TOKEN=developer)
    assert done.returncode == 2
    assert "the role developer may not agent.work" in done.stderr
    assert developer not in done.stderr


def test_a_server_given_a_lease_that_is_not_a_duration_exits_2(plant: Plant) -> None:
    done = cli(plant.root, "server", "--port", str(free_port()), CONVEYOR_LEASE="soon")
    assert done.returncode == 2
    assert "CONVEYOR_LEASE: 'soon' is not a duration" in done.stderr


# --- a push starts a Run of its commit; a real agent fetches it with git -------------


def test_a_signed_push_starts_a_run_that_a_real_agent_fetches_with_git_and_masks_its_secret(
    plant: Plant, tmp_path: Path
) -> None:
    key = format_key(bytes(range(32)))
    plant.env["CONVEYOR_SECRET_KEY"] = key
    environ = {"CONVEYOR_SECRET_KEY": key}
    repo = Repository(tmp_path / "shop")
    spec = (
        "version: 1\nsecrets: [DEPLOY_TOKEN]\njobs:\n"
        "  deploy: {run: 'cat VERSION; echo \"token is $DEPLOY_TOKEN\"'}\n"
    )
    sha = repo.commit({"conveyor.yaml": spec, "VERSION": "pushed\n"})
    clock = SystemClock()
    ProjectService(db=plant.db, clock=clock, environ=environ).create(
        "shop", repo.url, actor="root", webhook_secret=HOOK_SECRET
    )
    SecretService(db=plant.db, clock=clock, environ=environ).set(
        "DEPLOY_TOKEN", SECRET, actor="root", project="shop"
    )
    plant.server()
    plant.agent("one")

    answer = _signed_push(plant.url, repo, sha)

    assert answer.status_code == 202, answer.text
    run = RunId(answer.json()["run"])
    assert plant.finished(run) == "success"
    record = run_store.get_run(plant.db, run_id=run)
    assert (record.commit_sha, record.branch) == (sha, "main")
    viewer = json.loads(plant.cli("token", "create", "--role", "viewer", "--json").stdout)
    log = httpx.get(
        f"{plant.url}/api/v1/runs/{run}/jobs/deploy/log",
        headers={"Authorization": f"Bearer {viewer['token']}"},
    )
    assert log.text == "pushed\ntoken is ***\n"
    assert stored_anywhere(plant.db, SECRET) == []
    assert SECRET not in (plant.root / "server-0.log").read_text() + plant.agent_log("one")


def _signed_push(url: str, repo: Repository, commit: str) -> httpx.Response:
    data = json.loads((FIXTURES / "github_push.json").read_text())
    data["after"] = commit
    data["repository"]["html_url"] = repo.url
    body = json.dumps(data).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "delivery-1",
        "X-Hub-Signature-256": github_signature(HOOK_SECRET, body),
        "Content-Type": "application/json",
    }
    return httpx.post(f"{url}/api/v1/webhooks/github", content=body, headers=headers, timeout=30)
