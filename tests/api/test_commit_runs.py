"""Runs of a project's commit, fetched with git: from `POST /api/v1/runs` and from webhooks.

A real server (uvicorn in a thread, on SQLite or a PostgreSQL schema) whose
project's repository is a real git repository in a temp dir (a file URL),
and a runner in the same process that reaches the server over HTTP
(`HttpWorkSource` under an `AgentLoop`), as `conveyor agent` does: claims,
secrets, live logs and results all cross the wire.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from conveyor.artifacts.cas import ContentStore
from conveyor.control.agent_client import HttpWorkSource
from conveyor.control.agent_wire import claim_from_json, claim_to_json
from conveyor.core.clock import FrozenClock
from conveyor.core.records import RunId
from conveyor.core.secrets import format_key
from conveyor.engine.agent_loop import AgentLoop
from conveyor.engine.dispatch_rules import Claim, Source
from conveyor.executors.local import LocalExecutor
from conveyor.server.app import create_app
from conveyor.server.settings import Settings
from conveyor.server.state import ServerState
from conveyor.spec.loader import parse_pipeline
from conveyor.store import events as event_log
from conveyor.triggers.signature import github_signature
from integration.engine.test_remote_secrets import stored_anywhere

from .conftest import Issue, bearer

ENV = {"CONVEYOR_SECRET_KEY": format_key(bytes(range(32)))}
HOOK_SECRET = "0123456789abcdef-webhook-secret"
FIXTURES = Path(__file__).parents[1] / "unit" / "triggers" / "fixtures"
GOOD = """\
version: 1
jobs:
  build:
    run: cat VERSION && echo "branch $CONVEYOR_BRANCH"
"""
SECRET_VALUE = "s3cr3t-over-the-wire"


class Repository:
    """A real git repository in a temp dir, committed to by the test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self._git("init", "--quiet", "--initial-branch", "main")

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def commit(self, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            (self.root / name).write_text(text)
        self._git("add", "--all")
        self._git("-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-qm", "c")
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.root, capture_output=True, check=True)
        return done.stdout.decode()


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> FastAPI:
    """The server as `conveyor server` builds it: webhooks start Runs of commits."""
    return create_app(settings, clock=clock, environ=ENV)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "shop")


@pytest.fixture
def project(client: httpx.Client, issue: Issue, repo: Repository) -> str:
    body = {"name": "shop", "repository": repo.url, "webhook_secret": HOOK_SECRET}
    made = client.post("/api/v1/projects", json=body, headers=bearer(issue("admin")))
    assert made.status_code == 201, made.text
    return "shop"


