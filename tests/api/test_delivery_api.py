"""Releases, promotions and approvals served by a real `conveyor server` on its workspace.

The workspace builds a tiny HTTP service (the one the end-to-end tests
deploy); a release of its run is made through the API, promoted into dev by
a developer's token and carried out by the server's own reconcile loop, then
into prod, where only a second person's approver token may approve it. Every
instance a test started is killed afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.instances import delivering, get, kill_instances
from e2e.instances import server as service_source

from .test_server_process import cli, server

SPEC = delivering(
    """\
    - name: dev
    - name: prod
      requires:
        after: dev
        approvals: {count: 1, roles: [approver]}
""",
    health="{http: /healthz, timeout: 1s, within: 10s}",
)
AUTHOR = "author@example.com"
TOKENS = {
    "rm@example.com": "release-manager",
    "dev@example.com": "developer",
    AUTHOR: "approver",
    "viewer@example.com": "viewer",
    "lead@example.com": "approver",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment naming the database: none (the workspace's SQLite) or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"CONVEYOR_DATABASE_URL": request.getfixturevalue("postgres_schema_url")}


@pytest.fixture
def workspace(tmp_path: Path, database: dict[str, str]) -> Iterator[Path]:
    """A git workspace whose one commit is by AUTHOR, with one successful run; instances killed."""
    yield from _workspace(tmp_path / "ws", database)


@pytest.fixture
def local_workspace(tmp_path: Path) -> Iterator[Path]:
    """The same workspace on its own SQLite database."""
    yield from _workspace(tmp_path / "ws", {})


def _workspace(ws: Path, database: dict[str, str], spec: str = SPEC) -> Iterator[Path]:
    (ws / "app").mkdir(parents=True)
    (ws / "conveyor.yaml").write_text(spec)
    (ws / "app" / "server.py").write_text(service_source())
    (ws / ".gitignore").write_text("dist/\n.conveyor/\n")
    identity = ["-c", f"user.email={AUTHOR}", "-c", "user.name=An Author"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "feat: hi"]):
        subprocess.run(["git", *identity, *args], cwd=ws, check=True, capture_output=True)
    env = {**database, "PATH": _path()}
    assert cli(ws, "db", "upgrade", **env).returncode == 0
    ran = cli(ws, "run", **env)
    assert ran.returncode == 0, ran.stderr
    try:
        yield ws
    finally:
        kill_instances(ws / ".conveyor" / "targets" / "local")


def _path() -> str:
    """PATH with this interpreter first: the service's instances run `python`."""
    return f"{Path(sys.executable).parent}:/usr/bin:/bin"


def _tokens(ws: Path, database: dict[str, str]) -> dict[str, dict[str, str]]:
    """An Authorization header for each person of TOKENS, made on the host."""
    headers = {}
    for name, role in TOKENS.items():
        made = cli(ws, "token", "create", "--role", role, "--name", name, "--json", **database)
        assert made.returncode == 0, made.stderr
        headers[name] = {"Authorization": f"Bearer {json.loads(made.stdout)['token']}"}
    return headers


