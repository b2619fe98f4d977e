"""Evidence bundles built and verified in memory: intact ones pass, tampering is named."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conveyor.audit import evidence as fmt
from conveyor.audit import tree_head
from conveyor.audit.chain import GENESIS, NewEvent, StoredEvent, encode_data, event_hash, link
from conveyor.audit.evidence_verify import (
    MAX_PROBLEMS,
    BundleReadError,
    NotABundle,
    Verification,
    verify_bundle,
)
from conveyor.audit.merkle import MerkleTree, event_leaf
from conveyor.audit.tree_head import TreeHead
from conveyor.engine.audit_key import public_pem

T0 = 1_767_225_600.0
SIGNER = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()


def stored_log(n: int) -> list[StoredEvent]:
    """A log of `n` Events: runs 1 and 2 take turns, so run 1's Events are not all consecutive."""
    news = [
        NewEvent("job.success", f"run/{1 + (i % 3 == 2)}/job/j{i}", "ci", T0 + i, {"i": i})
        for i in range(n)
    ]
    return [
        StoredEvent(
            e.seq, e.ts, e.kind, e.subject, e.actor, encode_data(e.data), e.prev_hash, e.hash
        )
        for e in link(news, last_seq=0, last_hash=GENESIS)
    ]


def entry(name: str, data: bytes) -> fmt.FileEntry:
    out = fmt.DigestingWriter(io.BytesIO())
    for line in data.splitlines() if name == fmt.EVENTS else [data]:
        if name == fmt.EVENTS:
            out.line(line)
        else:
            out.write(line)
    return out.entry(name, f"the {name}", lines=name == fmt.EVENTS)


@dataclass
class Bundle:
    """A bundle as files, with ways to tamper with it as someone without the key would."""

    log: list[StoredEvent]
    head: TreeHead
    files: dict[str, bytes] = field(default_factory=dict)

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.files[fmt.EVENTS].splitlines()]

    def set_lines(self, lines: list[dict[str, object]]) -> None:
        self.files[fmt.EVENTS] = b"".join(
            json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines
        )

    def rewrite_manifest(self) -> None:
        """Make the manifest list the files as they are now (the signature stays the old one)."""
        self.files[fmt.MANIFEST] = _manifest(self.head, self.files)

    def verify(self, key: Ed25519PrivateKey | None = None) -> Verification:
        public = None if key is None else key.public_key()
        return verify_bundle(fmt.MemoryBundle(self.files), key=public)


def _manifest(head: TreeHead, files: dict[str, bytes]) -> bytes:
    listed = [
        entry(name, data)
        for name, data in files.items()
        if name not in (fmt.MANIFEST, fmt.SIGNATURE)
    ]
    about = {"service": "shop", "version": "1.0.0"}
    return fmt.manifest_document(
        about=about, created_at="2026-01-01T00:00:00Z", head=head, files=listed
    )


def make_bundle(n: int = 12, *, key: Ed25519PrivateKey = SIGNER, prefix: str = "run/1") -> Bundle:
    log = stored_log(n)
    tree = MerkleTree([event_leaf(e.hash) for e in log])
    head = tree_head.sign(key, size=n, root=tree.root(), timestamp="2026-01-01T00:00:00.000000Z")
    related = [e for e in log if e.subject.startswith(prefix + "/")]
    events = b"".join(fmt.event_line(e, tree.inclusion_proof(e.seq - 1)) + b"\n" for e in related)
    files = {
        "release.json": b'{"service": "shop"}\n',
        fmt.EVENTS: events,
        fmt.TREE_HEAD: fmt.head_document(head),
        fmt.PUBLIC_KEY: public_pem(key.public_key()).encode(),
        fmt.REPORT: b"<!doctype html><title>shop</title>\n",
    }
    manifest = _manifest(head, files)
    files[fmt.MANIFEST] = manifest
    files[fmt.SIGNATURE] = fmt.signature_document(key, manifest)
    return Bundle(log, head, files)


def first(result: Verification) -> tuple[str, str, str]:
    assert result.problems, "the bundle verified"
    problem = result.problems[0]
    return problem.check, problem.where, problem.reason


# --- intact ----------------------------------------------------------------------------


def test_an_untouched_bundle_verifies_with_its_own_key_and_with_the_signers() -> None:
    bundle = make_bundle()

    own, given = bundle.verify(), bundle.verify(SIGNER)

    assert own.intact and given.intact
    assert own.events == 8
    assert own.files == 5
    assert own.about == {"service": "shop", "version": "1.0.0"}
    assert not own.key.given and given.key.given and not given.key.differs


def test_events_that_are_not_consecutive_in_the_log_still_verify_by_their_proofs() -> None:
    bundle = make_bundle(prefix="run/2")

    result = bundle.verify(SIGNER)

    assert result.intact
    assert [line["seq"] for line in bundle.lines()] == [3, 6, 9, 12]


