"""`conveyor audit` end to end: a real log, tampered with directly in SQLite, then checked."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from conveyor.audit.merkle import event_leaf, leaf_hash, verify_inclusion
from conveyor.audit.tree_head import decode_signature, signed_message

from .support import GENESIS, Result, Workspace, WorkspaceFactory, assert_chain_intact, event_hash

SPEC = """
version: 1
jobs:
  build:
    inputs: []
    run: echo built > app.txt
    outputs: [app.txt]
  test:
    needs: [build]
    inputs: []
    run: echo tested
"""


def _sql(ws: Workspace, statement: str, params: tuple[object, ...] = ()) -> None:
    with contextlib.closing(sqlite3.connect(ws.db_path, timeout=30)) as conn:
        conn.execute(statement, params)
        conn.commit()


def _signed_head(ws: Workspace) -> dict[str, Any]:
    result = ws.cli("audit", "head", "--json")
    assert result.code == 0, result.err
    head: dict[str, Any] = result.json()
    return head


def _logged(workspace: WorkspaceFactory) -> tuple[Workspace, list[int]]:
    """A workspace whose pipeline ran twice, with a tree head signed after each run."""
    ws = workspace(SPEC)
    sizes = []
    for _ in range(2):
        assert ws.run().code == 0
        sizes.append(_signed_head(ws)["size"])
    return ws, sizes


def _verify(ws: Workspace) -> tuple[Result, dict[str, Any]]:
    text = ws.cli("audit", "verify")
    doc = ws.cli("audit", "verify", "--json")
    assert text.code == doc.code
    report: dict[str, Any] = doc.json()
    return text, report


def _rechain(ws: Workspace) -> None:
    """Recompute every event's link and hash in order, as someone covering their tracks would."""
    prev = GENESIS
    for event in ws.events():
        event["prev_hash"] = prev
        digest = event_hash(event)
        _sql(
            ws,
            "UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?",
            (prev, digest, event["seq"]),
        )
        prev = digest


def test_an_untouched_log_verifies_and_every_head_covers_a_run(
    workspace: WorkspaceFactory,
) -> None:
    ws, sizes = _logged(workspace)

    text, report = _verify(ws)

    events = len(ws.events())
    assert text.code == 0, text.err
    assert f"the event log is intact: {events} events, hash chain verified" in text.out
    assert f"2 signed tree heads verified; the newest covers {events} of {events}" in text.out
    assert report["intact"] is True
    assert report["first_bad_event"] is None
    assert (report["events"], report["tree_heads"]) == (events, 2)
    assert sizes[0] < sizes[1] == events


def test_an_altered_event_is_named_with_its_kind_and_subject(workspace: WorkspaceFactory) -> None:
    ws, _ = _logged(workspace)
    victim = next(e for e in ws.events() if e["kind"] == "job.success")
    _sql(ws, "UPDATE events SET data = ? WHERE seq = ?", ('{"exit_code":0}', victim["seq"]))

    text, report = _verify(ws)

    assert text.code == 1
    assert text.out.startswith(
        f"tampering found: event {victim['seq']} (job.success {victim['subject']}): "
        "its content does not match its hash"
    )
    assert report["intact"] is False
    assert report["first_bad_event"] == {
        "seq": victim["seq"],
        "kind": "job.success",
        "subject": victim["subject"],
        "reason": "its content does not match its hash",
        "found_by": "chain",
    }


def test_a_deleted_middle_event_is_named_at_the_event_after_it(
    workspace: WorkspaceFactory,
) -> None:
    ws, _ = _logged(workspace)
    _sql(ws, "DELETE FROM events WHERE seq = 3")

    text, report = _verify(ws)

    assert text.code == 1
    first = report["first_bad_event"]
    assert (first["seq"], first["reason"]) == (4, "expected event 3 here, found 4")
    assert text.out.startswith(f"tampering found: event 4 ({first['kind']} {first['subject']}):")
    assert [f["found_by"] for f in report["findings"]] == ["chain", "tree_head"]


def test_two_swapped_events_are_named_at_the_first_of_them(workspace: WorkspaceFactory) -> None:
    ws, _ = _logged(workspace)
    _sql(ws, "UPDATE events SET seq = -1 WHERE seq = 2")
    _sql(ws, "UPDATE events SET seq = 2 WHERE seq = 5")
    _sql(ws, "UPDATE events SET seq = 5 WHERE seq = -1")

    text, report = _verify(ws)

    assert text.code == 1
    assert report["first_bad_event"]["seq"] == 2
    assert report["first_bad_event"]["found_by"] == "chain"
    assert "tampering found: event 2 (" in text.out


