"""Exporting evidence bundles from a real store, and checking them as a stranger would."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conveyor.audit import evidence as fmt
from conveyor.audit.evidence_verify import NotABundle, parse_event_line
from conveyor.audit.merkle import event_leaf, verify_inclusion
from conveyor.core.errors import IntegrityError, NotFound, UsageError
from conveyor.engine.audit import public_key, sign_tree_head, verify_log
from conveyor.engine.audit_key import public_pem
from conveyor.engine.evidence import EXPORTED, EvidenceExport, EvidenceService, verify_file
from conveyor.store import events as event_log

from .change_desk import Desk, desk
from .harness import Harness
from .promotion_world import LEAD, through_staging


def exporter(d: Desk) -> EvidenceService:
    world = d.world
    return EvidenceService(
        world.harness.workspace,
        db=world.runs.db,
        releases=world.releases,
        change_records=d.records,
        clock=world.clock,
        environ=world.harness.environ,
    )


def approved_in_prod(harness: Harness) -> Desk:
    """0.1.0 through dev and staging into prod, approved with a comment."""
    d = desk(harness)
    through_staging(d.world, d.service)
    prod = d.to_prod()
    d.service.approve(prod.id, LEAD, comment="<script>alert('hi')</script> & ship")
    return d


def export(d: Desk, tmp_path: Path) -> EvidenceExport:
    return exporter(d).export("payments-api", "0.1.0", tmp_path / "evidence.zip", actor="auditor")


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_an_exported_bundle_holds_every_document_and_verifies_offline(
    harness: Harness, tmp_path: Path
) -> None:
    d = approved_in_prod(harness)

    done = export(d, tmp_path)
    checked = verify_file(done.path)

    assert checked.intact, checked.problems
    assert sorted(members(done.path)) == sorted(
        [
            "change-records/3.json",
            "change-records/3.md",
            fmt.EVENTS,
            fmt.MANIFEST,
            fmt.PUBLIC_KEY,
            "promotions.json",
            "release.json",
            fmt.REPORT,
            "run.json",
            fmt.SIGNATURE,
            fmt.TREE_HEAD,
        ]
    )
    assert (done.promotions, done.change_records) == (3, 1)
    assert checked.events == done.events
    assert checked.about["version"] == "0.1.0"


def test_the_documents_hold_the_release_its_run_promotions_approvals_and_waivers(
    harness: Harness, tmp_path: Path
) -> None:
    d = approved_in_prod(harness)

    files = members(export(d, tmp_path).path)

    release = json.loads(files["release.json"])
    promotions = json.loads(files["promotions.json"])["promotions"]
    run = json.loads(files["run.json"])
    assert release["artifacts"] == [
        {"path": a.path, "digest": a.digest, "size": a.size} for a in d.world.release.artifacts
    ]
    assert run["id"] == release["run"] and run["status"] == "success"
    assert [(p["environment"], p["state"]) for p in promotions] == [
        ("dev", "deployed"),
        ("staging", "deployed"),
        ("prod", "deployed"),
    ]
    prod = promotions[2]
    assert prod["approvals"][0]["by"] == "lead@example.com"
    assert prod["gate_report"]["gates"][2]["gate"] == "approvals"
    assert prod["waivers"] == []
    assert prod["change_record"] == "change-records/3.json"
    record = json.loads(files["change-records/3.json"])
    assert record["approvals"][0]["comment"].startswith("<script>")


def test_the_events_are_the_releases_its_runs_and_its_promotions_each_proven(
    harness: Harness, tmp_path: Path
) -> None:
    d = approved_in_prod(harness)
    run_id = d.world.release.run_id

    done = export(d, tmp_path)

    lines = members(done.path)[fmt.EVENTS].splitlines()
    parsed = [parse_event_line(line) for line in lines]
    subjects = {event.subject.split("/job/")[0] for event, _ in parsed}
    assert subjects <= {f"run/{run_id}", "release/payments-api/0.1.0"} | {
        f"release/payments-api/0.1.0/{kind}/{n}"
        for kind in ("promotion", "environment")
        for n in (1, 2, 3, "dev", "staging", "prod")
    }
    kinds = [event.kind for event, _ in parsed]
    assert {"run.started", "release.created", "approval.granted", "change_record.created"} <= set(
        kinds
    )
    last, _ = parsed[-1]
    assert (last.kind, last.seq, last.actor) == (EXPORTED, done.head.size, "auditor")
    for event, proof in parsed:
        leaf = event_leaf(event.hash)
        assert verify_inclusion(leaf, event.seq - 1, done.head.size, proof, done.head.root)


def test_the_bundle_verifies_with_the_workspaces_key_and_fails_with_another(
    harness: Harness, tmp_path: Path
) -> None:
    d = approved_in_prod(harness)
    done = export(d, tmp_path)
    ours = tmp_path / "ours.pem"
    ours.write_text(public_key(harness.workspace.state_dir).pem)
    theirs = tmp_path / "theirs.pem"
    theirs.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))

    good, bad = verify_file(done.path, key_path=ours), verify_file(done.path, key_path=theirs)

    assert good.intact and good.key.given and not good.key.differs
    assert not bad.intact and bad.key.differs
    assert bad.problems[0].check == "tree_head"


def test_the_report_escapes_what_people_wrote_and_loads_nothing_from_elsewhere(
    harness: Harness, tmp_path: Path
) -> None:
    d = approved_in_prod(harness)

    report = members(export(d, tmp_path).path)[fmt.REPORT].decode()

    assert "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt; &amp; ship" in report
    assert "<script" not in report
    assert "src=" not in report and "href=" not in report
    assert "default-src 'none'" in report


def test_exporting_records_an_event_and_keeps_the_log_verifiable(
    harness: Harness, tmp_path: Path
) -> None:
    d = approved_in_prod(harness)

    export(d, tmp_path)

    db = d.world.runs.db
    newest = list(event_log.iter_all(db))[-1]
    assert (newest.kind, newest.subject) == (EXPORTED, "release/payments-api/0.1.0")
    assert verify_log(db, harness.workspace.state_dir).intact


def test_an_event_altered_in_the_store_is_never_exported(harness: Harness, tmp_path: Path) -> None:
    d = approved_in_prod(harness)
    sign_tree_head(d.world.runs.db, harness.workspace.state_dir, d.world.clock)
    with d.world.runs.db.write() as tx:
        tx.execute("UPDATE events SET actor = 'mallory' WHERE kind = 'approval.granted'")

    with pytest.raises(IntegrityError, match=r"event \d+ does not match its hash"):
        export(d, tmp_path)

    assert list(tmp_path.glob("*evidence.zip*")) == []


def test_exporting_an_unknown_release_or_into_a_missing_directory_is_bad_input(
    harness: Harness, tmp_path: Path
) -> None:
    d = desk(harness)

    with pytest.raises(NotFound, match=r"payments-api has no release 9\.9\.9"):
        exporter(d).export("payments-api", "9.9.9", tmp_path / "x.zip", actor="a")
    with pytest.raises(UsageError, match="is not a directory"):
        exporter(d).export("payments-api", "0.1.0", tmp_path / "no" / "x.zip", actor="a")


def test_a_file_that_is_not_a_zip_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    path.write_text("just text")

    with pytest.raises(NotABundle, match="is not a zip archive"):
        verify_file(path)


def test_a_byte_flipped_inside_the_archive_is_reported_as_damage(
    harness: Harness, tmp_path: Path
) -> None:
    done = export(approved_in_prod(harness), tmp_path)
    with zipfile.ZipFile(done.path) as archive:
        info = archive.getinfo(fmt.EVENTS)
    data = bytearray(done.path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF
    done.path.write_bytes(bytes(data))

    checked = verify_file(done.path)

    assert not checked.intact
    assert checked.problems[0].where == fmt.EVENTS
    assert checked.problems[0].reason.startswith("it is damaged: ")
