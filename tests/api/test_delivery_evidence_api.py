"""Release notes, change records and evidence bundles through a real `conveyor server`.

Each command prints against the server what it prints on the workspace's own
store; the bundle is built by the server, downloaded, and checked offline.
Both environments wait for an approval, so no promotion is ever deployed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.instances import delivering

from .test_delivery_api import _path, _tokens, _workspace
from .test_server_process import cli, server

SPEC = delivering(
    """\
    - name: dev
      requires:
        approvals: {count: 1, roles: [approver]}
    - name: prod
      change_record: true
      requires:
        after: dev
""",
)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    yield from _workspace(tmp_path / "ws", {}, SPEC)


def _without_generated(doc: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in doc.items() if k != "generated_at"}


def _markdown_without_generated(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("| Generated |"))


def test_notes_change_records_and_evidence_through_a_server_match_the_embedded_commands(
    workspace: Path, tmp_path: Path
) -> None:
    auth = {
        n: h["Authorization"].removeprefix("Bearer ") for n, h in _tokens(workspace, {}).items()
    }
    home = str(workspace / ".conveyor")
    bundle = tmp_path / "evidence.zip"
    with server(workspace, CONVEYOR_HOME=home, PATH=_path()) as (url, _):

        def as_(who: str, *args: str) -> subprocess.CompletedProcess[str]:
            return cli(workspace, *args, CONVEYOR_SERVER=url, CONVEYOR_TOKEN=auth[who])

        assert as_("rm@example.com", "release", "create", "--run", "latest").returncode == 0
        for env in ("dev", "prod"):
            promoted = as_("dev@example.com", "promote", "hello", "0.1.0", "--to", env, "--no-wait")
            assert promoted.returncode == 0, promoted.stderr
        commands = [
            ("release", "notes", "0.1.0"),
            ("release", "notes", "latest", "--json"),
            ("release", "notes", "0.1.0", "--changelog"),
            ("release", "notes", "0.1.0", "--changelog", "--json"),
        ]
        remote = {c: as_("viewer@example.com", *c) for c in commands}
        record_md = as_("viewer@example.com", "change-record", "2")
        record_json = as_("viewer@example.com", "change-record", "2", "--json")
        no_record = as_("viewer@example.com", "change-record", "1")
        no_promotion = as_("viewer@example.com", "change-record", "999")
        exported = as_(
            "viewer@example.com",
            "evidence",
            "export",
            "hello",
            "0.1.0",
            "-o",
            str(bundle),
            "--json",
        )
        events = httpx.get(
            f"{url}/api/v1/events",
            params={"limit": 1000},
            headers={"Authorization": f"Bearer {auth['viewer@example.com']}"},
        ).json()["events"]

    for command, done in remote.items():
        local = cli(workspace, *command)
        assert done.returncode == 0, done.stderr
        assert done.stdout == local.stdout, command
    local_md = cli(workspace, "change-record", "2").stdout
    local_json = json.loads(cli(workspace, "change-record", "2", "--json").stdout)
    assert record_md.returncode == 0, record_md.stderr
    assert _markdown_without_generated(record_md.stdout) == _markdown_without_generated(local_md)
    assert _without_generated(json.loads(record_json.stdout)) == _without_generated(local_json)
    assert no_record.returncode == 2
    assert "change_record: true" in no_record.stderr
    assert no_promotion.returncode == 2
    assert exported.returncode == 0, exported.stderr
    done = json.loads(exported.stdout)
    assert (done["version"], done["promotions"], done["change_records"]) == ("0.1.0", 2, 1)
    assert "change-records/2.md" in [f["path"] for f in done["files"]]
    assert [(e["kind"], e["actor"]) for e in events if e["kind"] == "evidence.exported"] == [
        ("evidence.exported", "viewer@example.com")
    ]
    assert not list(tmp_path.glob(".evidence.zip.*"))


def test_a_bundle_exported_through_a_server_verifies_offline_and_a_changed_byte_fails(
    workspace: Path, tmp_path: Path
) -> None:
    auth = {
        n: h["Authorization"].removeprefix("Bearer ") for n, h in _tokens(workspace, {}).items()
    }
    bundle = tmp_path / "x.zip"
    with server(workspace, CONVEYOR_HOME=str(workspace / ".conveyor"), PATH=_path()) as (url, _):
        remote = {"CONVEYOR_SERVER": url, "CONVEYOR_TOKEN": auth["rm@example.com"]}
        assert cli(workspace, "release", "create", "--run", "latest", **remote).returncode == 0
        exported = cli(
            workspace, "evidence", "export", "hello", "latest", "-o", str(bundle), **remote
        )
    assert exported.returncode == 0, exported.stderr
    assert f"wrote {bundle}" in exported.stdout
    # No server named, none running: the bundle alone is checked.
    intact = cli(tmp_path, "evidence", "verify", str(bundle))
    data = bytearray(bundle.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x01
    bundle.write_bytes(bytes(data))
    tampered = cli(tmp_path, "evidence", "verify", str(bundle))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "intact" in intact.stdout
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr


def test_bad_evidence_exports_through_a_server_exit_2_and_record_nothing(
    workspace: Path, tmp_path: Path
) -> None:
    auth = {
        n: h["Authorization"].removeprefix("Bearer ") for n, h in _tokens(workspace, {}).items()
    }
    viewer = auth["viewer@example.com"]
    with server(workspace, CONVEYOR_HOME=str(workspace / ".conveyor"), PATH=_path()) as (url, _):
        remote = {"CONVEYOR_SERVER": url, "CONVEYOR_TOKEN": auth["rm@example.com"]}
        assert cli(workspace, "release", "create", "--run", "latest", **remote).returncode == 0
        no_dir = cli(
            workspace,
            "evidence",
            "export",
            "hello",
            "0.1.0",
            "-o",
            str(tmp_path / "no" / "x.zip"),
            **remote,
        )
        no_version = cli(
            workspace,
            "evidence",
            "export",
            "hello",
            "9.9.9",
            "-o",
            str(tmp_path / "x.zip"),
            **remote,
        )
        no_token = httpx.post(f"{url}/api/v1/releases/hello/0.1.0/evidence")
        events = httpx.get(
            f"{url}/api/v1/events",
            params={"limit": 1000},
            headers={"Authorization": f"Bearer {viewer}"},
        ).json()["events"]
    assert no_dir.returncode == 2
    assert str(tmp_path / "no") in no_dir.stderr
    assert no_version.returncode == 2
    assert "9.9.9" in no_version.stderr
    assert no_token.status_code == 401
    assert [e for e in events if e["kind"] == "evidence.exported"] == []
    assert not list(tmp_path.glob("*.zip"))
