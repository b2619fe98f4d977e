"""`conveyor evidence export` and `verify`, and `conveyor change-record`, end to end.

One workspace promotes a release through dev into prod (which keeps change
records) with an approval and exports its evidence; each test then checks a
copy of that bundle, intact or tampered with, from a directory with no
Conveyor state at all.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servers.webhook import Answer, WebhookServer

from .instances import server
from .support import Result, Workspace, WorkspaceFactory

SPEC = """
version: 1
jobs:
  build:
    inputs: ["src/**"]
    run: |
      mkdir -p dist
      cp src/shop/app.py dist/app.py
    outputs: ["dist/*.py"]
delivery:
  service: shop
  artifacts: ["dist/*.py"]
  run: python dist/app.py
  environments:
    - name: dev
    - name: prod
      change_record: true
      requires:
        after: dev
        approvals: {count: 1, roles: [approver]}
"""
FILES = {
    "src/shop/app.py": server(),
    ".gitignore": "dist/\n",
    "conveyor-roles.yaml": "version: 1\nroles:\n  lead@example.com: [approver]\n",
}
LEAD = {"CONVEYOR_ACTOR": "lead@example.com"}
TOKEN = "itsm-bearer-token-e2e"


def ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def released(ws: Workspace) -> Workspace:
    """`ws` in git with release 0.1.0 of `shop`, deployed to dev."""
    ws.spec(SPEC)
    for rel, text in FILES.items():
        ws.write(rel, text)
    ws.init_git()
    ok(ws.run())
    ok(ws.cli("release", "create", "--run", "latest"))
    ok(ws.cli("promote", "shop", "0.1.0", "--to", "dev"))
    return ws


@dataclass(frozen=True)
class Exported:
    """The workspace, its bundle, its public key and a genuine older tree head."""

    ws: Workspace
    bundle: Path
    key: Path
    older_head: bytes


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, migrated_state: Path) -> Iterator[Exported]:
    """Made once for the module: releasing, deploying and exporting take seconds."""
    base = tmp_path_factory.mktemp("evidence")
    (base / "ws").mkdir()
    (base / "side").mkdir()
    shutil.copytree(
        migrated_state, base / "ws" / ".conveyor", ignore=shutil.ignore_patterns("*.lock")
    )
    ws = Workspace(base / "ws", base / "side")
    try:
        released(ws)
        ok(ws.cli("promote", "shop", "0.1.0", "--to", "prod", "--no-wait"))
        ok(ws.cli("approve", "2", "--comment", "ship it", env=LEAD))
        older = ok(ws.cli("audit", "head", "--json")).out.encode()
        key = base / "audit.pub"
        key.write_text(ok(ws.cli("audit", "key")).out)
        bundle = base / "shop-0.1.0-evidence.zip"
        ok(ws.cli("evidence", "export", "shop", "0.1.0", "-o", str(bundle)))
        yield Exported(ws, bundle, key, older)
    finally:
        ws.cleanup()


def offline(exported: Exported, tmp_path: Path) -> tuple[Path, Path]:
    """A directory with no conveyor.yaml and no state, holding a copy of the bundle."""
    here = tmp_path / "auditor"
    here.mkdir()
    return here, Path(shutil.copy(exported.bundle, here / "evidence.zip"))


def verify(exported: Exported, here: Path, *args: str) -> Result:
    return exported.ws.cli("evidence", "verify", "evidence.zip", *args, cwd=here)


def rewrite(bundle: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """Change files of the zip as someone with an archive tool would (checksums stay valid)."""
    with zipfile.ZipFile(bundle) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    change(files)
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def event_lines(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in files["events.jsonl"].splitlines()]


def set_event_lines(files: dict[str, bytes], lines: list[dict[str, Any]]) -> None:
    files["events.jsonl"] = b"".join(json.dumps(line).encode() + b"\n" for line in lines)


# --- intact ----------------------------------------------------------------------------


def test_the_bundle_of_an_approved_promotion_verifies_offline_with_the_workspace_key(
    exported: Exported, tmp_path: Path
) -> None:
    here, _ = offline(exported, tmp_path)
    shutil.copy(exported.key, here / "audit.pub")

    text = verify(exported, here, "--key", "audit.pub")
    doc = verify(exported, here, "--key", "audit.pub", "--json").json()

    assert text.code == 0, text.out + text.err
    assert text.out.startswith("the evidence bundle is intact: shop 0.1.0, ")
    assert "checked with the key given: sha256:" in text.out
    assert doc["intact"] is True
    assert doc["first_problem"] is None
    assert doc["key"]["differs_from_bundle"] is False
    assert not (here / ".conveyor").exists()
    assert sorted(p.name for p in here.iterdir()) == ["audit.pub", "evidence.zip"]


def test_without_a_key_the_bundles_own_is_used_and_the_output_says_what_that_proves(
    exported: Exported, tmp_path: Path
) -> None:
    here, _ = offline(exported, tmp_path)

    result = verify(exported, here)

    assert result.code == 0, result.out
    assert "this shows the bundle is consistent, not who made it" in result.out


def test_the_bundle_holds_the_approval_the_change_record_and_a_report(
    exported: Exported,
) -> None:
    with zipfile.ZipFile(exported.bundle) as archive:
        events = [json.loads(line) for line in archive.read("events.jsonl").splitlines()]
        record = json.loads(archive.read("change-records/2.json"))
        report = archive.read("report.html").decode()

    kinds = [e["kind"] for e in events]
    assert {"release.created", "approval.granted", "change_record.created"} <= set(kinds)
    assert kinds[-1] == "evidence.exported"
    assert record["approvals"][0]["comment"] == "ship it"
    assert "Promotion 2 into prod" in report


# --- tampered --------------------------------------------------------------------------


def test_one_byte_changed_in_an_event_exits_1_naming_the_event(
    exported: Exported, tmp_path: Path
) -> None:
    here, bundle = offline(exported, tmp_path)

    def change(files: dict[str, bytes]) -> None:
        files["events.jsonl"] = files["events.jsonl"].replace(b"ship it", b"ship iT")

    rewrite(bundle, change)
    result = verify(exported, here)

    assert result.code == 1
    assert result.out.startswith("tampering found: event ")
    first = result.out.splitlines()[0]
    assert "(approval.granted release/shop/0.1.0/promotion/2)" in first
    assert first.endswith("its content does not match its hash")


def test_a_swapped_proof_exits_1_naming_the_proof(exported: Exported, tmp_path: Path) -> None:
    here, bundle = offline(exported, tmp_path)

    def change(files: dict[str, bytes]) -> None:
        lines = event_lines(files)
        lines[0]["proof"], lines[-1]["proof"] = lines[-1]["proof"], lines[0]["proof"]
        set_event_lines(files, lines)

    rewrite(bundle, change)
    doc = verify(exported, here, "--json")

    assert doc.code == 1
    assert doc.json()["first_problem"] == {
        "check": "proof",
        "where": "event 1 (run.started run/1)",
        "reason": "its inclusion proof does not lead to the signed tree head's root",
    }


def test_a_replaced_tree_head_exits_1_even_when_it_is_a_genuine_older_one(
    exported: Exported, tmp_path: Path
) -> None:
    here, bundle = offline(exported, tmp_path)

    def change(files: dict[str, bytes]) -> None:
        files["tree-head.json"] = exported.older_head

    rewrite(bundle, change)
    result = verify(exported, here)

    assert result.code == 1
    assert "its inclusion proof does not lead to the signed tree head's root" in result.out


def test_a_different_key_exits_1_and_says_the_keys_differ(
    exported: Exported, tmp_path: Path, workspace: WorkspaceFactory
) -> None:
    here, _ = offline(exported, tmp_path)
    other = workspace("version: 1\njobs:\n  a:\n    run: 'true'\n")
    (here / "theirs.pem").write_text(ok(other.cli("audit", "key")).out)

    result = verify(exported, here, "--key", "theirs.pem")

    assert result.code == 1
    assert result.out.startswith("note: the key given (sha256:")
    assert ") is not the key in the bundle (sha256:" in result.out
    assert "tampering found: tree-head.json: the tree head is not genuine: it was signed by" in (
        result.out
    )


def test_a_changed_report_with_a_rewritten_manifest_exits_1_on_the_signature(
    exported: Exported, tmp_path: Path
) -> None:
    here, bundle = offline(exported, tmp_path)

    def change(files: dict[str, bytes]) -> None:
        import hashlib

        files["report.html"] = b"<p>nothing to see</p>"
        manifest = json.loads(files["manifest.json"])
        for entry in manifest["files"]:
            if entry["path"] == "report.html":
                entry["sha256"] = "sha256:" + hashlib.sha256(files["report.html"]).hexdigest()
                entry["size"] = len(files["report.html"])
        files["manifest.json"] = json.dumps(manifest).encode()

    rewrite(bundle, change)
    result = verify(exported, here)

    assert result.code == 1
    assert result.out.startswith(
        "tampering found: signature.json: the manifest's signature does not hold"
    )


def test_a_file_that_is_not_a_bundle_exits_2(exported: Exported, tmp_path: Path) -> None:
    here = tmp_path / "auditor"
    here.mkdir()
    (here / "evidence.zip").write_text("not a zip")
    with zipfile.ZipFile(here / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")

    text = verify(exported, here)
    other = exported.ws.cli("evidence", "verify", "other.zip", cwd=here)
    missing = exported.ws.cli("evidence", "verify", "nowhere.zip", cwd=here)

    assert (text.code, other.code, missing.code) == (2, 2, 2)
    assert "evidence.zip is not a zip archive, so not an evidence bundle" in text.err
    assert "other.zip: it holds no manifest.json, so it is not an evidence bundle" in other.err
    assert "cannot read nowhere.zip" in missing.err


# --- change records --------------------------------------------------------------------


def test_a_change_record_prints_as_markdown_and_json_and_only_where_one_is_kept(
    exported: Exported,
) -> None:
    ws = exported.ws

    text = ok(ws.cli("change-record", "2"))
    doc = ok(ws.cli("change-record", "2", "--json")).json()
    none = ws.cli("change-record", "1")

    assert text.out.startswith("# Change record: Deploy shop 0.1.0 to prod\n")
    assert "- lead@example.com approved as approver at " in text.out
    assert doc["summary"]["requested_by"] == "e2e@example.com"
    assert doc["risk"]["level"] in ("low", "medium", "high")
    assert [g["gate"] for g in doc["gates"]][:3] == ["after", "soak", "approvals"]
    assert none.code == 2
    assert "promotion 1 into dev has no change record" in none.err


def test_a_change_record_is_posted_to_the_webhook_and_the_token_stays_out_of_the_log(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace())
    with WebhookServer() as server:
        env = {"CONVEYOR_CHANGE_WEBHOOK": server.url, "CONVEYOR_CHANGE_WEBHOOK_TOKEN": TOKEN}
        promoted = ws.cli("promote", "shop", "0.1.0", "--to", "prod", "--no-wait", env=env)

    assert promoted.code == 0, promoted.err
    (request,) = server.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.body)["title"] == "Deploy shop 0.1.0 to prod"
    events = ws.events()
    assert "change_record.delivered" in [e["kind"] for e in events]
    assert not any(TOKEN in json.dumps(e) for e in events)
    assert TOKEN not in promoted.out + promoted.err


def test_a_failing_webhook_is_reported_but_the_promotion_is_recorded(
    workspace: WorkspaceFactory,
) -> None:
    ws = released(workspace())
    with WebhookServer(Answer(status=500)) as server:
        env = {"CONVEYOR_CHANGE_WEBHOOK": server.url, "CONVEYOR_CHANGE_WEBHOOK_TOKEN": TOKEN}
        promoted = ws.cli("promote", "shop", "0.1.0", "--to", "prod", "--no-wait", env=env)

    assert promoted.code == 0, promoted.err
    assert "warning: the change record of promotion 2 was not delivered to http://127.0.0.1:" in (
        promoted.err
    )
    assert "HTTP 500 Internal Server Error" in promoted.err
    failed = [e for e in ws.events() if e["kind"] == "change_record.delivery_failed"]
    assert json.loads(failed[0]["data"])["status"] == 500
    assert TOKEN not in promoted.err