# --- events ----------------------------------------------------------------------------


def test_one_byte_changed_in_an_event_is_named_as_content_that_does_not_match_its_hash() -> None:
    bundle = make_bundle()
    text = bundle.files[fmt.EVENTS]
    at = text.index(b'"actor":"ci"') + len(b'"actor":"')
    bundle.files[fmt.EVENTS] = text[:at] + b"C" + text[at + 1 :]

    assert first(bundle.verify(SIGNER)) == (
        "event",
        "event 1 (job.success run/1/job/j0)",
        "its content does not match its hash",
    )


def test_an_event_rehashed_after_a_change_fails_its_proof_and_the_next_ones_link() -> None:
    bundle = make_bundle()
    lines = bundle.lines()
    lines[0]["actor"] = "mallory"
    line = lines[0]
    line["hash"] = event_hash(
        seq=1,
        ts=str(line["ts"]),
        kind=str(line["kind"]),
        subject=str(line["subject"]),
        actor="mallory",
        data_json=str(line["data"]),
        prev_hash=str(line["prev_hash"]),
    )
    bundle.set_lines(lines)

    result = bundle.verify(SIGNER)

    assert [(p.check, p.where.split(" (")[0]) for p in result.problems[:2]] == [
        ("proof", "event 1"),
        ("chain", "event 2"),
    ]
    assert result.problems[1].reason == "its link to event 1 does not match"


def test_swapped_proofs_are_named_as_proofs_that_do_not_lead_to_the_signed_root() -> None:
    bundle = make_bundle()
    lines = bundle.lines()
    lines[1]["proof"], lines[2]["proof"] = lines[2]["proof"], lines[1]["proof"]
    bundle.set_lines(lines)

    assert first(bundle.verify(SIGNER)) == (
        "proof",
        "event 2 (job.success run/1/job/j1)",
        "its inclusion proof does not lead to the signed tree head's root",
    )


def test_events_out_of_order_are_named() -> None:
    bundle = make_bundle()
    lines = bundle.lines()
    lines[1], lines[2] = lines[2], lines[1]
    bundle.set_lines(lines)

    check, where, reason = first(bundle.verify(SIGNER))

    assert (check, where) == ("chain", "event 2 (job.success run/1/job/j1)")
    assert reason == "it comes after event 4: out of order or repeated"


def test_a_deleted_event_is_caught_by_the_count_the_manifest_lists() -> None:
    bundle = make_bundle()
    bundle.set_lines(bundle.lines()[:-1])

    result = bundle.verify(SIGNER)

    assert first(result) == ("file", fmt.EVENTS, "it holds 7 events; the manifest lists 8")
    assert result.problems[1].reason == "its content does not match its digest in the manifest"


def test_a_line_that_is_not_an_event_is_named_by_its_line_number() -> None:
    bundle = make_bundle()
    bundle.files[fmt.EVENTS] += b'{"seq": "one"}\n[1, 2]\n'

    result = bundle.verify(SIGNER)

    assert [(p.where, p.reason) for p in result.problems[:2]] == [
        (
            f"{fmt.EVENTS} line 9",
            "it is not an event: it has no ts, kind, subject, actor, data, prev_hash, hash, proof",
        ),
        (f"{fmt.EVENTS} line 10", "it is not an event: not a JSON object"),
    ]


# --- the tree head and the key ----------------------------------------------------------


def test_a_head_signed_by_another_key_is_not_genuine() -> None:
    bundle = make_bundle()
    forged = make_bundle(key=STRANGER)
    bundle.files[fmt.TREE_HEAD] = forged.files[fmt.TREE_HEAD]
    bundle.rewrite_manifest()

    check, where, reason = first(bundle.verify())

    assert (check, where) == ("tree_head", fmt.TREE_HEAD)
    assert reason.startswith("the tree head is not genuine: it was signed by key sha256:")


def test_an_older_genuine_head_leaves_the_newer_events_unproven() -> None:
    bundle = make_bundle()
    older = MerkleTree([event_leaf(e.hash) for e in bundle.log[:6]])
    head = tree_head.sign(SIGNER, size=6, root=older.root(), timestamp="2025-12-31T00:00:00Z")
    bundle.files[fmt.TREE_HEAD] = fmt.head_document(head)
    bundle.head = head
    bundle.rewrite_manifest()

    result = bundle.verify(SIGNER)

    assert first(result) == (
        "proof",
        "event 1 (job.success run/1/job/j0)",
        "its inclusion proof does not lead to the signed tree head's root",
    )
    assert "it is not among the 6 events the tree head covers" in {
        p.reason for p in result.problems
    }


def test_checking_with_another_key_says_the_keys_differ_and_fails_the_head() -> None:
    bundle = make_bundle()

    result = bundle.verify(STRANGER)

    assert result.key.differs
    assert result.key.bundle_key_id == tree_head.key_id(SIGNER.public_key())
    check, _where, reason = first(result)
    assert check == "tree_head"
    assert "not by the key checked with" in reason
    assert result.problems[-1].check == "manifest"


