"""`conveyor project` and `conveyor secret` on this host's database and through a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.core.secrets import format_key

from .test_server_process import SPEC, _env, cli, server

KEY = format_key(bytes(range(32)))
HOOK_SECRET = "0123456789abcdef-webhook-secret"
REPO = "https://github.com/acme/payments"


def cli_in(cwd: Path, stdin: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        env=_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "conveyor.yaml").write_text(SPEC)
    assert cli(tmp_path, "db", "upgrade").returncode == 0
    return tmp_path


def test_projects_are_created_listed_shown_and_removed_on_the_hosts_database(
    workspace: Path,
) -> None:
    made = cli_in(
        workspace,
        HOOK_SECRET + "\n",
        *("project", "create", "payments", "--repository", REPO, "--webhook-secret", "--json"),
        CONVEYOR_SECRET_KEY=KEY,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["webhook_secret"] == "set"
    listed = cli(workspace, "project", "list", "--json").stdout
    assert [p["name"] for p in json.loads(listed)["projects"]] == ["payments"]
    shown = cli(workspace, "project", "show", "payments")
    assert "repository: " + REPO in shown.stdout
    assert HOOK_SECRET not in made.stdout + listed + shown.stdout
    assert cli(workspace, "project", "rm", "payments").returncode == 0
    gone = cli(workspace, "project", "show", "payments")
    assert gone.returncode == 2
    assert "there is no project payments" in gone.stderr


def test_a_bad_project_name_is_exit_2_naming_the_rule(workspace: Path) -> None:
    done = cli(workspace, "project", "create", "Payments API", "--repository", REPO)
    assert done.returncode == 2
    assert "lower-case letters" in done.stderr
    assert json.loads(cli(workspace, "project", "list", "--json").stdout) == {"projects": []}


def test_project_and_secret_commands_go_through_the_server_when_it_is_set(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    made = cli(workspace, "token", "create", "--role", "admin", "--json")
    admin = json.loads(made.stdout)["token"]
    viewer = json.loads(cli(workspace, "token", "create", "--role", "viewer", "--json").stdout)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    home = str(workspace / ".conveyor")
    with server(workspace, CONVEYOR_HOME=home, CONVEYOR_SECRET_KEY=KEY) as (url, _):
        remote = {"CONVEYOR_SERVER": url, "CONVEYOR_TOKEN": admin}
        created = cli(elsewhere, "project", "create", "payments", "--repository", REPO, **remote)
        stored = cli_in(
            elsewhere,
            "v4lue-of-the-token\n",
            "secret",
            "set",
            "DEPLOY_TOKEN",
            "-p",
            "payments",
            "--json",
            **remote,
        )
        listed = cli(elsewhere, "secret", "list", "--json", **remote)
        refused = cli_in(
            elsewhere,
            "x\n",
            "secret",
            "set",
            "OTHER",
            CONVEYOR_SERVER=url,
            CONVEYOR_TOKEN=viewer["token"],
        )
        removed = cli(elsewhere, "secret", "rm", "DEPLOY_TOKEN", "-p", "payments", **remote)
        projects = cli(elsewhere, "project", "list", "--json", **remote)
    assert created.returncode == 0, created.stderr
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["project"] == "payments"
    secrets = json.loads(listed.stdout)["secrets"]
    assert [(s["name"], s["project"]) for s in secrets] == [("DEPLOY_TOKEN", "payments")]
    assert refused.returncode == 1
    assert "secrets.write" in refused.stderr
    assert removed.returncode == 0, removed.stderr
    assert [p["name"] for p in json.loads(projects.stdout)["projects"]] == ["payments"]
    assert not (elsewhere / ".conveyor").exists()