def _until(client: httpx.Client, path: str, auth: dict[str, str], state: str) -> dict[str, Any]:
    """Poll `path` until its `state` is `state` (30 s at most); the last answer."""
    deadline = time.monotonic() + 30
    while True:
        doc: dict[str, Any] = client.get(path, headers=auth).json()
        if doc["state"] == state or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def test_a_release_is_promoted_to_dev_by_a_developer_and_to_prod_by_a_second_approver(
    workspace: Path, database: dict[str, str]
) -> None:
    auth = _tokens(workspace, database)
    home = str(workspace / ".conveyor")
    with (
        server(workspace, CONVEYOR_HOME=home, PATH=_path(), **database) as (url, _),
        httpx.Client(base_url=f"{url}/api/v1", timeout=30) as api,
    ):
        made = api.post("/releases", json={"run": "latest"}, headers=auth["rm@example.com"])
        as_dev = auth["dev@example.com"]
        dev = api.post("/promotions", json=_to("dev"), headers=as_dev).json()
        dev_done = _until(api, f"/promotions/{dev['id']}", as_dev, "deployed")
        prod = api.post("/promotions", json=_to("prod"), headers=as_dev).json()
        refusals = {
            who: api.post(f"/promotions/{prod['id']}/approve", json={}, headers=auth[who])
            for who in (AUTHOR, "viewer@example.com")
        }
        # The requester approving under another token of the same name is the same person.
        same_name = _same_person_approver(workspace, database)
        self_approval = api.post(f"/promotions/{prod['id']}/approve", json={}, headers=same_name)
        untouched = api.get(f"/promotions/{prod['id']}", headers=as_dev).json()
        approved = api.post(
            f"/promotions/{prod['id']}/approve",
            json={"comment": "go"},
            headers=auth["lead@example.com"],
        )
        prod_done = _until(api, f"/promotions/{prod['id']}", as_dev, "deployed")
        why = api.get("/why", params={**_to("prod")}, headers=auth["viewer@example.com"])
        status = api.get("/status", headers=auth["viewer@example.com"]).json()
        events = api.get(
            "/events", params={"limit": 1000}, headers=auth["viewer@example.com"]
        ).json()

    assert made.status_code == 201, made.text
    release = made.json()["release"]
    assert (release["version"], release["created_by"]) == ("0.1.0", "rm@example.com")
    assert dev["requested_by"] == "dev@example.com"
    assert dev_done["state"] == "deployed", dev_done
    assert prod["state"] == "blocked"
    assert refusals["viewer@example.com"].status_code == 403
    assert "viewer" in refusals["viewer@example.com"].json()["detail"]
    author = refusals[AUTHOR]
    assert author.status_code == 403, author.text
    assert author.json()["type"] == "urn:conveyor:problem:policy-refusal"
    assert AUTHOR in author.json()["detail"]
    assert self_approval.status_code == 403, self_approval.text
    assert "requested" in self_approval.json()["detail"]
    assert untouched["state"] == "blocked" and untouched["approvals"] == []
    assert approved.status_code == 200, approved.text
    assert [a["by"] for a in approved.json()["approvals"]] == ["lead@example.com"]
    assert prod_done["state"] == "deployed", prod_done
    assert why.status_code == 200
    gates = {g["gate"]: g["outcome"] for g in why.json()["report"]["gates"]}
    assert gates["approvals"] == "passed" and gates["after"] == "passed"
    environments = {e["name"]: e for e in status["environments"]}
    for name in ("dev", "prod"):
        instances = environments[name]["instances"]
        assert [get(i["address"]) for i in instances] == [(200, "0.1.0")], name
    kinds = {(e["kind"], e["actor"]) for e in events["events"]}
    assert ("release.created", "rm@example.com") in kinds, kinds
    assert ("promotion.requested", "dev@example.com") in kinds
    assert {("approval.refused", AUTHOR), ("approval.refused", "dev@example.com")} <= kinds
    assert ("approval.granted", "lead@example.com") in kinds


def test_bad_promotion_requests_name_the_field_and_record_nothing(local_workspace: Path) -> None:
    auth = _tokens(local_workspace, {})
    home = str(local_workspace / ".conveyor")
    with (
        server(
            local_workspace,
            CONVEYOR_HOME=home,
            PATH=_path(),
        ) as (url, _),
        httpx.Client(base_url=f"{url}/api/v1", timeout=30) as api,
    ):
        as_dev = auth["dev@example.com"]
        by_dev = api.post("/releases", json={"run": "latest"}, headers=as_dev)
        api.post("/releases", json={"run": "latest"}, headers=auth["rm@example.com"])
        no_env = api.post("/promotions", json=_to("qa"), headers=as_dev)
        no_version = api.post(
            "/promotions", json={**_to("dev"), "version": "9.9.9"}, headers=as_dev
        )
        missing = api.post("/promotions", json={"service": "hello"}, headers=as_dev)
        nobody = api.post("/promotions/99/approve", json={}, headers=auth["lead@example.com"])
        listed = api.get("/promotions", headers=as_dev).json()

    assert by_dev.status_code == 403
    assert "releases.create" in by_dev.json()["detail"]
    assert no_env.status_code == 400, no_env.text
    assert "qa" in no_env.json()["detail"]
    assert no_version.status_code == 404, no_version.text
    assert "9.9.9" in no_version.json()["detail"]
    assert missing.status_code == 422
    assert "version" in missing.text
    assert nobody.status_code == 404
    assert listed["promotions"] == []


def _to(environment: str) -> dict[str, str]:
    return {"service": "hello", "version": "0.1.0", "environment": environment}


def _same_person_approver(ws: Path, database: dict[str, str]) -> dict[str, str]:
    made = cli(
        ws,
        "token",
        "create",
        "--role",
        "approver",
        "--name",
        "dev@example.com",
        "--json",
        **database,
    )
    assert made.returncode == 0, made.stderr
    return {"Authorization": f"Bearer {json.loads(made.stdout)['token']}"}


