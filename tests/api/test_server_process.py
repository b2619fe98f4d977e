"""The real `conveyor server` process: refusing an unmigrated database, serving runs, tokens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .conftest import free_port

SPEC = """\
version: 1
jobs:
  build:
    run: mkdir -p out && echo hello > out/app.txt && echo built
    outputs: [out/app.txt]
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "GIT_"))}
    env.update(extra)
    return env


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def server(cwd: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "server", "--port", str(port)],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A workspace with one successful run that stored an artifact."""
    (tmp_path / "conveyor.yaml").write_text(SPEC)
    assert cli(tmp_path, "db", "upgrade").returncode == 0
    ran = cli(tmp_path, "run")
    assert ran.returncode == 0, ran.stderr
    return tmp_path


def test_the_server_refuses_an_unmigrated_database_with_exit_3(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "server", "--port", str(free_port())],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert "has no Conveyor schema" in done.stderr
    assert "conveyor db upgrade" in done.stderr


def test_a_first_admin_token_made_on_the_host_reads_runs_as_show_does(built: Path) -> None:
    made = cli(built, "token", "create", "--role", "admin", "--name", "root", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    shown = json.loads(cli(built, "show", "latest", "--json").stdout)
    with server(built, CONVEYOR_HOME=str(built / ".conveyor")) as (url, proc):
        auth = {"Authorization": f"Bearer {token}"}
        run = httpx.get(f"{url}/api/v1/runs/{shown['id']}", headers=auth)
        assert run.json() == shown
        listed = httpx.get(f"{url}/api/v1/runs?status=success&limit=1", headers=auth).json()
        assert [r["id"] for r in listed["runs"]] == [shown["id"]]
        log = httpx.get(f"{url}/api/v1/runs/{shown['id']}/jobs/build/log", headers=auth)
        assert log.headers["content-type"].startswith("text/plain")
        assert "built" in log.text
        digest = shown["jobs"][0]["outputs"][0]["digest"]
        assert httpx.get(f"{url}/api/v1/artifacts/{digest}", headers=auth).text == "hello\n"
        bad = httpx.get(f"{url}/api/v1/artifacts/..%2F..%2Fconveyor.db", headers=auth)
        assert bad.status_code in (400, 404)
        assert httpx.get(f"{url}/api/v1/artifacts/sha256:zz", headers=auth).status_code == 400
        missing = "sha256:" + "0" * 64
        assert httpx.get(f"{url}/api/v1/artifacts/{missing}", headers=auth).status_code == 404
        events = httpx.get(f"{url}/api/v1/events?subject=run/{shown['id']}&limit=1", headers=auth)
        assert events.json()["events"][0]["subject"].startswith(f"run/{shown['id']}")
        assert events.json()["next_cursor"] is not None
        bad_status = httpx.get(f"{url}/api/v1/runs?status=great", headers=auth)
        assert bad_status.status_code == 400
        assert "success" in bad_status.json()["detail"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    # uvicorn drains requests and runs the lifespan's shutdown, then exits by the signal.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("route") == "/api/v1/runs/{run_id}" for line in lines)
    assert token not in err


def test_token_commands_go_through_the_server_when_it_is_named(built: Path) -> None:
    admin = json.loads(cli(built, "token", "create", "--role", "admin", "--json").stdout)["token"]
    with server(built, CONVEYOR_HOME=str(built / ".conveyor")) as (url, _):
        remote = {"CONVEYOR_SERVER": url, "CONVEYOR_TOKEN": admin}
        made = cli(built, "token", "create", "--role", "viewer", "--name", "v", "--json", **remote)
        assert made.returncode == 0, made.stderr
        viewer = json.loads(made.stdout)
        assert viewer["role"] == "viewer"
        as_viewer = {"CONVEYOR_SERVER": url, "CONVEYOR_TOKEN": viewer["token"]}
        refused = cli(built, "token", "create", "--role", "admin", **as_viewer)
        assert refused.returncode == 1
        assert "viewer may not tokens.create" in refused.stderr
        bad_role = cli(built, "token", "create", "--role", "root", **remote)
        assert bad_role.returncode == 2
        assert "release-manager" in bad_role.stderr
        revoked = cli(built, "token", "revoke", str(viewer["id"]), **remote)
        assert revoked.returncode == 0, revoked.stderr
        after = cli(built, "token", "list", "--json", **as_viewer)
        assert after.returncode == 2
        assert "unknown, revoked or expired" in after.stderr
        events = cli(built, "audit", "verify")
        assert events.returncode == 0, events.stderr


def test_token_create_on_the_host_refuses_an_unknown_role_and_an_unmigrated_database(
    tmp_path: Path,
) -> None:
    unmigrated = cli(tmp_path, "token", "create", "--role", "admin")
    assert unmigrated.returncode == 3
    assert "conveyor db upgrade" in unmigrated.stderr
    assert cli(tmp_path, "db", "upgrade").returncode == 0
    bad = cli(tmp_path, "token", "create", "--role", "root")
    assert bad.returncode == 2
    assert "use one of viewer, developer, approver, release-manager, admin" in bad.stderr
    expires = cli(tmp_path, "token", "create", "--role", "viewer", "--expires", "soon")
    assert expires.returncode == 2
    assert "'soon' is not a lifetime" in expires.stderr


@pytest.mark.postgres
def test_two_server_processes_on_one_postgresql_serve_the_same_data(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    db = {"CONVEYOR_DATABASE_URL": postgres_schema_url}
    assert cli(tmp_path, "db", "upgrade", **db).returncode == 0
    admin = json.loads(cli(tmp_path, "token", "create", "--role", "admin", "--json", **db).stdout)
    auth = {"Authorization": f"Bearer {admin['token']}"}
    with server(tmp_path, **db) as (one, _), server(tmp_path, **db) as (two, _):
        made = httpx.post(f"{one}/api/v1/tokens", json={"role": "viewer"}, headers=auth)
        assert made.status_code == 201
        viewer = {"Authorization": f"Bearer {made.json()['token']}"}
        assert httpx.get(f"{two}/api/v1/whoami", headers=viewer).json()["role"] == "viewer"
        revoked = httpx.delete(f"{two}/api/v1/tokens/{made.json()['id']}", headers=auth)
        assert revoked.status_code == 200
        assert httpx.get(f"{one}/api/v1/whoami", headers=viewer).status_code == 401
        seen = [httpx.get(f"{u}/api/v1/events", headers=auth).json() for u in (one, two)]
        assert seen[0] == seen[1]
