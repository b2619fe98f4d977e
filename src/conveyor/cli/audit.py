"""`conveyor audit`: check the event log, prove an Event is in it, sign and show tree heads."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.errors import WORK_FAILED
from conveyor.cli.pipeline import FileOption, JsonOption

if TYPE_CHECKING:
    from pathlib import Path

    from conveyor.audit.tree_head import TreeHead
    from conveyor.engine.audit import AuditReport, Finding, InclusionProof
    from conveyor.engine.workspace import Workspace
    from conveyor.store.db import Database

app = typer.Typer(
    help=(
        "The tamper-evident event log: every state change is an Event, each hashed "
        "with the one before it (a hash chain), and all of them are leaves of an "
        "RFC 6962 Merkle tree whose root is signed with the workspace's Ed25519 key "
        "(a signed tree head).\n\n"
        "`verify` checks both; `proof` shows that one Event is in a signed tree; `head` "
        "signs the log as it is now; `key` prints the public key others verify with. "
        "The key is made on first use in the state directory (audit/signing.key); "
        "CONVEYOR_AUDIT_KEY points to another one."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="audit")


SeqArgument = Annotated[
    int,
    typer.Argument(
        help="The Event's sequence number (its `seq` in the log, counting from 1).",
        show_default=False,
    ),
]


def _open(file: Path | None) -> tuple[Workspace, Database]:
    from conveyor.engine.service import open_store
    from conveyor.engine.workspace import discover

    workspace = discover(file)
    return workspace, open_store(workspace)


@app.command()
def verify(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Check that no Event was altered, deleted or reordered since it was recorded.

    Recomputes the hash chain (each Event's hash covers its fields and the hash
    before it) and checks every signed tree head: its signature under the
    workspace's key, and that its root is still the Merkle root of the Events
    it covers. A rewritten chain or deleted newest Events fail the second check.
    Exits 0 when the log is intact, 1 naming the first bad Event when it is not.
    """
    from conveyor.engine.audit import verify_log

    workspace, db = _open(file)
    try:
        report = verify_log(db, workspace.state_dir)
    finally:
        db.close()
    if json_output:
        sys.stdout.write(_dumps(_report_json(report)) + "\n")
    else:
        typer.echo(_report_text(report))
    if not report.intact:
        raise typer.Exit(WORK_FAILED)


@app.command()
def proof(event_seq: SeqArgument, file: FileOption = None, json_output: JsonOption = False) -> None:
    """Print an inclusion proof: the hashes that lead from one Event to a signed root.

    The leaf is the Event's chain hash as text (`sha256:...`); its leaf hash is
    SHA-256(0x00 || leaf), and hashing it with each proof hash in turn (RFC 9162,
    section 2.1.3.2) must give the root of the newest signed tree head, which is
    signed first if the log grew. An unknown EVENT_SEQ exits 2.
    """
    from conveyor.core.clock import SystemClock
    from conveyor.engine.audit import inclusion

    workspace, db = _open(file)
    try:
        found = inclusion(db, workspace.state_dir, event_seq, SystemClock())
    finally:
        db.close()
    if json_output:
        sys.stdout.write(_dumps(_proof_json(found)) + "\n")
    else:
        typer.echo(_proof_text(found))