@pytest.fixture
def agent(client: httpx.Client, issue: Issue, tmp_path: Path) -> Iterator[AgentLoop]:
    """A runner in this process that reaches the server over HTTP, as `conveyor agent` does."""
    work_dir = tmp_path / "agent"
    source = HttpWorkSource(
        server=str(client.base_url),
        token=issue("runner"),
        cas=ContentStore(work_dir / "cas"),
        work_dir=work_dir,
        wait_s=0.5,
    )
    source.register(name="runner-1", labels=[], concurrency=2)
    loop = AgentLoop(
        source=source,
        executor=LocalExecutor(),
        cas=ContentStore(work_dir / "cas"),
        work_dir=work_dir,
        concurrency=2,
        heartbeat_s=0.2,
        poll_s=0.05,
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    yield loop
    source.stop()
    loop.stop(hand_back=False)
    thread.join(30)
    source.close()
    assert not loop.errors


def _state(app: FastAPI) -> ServerState:
    state: ServerState = app.state.conveyor
    return state


def _run(client: httpx.Client, token: str, **body: object) -> httpx.Response:
    return client.post("/api/v1/runs", json=body, headers=bearer(token))


def _wait(client: httpx.Client, token: str, run_id: int) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc: dict[str, object] = client.get(f"/api/v1/runs/{run_id}", headers=bearer(token)).json()
        if doc["status"] != "running":
            return doc
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


def _log(client: httpx.Client, token: str, run_id: object, job: str) -> str:
    return client.get(f"/api/v1/runs/{run_id}/jobs/{job}/log", headers=bearer(token)).text


def _no_runs(client: httpx.Client, issue: Issue) -> bool:
    return client.get("/api/v1/runs", headers=bearer(issue("viewer"))).json()["runs"] == []


# --- POST /api/v1/runs with a project's commit -------------------------------------


@pytest.mark.usefixtures("project")
def test_a_run_of_a_projects_commit_is_fetched_with_git_and_run_by_an_agent(
    client: httpx.Client, issue: Issue, repo: Repository, agent: AgentLoop
) -> None:
    first = repo.commit({"conveyor.yaml": GOOD, "VERSION": "one\n"})
    repo.commit({"VERSION": "two\n"})  # the run must see the commit it names, not the tip
    token = issue("developer")

    made = _run(client, token, project="shop", commit=first, branch="release")

    assert made.status_code == 201, made.text
    done = _wait(client, token, made.json()["id"])
    assert done["status"] == "success"
    assert (done["commit"], done["branch"], done["project"]) == (first, "release", "shop")
    assert _log(client, token, done["id"], "build") == "one\nbranch release\n"


def test_a_pipeline_in_a_subdirectory_runs_its_jobs_there_as_conveyor_run_would(
    client: httpx.Client, issue: Issue, repo: Repository, agent: AgentLoop
) -> None:
    # `conveyor run` in services/api takes that directory as the workspace: the
    # jobs' files, outputs and the outputs they need are all relative to it.
    spec = """\
version: 1
jobs:
  build:
    run: cp VERSION built.txt
    outputs: [built.txt]
  use:
    needs: [build]
    run: cat built.txt && echo "in $(basename "$PWD") of $(basename "$CONVEYOR_WORKSPACE")"
"""
    commit = repo.commit(
        {"VERSION": "top\n", "services/api/conveyor.yaml": spec, "services/api/VERSION": "api\n"}
    )
    body = {"name": "api", "repository": repo.url, "spec_path": "services/api/conveyor.yaml"}
    made = client.post("/api/v1/projects", json=body, headers=bearer(issue("admin")))
    assert made.status_code == 201, made.text
    token = issue("developer")

    started = _run(client, token, project="api", commit=commit)

    assert started.status_code == 201, started.text
    done = _wait(client, token, started.json()["id"])
    assert done["status"] == "success", _log(client, token, done["id"], "use")
    assert _log(client, token, done["id"], "use") == "api\nin api of api\n"


@pytest.mark.usefixtures("project")
def test_the_branch_defaults_to_the_projects_default_branch(
    client: httpx.Client, issue: Issue, repo: Repository
) -> None:
    sha = repo.commit({"conveyor.yaml": GOOD, "VERSION": "one\n"})

    made = _run(client, issue("developer"), project="shop", commit=sha)

    assert made.status_code == 201, made.text
    assert made.json()["branch"] == "main"


@pytest.mark.usefixtures("project")
def test_a_commit_the_repository_lacks_is_400_naming_it_and_nothing_is_stored(
    client: httpx.Client, issue: Issue, repo: Repository
) -> None:
    repo.commit({"conveyor.yaml": GOOD, "VERSION": "one\n"})
    missing = "ab" * 20

    refused = _run(client, issue("developer"), project="shop", commit=missing, branch="main")

    assert refused.status_code == 400
    assert f"commit {missing} is not in repository {repo.url}" in refused.json()["detail"]
    assert _no_runs(client, issue)


@pytest.mark.usefixtures("project")
def test_a_short_commit_id_is_400_asking_for_the_full_one(
    client: httpx.Client, issue: Issue, repo: Repository
) -> None:
    sha = repo.commit({"conveyor.yaml": GOOD, "VERSION": "one\n"})

    refused = _run(client, issue("developer"), project="shop", commit=sha[:12])

    assert refused.status_code == 400
    assert "is not a full commit id; give all 40 hex digits" in refused.json()["detail"]
    assert _no_runs(client, issue)


@pytest.mark.usefixtures("project")
def test_a_bad_conveyor_yaml_at_the_commit_is_422_with_its_line_and_column(
    client: httpx.Client, issue: Issue, repo: Repository
) -> None:
    sha = repo.commit({"conveyor.yaml": "version: 1\njobs:\n  build:\n    rnu: make\n"})

    refused = _run(client, issue("developer"), project="shop", commit=sha)

    assert refused.status_code == 422
    assert "conveyor.yaml:4:5" in refused.json()["detail"]
    assert _no_runs(client, issue)


@pytest.mark.usefixtures("project")
def test_a_commit_without_a_conveyor_yaml_is_422_naming_the_file(
    client: httpx.Client, issue: Issue, repo: Repository
) -> None:
    sha = repo.commit({"README": "no pipeline here\n"})

    refused = _run(client, issue("developer"), project="shop", commit=sha)

    assert refused.status_code == 422
    assert f"commit {sha[:12]} of {repo.url} has no conveyor.yaml" in refused.json()["detail"]


def test_a_run_of_an_unknown_project_is_404(client: httpx.Client, issue: Issue) -> None:
    refused = _run(client, issue("developer"), project="nowhere", commit="ab" * 20)

    assert refused.status_code == 404
    assert "there is no project nowhere" in refused.json()["detail"]


def test_an_unknown_field_is_400_naming_it(client: httpx.Client, issue: Issue) -> None:
    refused = _run(client, issue("developer"), project="shop", commit="ab" * 20, brnach="main")

    assert refused.status_code == 400
    assert "brnach" in refused.json()["detail"]


@pytest.mark.usefixtures("project")
def test_a_viewer_cannot_start_a_run_of_a_commit(
    client: httpx.Client, issue: Issue, repo: Repository
) -> None:
    sha = repo.commit({"conveyor.yaml": GOOD, "VERSION": "one\n"})

    refused = _run(client, issue("viewer"), project="shop", commit=sha)

    assert refused.status_code == 403
    assert _no_runs(client, issue)


@pytest.mark.usefixtures("project")
def test_a_retry_of_a_commits_run_fetches_the_same_commit_and_carries_successes_as_cached(
    client: httpx.Client, issue: Issue, repo: Repository, agent: AgentLoop, tmp_path: Path
) -> None:
    mark = tmp_path / "ready"
    spec = (
        "version: 1\njobs:\n  build: {run: 'cat VERSION'}\n"
        f"  check: {{run: 'test -f {mark} && cat VERSION', needs: [build]}}\n"
    )
    sha = repo.commit({"conveyor.yaml": spec, "VERSION": "one\n"})
    repo.commit({"VERSION": "two\n"})
    token = issue("developer")
    first = _wait(client, token, _run(client, token, project="shop", commit=sha).json()["id"])
    assert first["status"] == "failed"
    mark.touch()

    made = client.post(f"/api/v1/runs/{first['id']}/retry", headers=bearer(token))

    assert made.status_code == 201, made.text
    second = _wait(client, token, made.json()["id"])
    assert second["status"] == "success"
    assert second["commit"] == sha
    assert {j["name"]: j["status"] for j in second["jobs"]} == {
        "build": "cached",
        "check": "success",
    }
    assert _log(client, token, second["id"], "check") == "one\n"


# --- webhooks start real Runs --------------------------------------------------------


def _push(client: httpx.Client, repo: Repository, commit: str, delivery: str) -> httpx.Response:
    data = json.loads((FIXTURES / "github_push.json").read_text())
    data["after"] = commit
    data["repository"]["html_url"] = repo.url
    body = json.dumps(data).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": github_signature(HOOK_SECRET, body),
        "Content-Type": "application/json",
    }
    return client.post("/api/v1/webhooks/github", content=body, headers=headers)