def test_a_bundle_whose_own_key_was_replaced_fails_its_head() -> None:
    bundle = make_bundle()
    bundle.files[fmt.PUBLIC_KEY] = public_pem(STRANGER.public_key()).encode()
    bundle.rewrite_manifest()

    assert first(bundle.verify())[0] == "tree_head"


def test_a_bundle_without_a_readable_key_or_head_says_so() -> None:
    bundle = make_bundle()
    bundle.files[fmt.PUBLIC_KEY] = b"not a key"
    del bundle.files[fmt.TREE_HEAD]

    result = bundle.verify()

    assert [p.check for p in result.problems[:2]] == ["key", "tree_head"]
    assert result.problems[1].reason == "the bundle holds no tree head"


# --- files and the manifest -------------------------------------------------------------


def test_a_changed_document_does_not_match_its_digest() -> None:
    bundle = make_bundle()
    bundle.files["release.json"] = b'{"service": "shoq"}\n'

    assert first(bundle.verify(SIGNER)) == (
        "file",
        "release.json",
        "its content does not match its digest in the manifest",
    )


def test_a_changed_document_with_a_rewritten_manifest_fails_the_manifest_signature() -> None:
    bundle = make_bundle()
    bundle.files[fmt.REPORT] = b"<p>all good</p>\n"
    bundle.rewrite_manifest()

    check, where, reason = first(bundle.verify(SIGNER))

    assert (check, where) == ("manifest", fmt.SIGNATURE)
    assert reason.startswith("the manifest's signature does not hold: it signs a manifest with")


def test_files_the_manifest_does_not_list_or_that_are_missing_are_named() -> None:
    bundle = make_bundle()
    bundle.files["extra.txt"] = b"hello\n"
    del bundle.files[fmt.REPORT]

    result = bundle.verify(SIGNER)

    assert [(p.where, p.reason) for p in result.problems] == [
        ("extra.txt", "the manifest does not list it"),
        (fmt.REPORT, "the manifest lists it, but the bundle does not hold it"),
    ]


def test_an_unsigned_manifest_is_named() -> None:
    bundle = make_bundle()
    del bundle.files[fmt.SIGNATURE]

    assert first(bundle.verify(SIGNER)) == ("manifest", fmt.SIGNATURE, "the manifest is not signed")


def test_a_manifest_signature_is_never_a_tree_head_signature() -> None:
    bundle = make_bundle()
    signature = json.loads(bundle.files[fmt.SIGNATURE])
    head = json.loads(bundle.files[fmt.TREE_HEAD])
    head["signature"] = signature["signature"]
    bundle.files[fmt.TREE_HEAD] = json.dumps(head).encode()
    bundle.rewrite_manifest()

    assert first(bundle.verify(SIGNER))[2].endswith(
        "its signature does not verify under key " + tree_head.key_id(SIGNER.public_key())
    )


class DamagedBundle(fmt.MemoryBundle):
    """Reading `damaged` fails part way, as a zip member with a bad CRC does."""

    damaged = fmt.EVENTS

    @contextmanager
    def open(self, name: str) -> Iterator[io.BytesIO]:
        with super().open(name) as stream:
            if name == self.damaged:
                yield Broken(stream.read())
            else:
                yield stream


class Broken(io.BytesIO):
    def readline(self, size: int | None = -1, /) -> bytes:
        raise BundleReadError("Bad CRC-32 for file 'events.jsonl'")


def test_a_damaged_file_is_a_problem_of_the_bundle_not_a_crash() -> None:
    bundle = make_bundle()

    result = verify_bundle(DamagedBundle(bundle.files), key=SIGNER.public_key())

    assert first(result) == (
        "file",
        fmt.EVENTS,
        "it is damaged: Bad CRC-32 for file 'events.jsonl'",
    )


# --- not a bundle --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "it holds no manifest.json"),
        (b"{not json", "its manifest.json cannot be read"),
        (b'{"format": "something/v9"}', "is not a conveyor.evidence/v1 manifest"),
        (b"[" * 100_000 + b"]" * 100_000, "its manifest.json cannot be read"),
    ],
)
def test_files_without_a_manifest_of_this_format_are_not_bundles(
    manifest: bytes | None, message: str
) -> None:
    files = {} if manifest is None else {fmt.MANIFEST: manifest}

    with pytest.raises(NotABundle, match=message):
        verify_bundle(fmt.MemoryBundle({"a.txt": b"a", **files}))


def test_only_the_first_problems_are_kept_and_the_rest_counted() -> None:
    bundle = make_bundle()
    for i in range(MAX_PROBLEMS + 5):
        bundle.files[f"extra-{i}.txt"] = b"x"

    result = bundle.verify(SIGNER)

    assert len(result.problems) == MAX_PROBLEMS
    assert result.more_problems == 5