def test_release_promote_status_and_waiver_against_a_server_need_no_local_conveyor_yaml(
    local_workspace: Path, tmp_path: Path
) -> None:
    # The server's own pipeline decides; a laptop without the repository can still act.
    auth = {
        name: h["Authorization"].removeprefix("Bearer ")
        for name, h in _tokens(local_workspace, {}).items()
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (local_workspace / "policies").mkdir()
    (local_workspace / "policies" / "release.yaml").write_text(
        "version: 1\nrules:\n  - name: no-fridays\n    when: 'false'\n    deny: 'true'\n"
        "    message: not on a Friday\n"
    )
    home = str(local_workspace / ".conveyor")
    with server(local_workspace, CONVEYOR_HOME=home, PATH=_path()) as (url, _):

        def as_(name: str, *args: str) -> subprocess.CompletedProcess[str]:
            return cli(elsewhere, *args, CONVEYOR_SERVER=url, CONVEYOR_TOKEN=auth[name])

        released = as_("rm@example.com", "release", "create", "--run", "latest", "--json")
        promoted = as_(
            "dev@example.com", "promote", "hello", "0.1.0", "--to", "dev", "--no-wait", "--json"
        )
        status = as_("viewer@example.com", "status", "--json")
        waiver = as_(
            "dev@example.com",
            *("waiver", "create", "--rule", "no-fridays", "--env", "prod"),
            *("--expires", "1h", "--reason", "hotfix", "--json"),
        )
    unset = cli(elsewhere, "status")

    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["version"] == "0.1.0"
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["environment"] == "dev"
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["service"] == "hello"
    assert [e["name"] for e in doc["environments"]] == ["dev", "prod"]
    assert waiver.returncode == 0, waiver.stderr
    assert json.loads(waiver.stdout)["state"] == "pending"
    assert unset.returncode == 2  # without a server, the local conveyor.yaml is still needed
    assert "conveyor.yaml" in unset.stderr


def test_promote_approve_why_and_status_work_through_the_cli_against_a_server(
    local_workspace: Path,
) -> None:
    auth = {
        name: h["Authorization"].removeprefix("Bearer ")
        for name, h in _tokens(local_workspace, {}).items()
    }
    same_name = _same_person_approver(local_workspace, {})["Authorization"].removeprefix("Bearer ")
    home = str(local_workspace / ".conveyor")
    with server(
        local_workspace,
        CONVEYOR_HOME=home,
        PATH=_path(),
    ) as (url, _):

        def as_(token: str, *args: str) -> subprocess.CompletedProcess[str]:
            return cli(local_workspace, *args, CONVEYOR_SERVER=url, CONVEYOR_TOKEN=token)

        released = as_(auth["rm@example.com"], "release", "create", "--run", "latest", "--json")
        dev = as_(auth["dev@example.com"], "promote", "hello", "0.1.0", "--to", "dev", "--json")
        prod = as_(
            auth["dev@example.com"],
            "promote",
            "hello",
            "0.1.0",
            "--to",
            "prod",
            "--no-wait",
            "--json",
        )
        prod_id = str(json.loads(prod.stdout)["id"])
        self_approval = as_(same_name, "approve", prod_id)
        by_viewer = as_(auth["viewer@example.com"], "approve", prod_id)
        no_such = as_(auth["lead@example.com"], "approve", "999")
        approved = as_(auth["lead@example.com"], "approve", prod_id, "-m", "go", "--json")
        why = as_(auth["viewer@example.com"], "why", "hello", "0.1.0", "--env", "prod", "--json")
        deadline = time.monotonic() + 30
        while True:
            status = as_(auth["viewer@example.com"], "status", "--json")
            prod_env = {e["name"]: e for e in json.loads(status.stdout)["environments"]}["prod"]
            if prod_env["instances"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)

    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["created_by"] == "rm@example.com"
    assert dev.returncode == 0, dev.stderr
    assert json.loads(dev.stdout)["state"] == "deployed"
    assert prod.returncode == 0, prod.stderr
    assert json.loads(prod.stdout)["state"] == "blocked"
    assert self_approval.returncode == 1
    assert "requested" in self_approval.stderr
    assert by_viewer.returncode == 1
    assert "viewer" in by_viewer.stderr
    assert no_such.returncode == 2
    assert approved.returncode == 0, approved.stderr
    assert [a["by"] for a in json.loads(approved.stdout)["approvals"]] == ["lead@example.com"]
    assert why.returncode == 0, why.stderr
    gates = {g["gate"]: g["outcome"] for g in json.loads(why.stdout)["gates"]}
    assert gates["approvals"] == "passed"
    assert status.returncode == 0, status.stderr
    assert [get(i["address"])[1] for i in prod_env["instances"]] == ["0.1.0"]