@app.command()
def head(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Sign the log as it is now (if it grew since the last head) and print the newest head.

    A tree head is the Merkle root of the first SIZE Events, a UTC timestamp
    and the signing key's id, signed with Ed25519. Keep copies elsewhere: a
    head you hold proves later that history up to SIZE was not rewritten.
    """
    from conveyor.core.clock import SystemClock
    from conveyor.engine.audit import sign_tree_head

    workspace, db = _open(file)
    try:
        signed = sign_tree_head(db, workspace.state_dir, SystemClock())
    finally:
        db.close()
    if json_output:
        sys.stdout.write(_dumps(signed.to_json()) + "\n")
    else:
        typer.echo(_head_text(signed))


@app.command()
def key(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Print the public key (PEM) that verifies this workspace's tree heads.

    Give it to whoever checks exported evidence: `conveyor audit key > audit.pub`.
    The key pair is made on first use.
    """
    from conveyor.engine.audit import public_key
    from conveyor.engine.workspace import discover

    workspace = discover(file)
    workspace.ensure_state_dir()
    found = public_key(workspace.state_dir)
    if json_output:
        sys.stdout.write(_dumps({"key_id": found.key_id, "public_key": found.pem}) + "\n")
    else:
        sys.stdout.write(found.pem)


# --- rendering -----------------------------------------------------------------------


def _dumps(value: object) -> str:
    from conveyor.cli.render import dumps

    return dumps(value)


def _finding_json(finding: Finding) -> dict[str, object]:
    return {
        "seq": finding.seq,
        "kind": finding.kind,
        "subject": finding.subject,
        "reason": finding.reason,
        "found_by": finding.found_by,
    }


def _report_json(report: AuditReport) -> dict[str, object]:
    findings = [_finding_json(f) for f in report.findings]
    newest = report.newest_head
    return {
        "intact": report.intact,
        "events": report.events,
        "root": report.root.hex(),
        "tree_heads": report.heads,
        "newest_head": None if newest is None else newest.to_json(),
        "first_bad_event": findings[0] if findings else None,
        "findings": findings,
    }


def _event_name(finding: Finding) -> str:
    if finding.seq is None:
        return "a tree head"
    if finding.kind is None:
        return f"event {finding.seq} (not in the log)"
    return f"event {finding.seq} ({finding.kind} {finding.subject})"


def _report_text(report: AuditReport) -> str:
    if not report.intact:
        first, *rest = report.findings
        lines = [f"tampering found: {_event_name(first)}: {first.reason}"]
        lines += [f"  also: {f.reason}" for f in rest]
        return "\n".join(lines)
    lines = [f"the event log is intact: {report.events} events, hash chain verified"]
    newest = report.newest_head
    if newest is None:
        lines.append("no signed tree head yet: `conveyor audit head` signs one")
    else:
        noun = "head" if report.heads == 1 else "heads"
        lines.append(
            f"{report.heads} signed tree {noun} verified; the newest covers {newest.size} "
            f"of {report.events} events (signed {newest.timestamp} by {newest.key_id})"
        )
    lines.append(f"Merkle root of the whole log: {report.root.hex()}")
    return "\n".join(lines)


def _proof_json(found: InclusionProof) -> dict[str, object]:
    return {
        "seq": found.seq,
        "kind": found.kind,
        "subject": found.subject,
        "leaf": found.leaf,
        "leaf_hash": found.leaf_hash.hex(),
        "index": found.index,
        "tree_size": found.tree_size,
        "root": found.root.hex(),
        "proof": [node.hex() for node in found.path],
        "tree_head": found.head.to_json(),
    }


def _proof_text(found: InclusionProof) -> str:
    hashes = [node.hex() for node in found.path] or ["(none: the tree has one leaf)"]
    lines = [
        f"event {found.seq} ({found.kind} {found.subject})",
        f"leaf:       {found.leaf}",
        f"leaf hash:  {found.leaf_hash.hex()}",
        f"index:      {found.index}",
        f"tree size:  {found.tree_size}",
        f"root:       {found.root.hex()}",
        f"proof:      {hashes[0]}",
        *(f"            {node}" for node in hashes[1:]),
        _head_text(found.head),
    ]
    return "\n".join(lines)


def _head_text(signed: TreeHead) -> str:
    from conveyor.audit.tree_head import encode_signature

    return "\n".join(
        [
            f"tree head:  {signed.size} events, root {signed.root.hex()}",
            f"signed:     {signed.timestamp} by {signed.key_id}",
            f"signature:  {encode_signature(signed.signature)}",
        ]
    )