def _webhook_kinds(app: FastAPI) -> list[str]:
    return [e.kind for e in event_log.for_subject(_state(app).db, "project/shop/webhook")]


@pytest.mark.usefixtures("project")
def test_a_signed_github_push_starts_a_run_of_its_commit_that_an_agent_runs(
    client: httpx.Client, issue: Issue, repo: Repository, agent: AgentLoop, app: FastAPI
) -> None:
    sha = repo.commit({"conveyor.yaml": GOOD, "VERSION": "pushed\n"})

    answer = _push(client, repo, sha, "delivery-1")

    assert answer.status_code == 202, answer.text
    token = issue("viewer")
    done = _wait(client, token, answer.json()["run"])
    assert (done["status"], done["commit"], done["branch"]) == ("success", sha, "main")
    assert _log(client, token, done["id"], "build") == "pushed\nbranch main\n"
    assert _webhook_kinds(app) == ["webhook.received", "webhook.started"]


@pytest.mark.usefixtures("project")
def test_a_push_of_a_commit_the_repository_lacks_fails_is_recorded_and_may_be_redelivered(
    client: httpx.Client, issue: Issue, repo: Repository, app: FastAPI
) -> None:
    sha = repo.commit({"conveyor.yaml": GOOD, "VERSION": "one\n"})
    missing = "cd" * 20

    first = _push(client, repo, missing, "delivery-2")
    again = _push(client, repo, missing, "delivery-2")

    assert first.status_code == again.status_code == 400
    assert f"commit {missing} is not in repository" in first.json()["detail"]
    assert _webhook_kinds(app) == ["webhook.received", "webhook.failed"] * 2
    assert _no_runs(client, issue)
    assert _push(client, repo, sha, "delivery-3").status_code == 202


