"""`conveyor secret` end to end: stored encrypted, given to jobs, masked, never on disk in clear."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from .support import Result, Workspace, WorkspaceFactory

VALUE = "s3cr3t-stored-value"
SPEC = """
version: 1
secrets: [DEPLOY_TOKEN]
jobs:
  deploy:
    inputs: []
    run: |
      echo "token is $DEPLOY_TOKEN"
      printf '%s' "$DEPLOY_TOKEN" > "$SIDE/seen"
"""


def piped(
    ws: Workspace, *args: str, stdin: str | bytes, env: dict[str, str] | None = None
) -> Result:
    """`conveyor ARGS` with `stdin` piped in (not a terminal)."""
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=ws.root,
        env={**ws.env, **(env or {})},
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def keygen(ws: Workspace) -> dict[str, str]:
    made = ws.cli("secret", "keygen", "--json")
    assert made.code == 0, made.err
    key: dict[str, str] = made.json()
    return key


def plain(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data
    return data


def files_holding(ws: Workspace, needle: bytes) -> list[str]:
    return [str(p) for p in sorted(ws.state.rglob("*")) if p.is_file() and needle in plain(p)]


def test_a_secret_set_on_stdin_reaches_the_job_masked_and_is_stored_nowhere_in_clear(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC)
    key = keygen(ws)
    env = {"CONVEYOR_SECRET_KEY": key["key"]}

    stored = piped(ws, "secret", "set", "DEPLOY_TOKEN", stdin=VALUE + "\n", env=env)
    listed = ws.cli("secret", "list", "--json")
    ran = ws.cli("run", env=env)
    log = ws.cli("logs", "1", "deploy")

    assert stored.code == 0, stored.err
    assert stored.out.strip() == f"stored DEPLOY_TOKEN for every project (key {key['key_id']})"
    assert listed.code == 0, listed.err
    [entry] = listed.json()["secrets"]
    assert (entry["name"], entry["project"], entry["key_id"]) == ("DEPLOY_TOKEN", "", key["key_id"])
    assert entry["updated_by"] == "e2e@example.com"
    assert VALUE not in listed.text
    assert ran.code == 0, ran.err
    assert "[deploy] token is ***" in ran.out.splitlines()
    assert VALUE not in ran.text
    assert "token is ***" in log.out
    assert ws.side_file("seen").read_text() == VALUE
    assert files_holding(ws, VALUE.encode()) == []
    kinds = [e["kind"] for e in ws.events()]
    assert "secret.set" in kinds
    assert VALUE not in json.dumps(ws.events())


def test_a_run_whose_stored_secret_cannot_be_opened_says_which_key_is_needed(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC)
    old, new = keygen(ws), keygen(ws)
    piped(ws, "secret", "set", "DEPLOY_TOKEN", stdin=VALUE, env={"CONVEYOR_SECRET_KEY": old["key"]})

    missing = ws.cli("run")
    wrong = ws.cli("run", env={"CONVEYOR_SECRET_KEY": new["key"]})

    assert missing.code == 2
    assert "CONVEYOR_SECRET_KEY is not set" in missing.err
    assert wrong.code == 2
    assert f"secret DEPLOY_TOKEN was encrypted with key {old['key_id']}" in wrong.err
    assert VALUE not in missing.text + wrong.text


def test_rotating_moves_every_secret_to_the_new_key(workspace: WorkspaceFactory) -> None:
    ws = workspace(SPEC)
    old, new = keygen(ws), keygen(ws)
    piped(ws, "secret", "set", "DEPLOY_TOKEN", stdin=VALUE, env={"CONVEYOR_SECRET_KEY": old["key"]})
    both = {"CONVEYOR_SECRET_KEY": new["key"], "CONVEYOR_SECRET_KEY_PREVIOUS": old["key"]}

    rotated = ws.cli("secret", "rotate", "--json", env=both)
    ran = ws.cli("run", env={"CONVEYOR_SECRET_KEY": new["key"]})

    assert rotated.code == 0, rotated.err
    assert rotated.json() == {"key_id": new["key_id"], "secrets": 1, "webhook_secrets": 0}
    assert ran.code == 0, ran.err
    assert ws.side_file("seen").read_text() == VALUE


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("deploy-token",), VALUE, "is not an environment variable name"),
        (("DEPLOY_TOKEN",), "\n", "the value for secret DEPLOY_TOKEN is empty"),
        (("DEPLOY_TOKEN",), b"caf\xe9", "the value for secret DEPLOY_TOKEN is not UTF-8 text"),
        (("DEPLOY_TOKEN", "--project", "My Shop"), VALUE, "project name 'My Shop' is not allowed"),
    ],
)
def test_bad_input_exits_2_with_the_fix_and_stores_nothing(
    workspace: WorkspaceFactory, args: tuple[str, ...], stdin: str | bytes, message: str
) -> None:
    ws = workspace(SPEC)
    env = {"CONVEYOR_SECRET_KEY": keygen(ws)["key"]}

    result = piped(ws, "secret", "set", *args, stdin=stdin, env=env)

    assert result.code == 2
    assert message in result.err
    assert ws.query("SELECT count(*) FROM secrets") == [(0,)]


def test_setting_without_a_key_exits_2_naming_the_variable(workspace: WorkspaceFactory) -> None:
    ws = workspace(SPEC)

    result = piped(ws, "secret", "set", "DEPLOY_TOKEN", stdin=VALUE)

    assert result.code == 2
    assert "CONVEYOR_SECRET_KEY is not set" in result.err
    assert "conveyor secret keygen" in result.err
    assert ws.query("SELECT count(*) FROM secrets") == [(0,)]


def test_removing_a_secret_records_it_and_a_missing_one_exits_2(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC)
    env = {"CONVEYOR_SECRET_KEY": keygen(ws)["key"]}
    piped(ws, "secret", "set", "DEPLOY_TOKEN", stdin=VALUE, env=env)

    removed = ws.cli("secret", "rm", "DEPLOY_TOKEN")
    again = ws.cli("secret", "rm", "DEPLOY_TOKEN")

    assert removed.code == 0, removed.err
    assert again.code == 2
    assert "there is no stored secret DEPLOY_TOKEN" in again.err
    assert ws.cli("secret", "list", "--json").json() == {"secrets": []}
    assert [e["kind"] for e in ws.events()][-1] == "secret.deleted"


def test_the_value_is_never_taken_from_the_command_line(workspace: WorkspaceFactory) -> None:
    ws = workspace(SPEC)

    result = ws.cli("secret", "set", "DEPLOY_TOKEN", VALUE)

    assert result.code == 2
    assert ws.query("SELECT count(*) FROM secrets") == [(0,)]