def test_deleting_the_newest_events_leaves_an_intact_chain_but_fails_the_signed_head(
    workspace: WorkspaceFactory,
) -> None:
    ws, sizes = _logged(workspace)
    kept = sizes[1] - 3
    _sql(ws, "DELETE FROM events WHERE seq > ?", (kept,))
    assert_chain_intact(ws.events())

    text, report = _verify(ws)

    assert text.code == 1
    assert report["first_bad_event"] == {
        "seq": kept + 1,
        "kind": None,
        "subject": None,
        "reason": (
            f"the tree head signed {report['newest_head']['timestamp']} over {sizes[1]} events "
            f"covers more than the {kept} the log holds now; events were deleted"
        ),
        "found_by": "tree_head",
    }
    assert text.out.startswith(f"tampering found: event {kept + 1} (not in the log): ")


def test_deleting_the_newest_events_and_recomputing_the_chain_fails_the_signed_head(
    workspace: WorkspaceFactory,
) -> None:
    ws, sizes = _logged(workspace)
    kept = sizes[1] - 2
    _sql(ws, "DELETE FROM events WHERE seq > ?", (kept,))
    _sql(ws, "UPDATE events SET data = '{}' WHERE seq = ?", (kept,))
    _rechain(ws)
    assert_chain_intact(ws.events())

    text, report = _verify(ws)

    assert text.code == 1
    (finding,) = report["findings"]
    assert (finding["seq"], finding["kind"], finding["found_by"]) == (kept + 1, None, "tree_head")
    assert finding["reason"].endswith("events were deleted")
    assert f"tampering found: event {kept + 1} (not in the log): the tree head signed" in text.out


def test_a_rewritten_history_with_a_recomputed_chain_fails_the_signed_head(
    workspace: WorkspaceFactory,
) -> None:
    ws, sizes = _logged(workspace)
    victim = sizes[0] + 2
    _sql(ws, "UPDATE events SET actor = 'mallory@example.com' WHERE seq = ?", (victim,))
    _rechain(ws)
    assert_chain_intact(ws.events())

    text, report = _verify(ws)

    assert text.code == 1
    (finding,) = report["findings"]
    assert (finding["seq"], finding["found_by"]) == (sizes[0] + 1, "tree_head")
    assert finding["reason"].startswith(f"events {sizes[0] + 1}-{sizes[1]} no longer match")


def test_a_proof_printed_for_an_event_verifies_against_the_signed_root(
    workspace: WorkspaceFactory,
) -> None:
    ws, _ = _logged(workspace)
    event = ws.events()[4]

    result = ws.cli("audit", "proof", str(event["seq"]), "--json")
    text = ws.cli("audit", "proof", str(event["seq"]))

    assert result.code == 0, result.err
    proof = result.json()
    assert proof["leaf"] == event["hash"]
    assert bytes.fromhex(proof["leaf_hash"]) == leaf_hash(event_leaf(event["hash"]))
    assert proof["root"] == proof["tree_head"]["root"]
    assert verify_inclusion(
        event_leaf(proof["leaf"]),
        proof["index"],
        proof["tree_size"],
        [bytes.fromhex(node) for node in proof["proof"]],
        bytes.fromhex(proof["root"]),
    )
    assert text.code == 0
    assert text.out.startswith(f"event {event['seq']} ({event['kind']} {event['subject']})\n")
    assert f"root:       {proof['root']}" in text.out


def test_a_proof_of_a_missing_event_is_bad_input(workspace: WorkspaceFactory) -> None:
    ws, sizes = _logged(workspace)

    result = ws.cli("audit", "proof", str(sizes[1] + 1))

    assert result.code == 2
    assert f"no event {sizes[1] + 1} in the log" in result.err


def test_the_public_key_verifies_the_signed_head_offline(workspace: WorkspaceFactory) -> None:
    ws, _ = _logged(workspace)

    head = _signed_head(ws)
    pem = ws.cli("audit", "key")
    described = ws.cli("audit", "key", "--json").json()

    assert pem.out.startswith("-----BEGIN PUBLIC KEY-----")
    assert described == {"key_id": head["key_id"], "public_key": pem.out}
    message = signed_message(
        size=head["size"],
        root=bytes.fromhex(head["root"]),
        timestamp=head["timestamp"],
        key_id=head["key_id"],
    )
    key = load_pem_public_key(pem.out.encode())
    key.verify(decode_signature(head["signature"]), message)  # type: ignore[union-attr]
    assert json.loads(message)["size"] == len(ws.events())