@pytest.mark.usefixtures("project")
def test_a_push_of_a_commit_with_a_bad_conveyor_yaml_is_422_and_recorded_as_failed(
    client: httpx.Client, issue: Issue, repo: Repository, app: FastAPI
) -> None:
    sha = repo.commit({"conveyor.yaml": "version: 1\njobs:\n  build:\n    rnu: make\n"})

    answer = _push(client, repo, sha, "delivery-4")

    assert answer.status_code == 422
    assert "conveyor.yaml:4:5" in answer.json()["detail"]
    failed = list(event_log.for_subject(_state(app).db, "project/shop/webhook"))
    assert [e.kind for e in failed] == ["webhook.received", "webhook.failed"]
    assert "conveyor.yaml:4:5" in str(failed[-1].data["error"])
    assert _no_runs(client, issue)


def test_a_push_for_a_repository_the_server_cannot_reach_is_503_and_may_be_redelivered(
    client: httpx.Client, issue: Issue, tmp_path: Path, app: FastAPI
) -> None:
    gone = Repository(tmp_path / "gone")
    body = {"name": "shop", "repository": gone.url, "webhook_secret": HOOK_SECRET}
    assert client.post("/api/v1/projects", json=body, headers=bearer(issue("admin"))).is_success
    (gone.root / ".git" / "HEAD").unlink()  # no longer a repository

    first = _push(client, gone, "ab" * 20, "delivery-5")
    again = _push(client, gone, "ab" * 20, "delivery-5")

    assert first.status_code == again.status_code == 503
    assert f"cannot fetch from repository {gone.url}" in first.json()["detail"]
    assert _webhook_kinds(app) == ["webhook.received", "webhook.failed"] * 2
    assert _no_runs(client, issue)


# --- secrets and live logs over the wire ---------------------------------------------


@pytest.mark.usefixtures("project")
def test_a_stored_secret_reaches_a_job_over_http_and_shows_masked_everywhere(
    client: httpx.Client,
    issue: Issue,
    repo: Repository,
    agent: AgentLoop,
    app: FastAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _state(app).secrets.set("DEPLOY_TOKEN", SECRET_VALUE, actor="ada", project="shop")
    spec = (
        "version: 1\nsecrets: [DEPLOY_TOKEN]\njobs:\n"
        "  deploy: {run: 'echo \"token is $DEPLOY_TOKEN\"'}\n"
    )
    sha = repo.commit({"conveyor.yaml": spec})
    token = issue("developer")

    done = _wait(client, token, _run(client, token, project="shop", commit=sha).json()["id"])

    assert done["status"] == "success", _log(client, token, done["id"], "use")
    assert _log(client, token, done["id"], "deploy") == "token is ***\n"
    assert stored_anywhere(_state(app).db, SECRET_VALUE) == []
    events = client.get("/api/v1/events", headers=bearer(issue("admin")), params={"limit": 500})
    assert events.status_code == 200 and SECRET_VALUE not in events.text
    assert SECRET_VALUE not in json.dumps(done)
    assert SECRET_VALUE not in caplog.text


@pytest.mark.usefixtures("project")
def test_the_log_stream_shows_a_remote_jobs_first_line_before_the_job_ends(
    client: httpx.Client, issue: Issue, repo: Repository, agent: AgentLoop
) -> None:
    spec = "version: 1\njobs:\n  slow: {run: 'echo first; sleep 2; echo second'}\n"
    sha = repo.commit({"conveyor.yaml": spec})
    token = issue("developer")
    run_id = _run(client, token, project="shop", commit=sha).json()["id"]

    seen: list[tuple[str, str]] = []
    url = f"/api/v1/runs/{run_id}/jobs/slow/log/stream"
    with client.stream("GET", url, headers=bearer(token), timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: ") and not seen:
                job = client.get(f"/api/v1/runs/{run_id}", headers=bearer(token)).json()
                seen.append((line, job["jobs"][0]["status"]))
            if line == "event: end":
                break

    assert seen == [("data: first", "running")]
    assert "second" in _log(client, token, run_id, "slow")


def test_a_claims_json_carries_its_git_source_and_secrets_both_ways() -> None:
    claim = Claim(
        attempt_id=7,
        number=1,
        run_id=RunId(3),
        job_run_id=11,
        job=parse_pipeline("version: 1\njobs:\n  a: {run: 'true'}\n").jobs[0],
        source=Source(git="file:///srv/git/shop.git", commit="ab" * 20, subdir="services/api"),
        env={"STAGE": "prod"},
        upstream=(),
        lease_until=100.0,
        queued_s=0.5,
        secrets={"DEPLOY_TOKEN": SECRET_VALUE},
        unset_secrets=("NOWHERE",),
    )

    assert claim_from_json(json.loads(json.dumps(claim_to_json(claim)))) == claim
