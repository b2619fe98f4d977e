"""The audit service on SQLite and PostgreSQL: signing heads, verifying the log, proofs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from conveyor.audit import chain, merkle
from conveyor.audit.chain import GENESIS, NewEvent, event_hash
from conveyor.audit.merkle import EMPTY_ROOT, event_leaf, verify_inclusion
from conveyor.core.clock import FrozenClock
from conveyor.core.errors import IntegrityError, NotFound
from conveyor.engine.audit import (
    inclusion,
    public_key,
    sign_after_run,
    sign_tree_head,
    verify_log,
)
from conveyor.store import events as event_log
from conveyor.store import tree_heads
from conveyor.store.db import Database

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NO_ENV: dict[str, str] = {}
Spawn = Callable[[str, int, Sequence[str]], list[str]]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def _append(db: Database, count: int, *, first: int = 1) -> None:
    with db.write() as tx:
        event_log.append(
            tx,
            [
                NewEvent("job.success", f"run/1/job/j{n}", "ada@example.com", T0 + n, {"n": n})
                for n in range(first, first + count)
            ],
        )


def _sign(db: Database, state: Path, clock: FrozenClock) -> int:
    clock.advance(1)
    return sign_tree_head(db, state, clock, environ=NO_ENV).size


def _sql(db: Database, statement: str, **params: object) -> None:
    with db.write() as tx:
        tx.execute(statement, params)


def _leaves(db: Database) -> list[bytes]:
    return [event_leaf(e.hash) for e in event_log.iter_all(db)]


def _rechain_from(db: Database, seq: int) -> None:
    """Recompute every hash from `seq` on, as someone covering an alteration would."""
    stored = [e for e in event_log.iter_all(db) if e.seq >= seq]
    before = event_log.at(db, seq - 1)
    prev = before.hash if before else GENESIS
    with db.write() as tx:
        for e in stored:
            digest = event_hash(
                seq=e.seq,
                ts=e.ts,
                kind=e.kind,
                subject=e.subject,
                actor=e.actor,
                data_json=e.data_json,
                prev_hash=prev,
            )
            tx.execute(
                "UPDATE events SET prev_hash = :p, hash = :h WHERE seq = :s",
                {"p": prev, "h": digest, "s": e.seq},
            )
            prev = digest


# --- signing ---------------------------------------------------------------------------


def test_a_head_is_signed_over_the_whole_log_and_reused_until_it_grows(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 5)

    first = sign_tree_head(db, state, clock, environ=NO_ENV)
    clock.advance(60)
    again = sign_tree_head(db, state, clock, environ=NO_ENV)

    assert first == again
    assert (first.size, first.root) == (5, merkle.root(_leaves(db)))
    assert first.timestamp == "2026-01-01T00:00:00.000000Z"
    assert first.key_id == public_key(state, environ=NO_ENV).key_id
    assert len(tree_heads.all_heads(db)) == 1


def test_a_grown_log_gets_a_new_head_hashing_only_the_new_events(
    db: Database, state: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(db, 6)
    _sign(db, state, clock)
    _append(db, 5, first=7)
    read_after: list[int] = []
    to_check = event_log.to_check

    def spy(tx: object, *, after: int, until: int, own: object, batch: int = 5000) -> object:
        read_after.append(after)
        return to_check(tx, after=after, until=until, own=own, batch=batch)  # type: ignore[arg-type]

    monkeypatch.setattr(event_log, "to_check", spy)
    head = sign_tree_head(db, state, clock, environ=NO_ENV)

    assert read_after == [6]
    assert (head.size, head.root) == (11, merkle.root(_leaves(db)))
    assert [h.size for h in tree_heads.all_heads(db)] == [6, 11]


def test_an_empty_log_gets_a_head_over_nothing(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    head = sign_tree_head(db, state, clock, environ=NO_ENV)

    assert (head.size, head.root) == (0, EMPTY_ROOT)
    assert verify_log(db, state, environ=NO_ENV).intact
    _append(db, 2)
    assert sign_tree_head(db, state, clock, environ=NO_ENV).size == 2
    assert verify_log(db, state, environ=NO_ENV).heads == 2


def test_nothing_is_signed_over_new_events_that_do_not_follow_the_chain(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 4)
    _sign(db, state, clock)
    _append(db, 3, first=5)
    _sql(db, "UPDATE events SET data = :d WHERE seq = 6", d='{"n":99}')

    with pytest.raises(IntegrityError, match="event 6 does not follow"):
        sign_tree_head(db, state, clock, environ=NO_ENV)
    assert [h.size for h in tree_heads.all_heads(db)] == [4]


def test_nothing_is_signed_when_the_log_ends_before_the_newest_head(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 5)
    _sign(db, state, clock)
    _sql(db, "DELETE FROM events WHERE seq >= 4")

    with pytest.raises(IntegrityError, match="ends at event 3, but a signed tree head covers 5"):
        sign_tree_head(db, state, clock, environ=NO_ENV)


def test_nothing_is_signed_on_a_stored_frontier_that_does_not_give_its_heads_root(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 3)
    _sign(db, state, clock)
    _append(db, 1, first=4)
    _sql(db, "UPDATE tree_heads SET frontier = :f", f=f'["{"00" * 32}", "{"11" * 32}"]')

    with pytest.raises(IntegrityError, match="was altered"):
        sign_tree_head(db, state, clock, environ=NO_ENV)


def test_signing_after_a_run_turns_a_refusal_into_a_warning(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 2)
    _sql(db, "UPDATE events SET kind = 'x' WHERE seq = 2")
    warnings: list[str] = []

    assert sign_after_run(db, state, clock, NO_ENV, warnings.append) is None
    assert len(warnings) == 1
    assert warnings[0].startswith("no audit tree head was signed: event 2 does not follow")


def _appended(db: Database, count: int, *, first: int = 1) -> dict[int, str]:
    """Append as a Run's recorder does, and return what it knows: seq -> hash."""
    with db.write() as tx:
        linked = event_log.append(
            tx,
            [
                NewEvent("job.success", f"run/1/job/j{n}", "ada@example.com", T0 + n, {"n": n})
                for n in range(first, first + count)
            ],
        )
    return {event.seq: event.hash for event in linked}


def test_a_runs_own_events_are_signed_without_hashing_them_again(
    db: Database, state: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(db, 2)  # events of others: hashed again before signing
    own = _appended(db, 3, first=3)
    rehashed: list[int] = []
    rehash = chain.rehash

    def counting(event: chain.StoredEvent) -> str:
        rehashed.append(event.seq)
        return rehash(event)

    monkeypatch.setattr(chain, "rehash", counting)
    head = sign_tree_head(db, state, clock, environ=NO_ENV, appended=own)

    assert head.size == 5
    assert rehashed == [1, 2]
    assert head.root == merkle.root(_leaves(db))


def test_of_a_runs_own_events_only_the_links_are_read_in_every_batch(db: Database) -> None:
    _append(db, 2)
    own = _appended(db, 3, first=3) | _appended(db, 2, first=6)
    _append(db, 1)  # the 8th: another's again
    with db.read() as tx:
        read = list(event_log.to_check(tx, after=1, until=8, own=own, batch=2))

    assert [event.seq for event in read] == [2, 3, 4, 5, 6, 7, 8]
    assert [type(event).__name__ for event in read] == [
        "StoredEvent",
        *["Link"] * 5,
        "StoredEvent",
    ]
    assert {event.seq: event.hash for event in read if event.seq in own} == own


def test_events_not_of_a_run_are_read_whole_in_one_query_a_batch(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signing a log no Run of this process appended to (`conveyor audit sign`) reads as
    # before: no query per 500 Events; nor does a batch mostly of others'.
    _append(db, 6)
    own = _appended(db, 1, first=7)
    _append(db, 3, first=8)
    queries: list[str] = []
    with db.read() as tx:
        execute = tx.execute

        def counted(sql: str, params: object = None) -> object:
            queries.append(sql.split(" WHERE ", maxsplit=1)[0])
            return execute(sql, params)  # type: ignore[arg-type]

        monkeypatch.setattr(tx, "execute", counted)
        none_own = list(event_log.to_check(tx, after=0, until=10, own={}, batch=4))
        reads_before = len(queries)
        mostly_others = list(event_log.to_check(tx, after=0, until=10, own=own, batch=4))

    assert [e.seq for e in none_own] == [e.seq for e in mostly_others] == list(range(1, 11))
    assert all(isinstance(e, chain.StoredEvent) for e in none_own)
    assert reads_before == 3  # three batches of whole Events
    # Each batch: its links, then (mostly others') its whole Events in one read.
    assert len(queries) - reads_before == 6


def test_nothing_is_signed_when_a_runs_own_event_carries_another_hash(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    own = _appended(db, 3)
    # Someone rewrites event 2 and recomputes the chain from there: every link holds,
    # but event 2 is no longer the one the Run appended.
    _sql(db, "UPDATE events SET data = :d WHERE seq = 2", d='{"n":222}')
    _rechain_from(db, 2)

    refused = r"event 2 does not follow .*its hash is not the one it was appended with"
    with pytest.raises(IntegrityError, match=refused):
        sign_tree_head(db, state, clock, environ=NO_ENV, appended=own)
    assert tree_heads.all_heads(db) == []


def test_a_runs_own_event_altered_under_its_hash_is_found_by_the_full_check(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    own = _appended(db, 3)
    _sql(db, "UPDATE events SET data = :d WHERE seq = 2", d='{"n":222}')

    # Its stored hash is the one appended, so the head is signed over it...
    assert sign_tree_head(db, state, clock, environ=NO_ENV, appended=own).size == 3
    # ...and the head commits to that hash, so the alteration cannot hide from a check.
    report = verify_log(db, state, environ=NO_ENV)
    assert not report.intact
    assert [(f.seq, f.reason) for f in report.findings] == [
        (2, "its content does not match its hash")
    ]


# --- verifying -------------------------------------------------------------------------


def test_an_untouched_log_verifies_with_every_head(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    for first in (1, 4, 9):
        _append(db, 3, first=first)
        _sign(db, state, clock)
    _append(db, 2, first=12)

    report = verify_log(db, state, environ=NO_ENV)

    assert report.intact
    assert (report.events, report.heads) == (11, 3)
    assert report.root == merkle.root(_leaves(db))
    assert report.newest_head is not None
    assert report.newest_head.size == 9


def test_a_log_read_in_many_batches_verifies(db: Database, state: Path, clock: FrozenClock) -> None:
    _append(db, 5200)
    _sign(db, state, clock)

    report = verify_log(db, state, environ=NO_ENV)

    assert report.intact
    assert report.events == 5200


def test_an_altered_event_is_named_by_the_chain(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 6)
    _sign(db, state, clock)
    _sql(db, "UPDATE events SET data = :d WHERE seq = 3", d='{"n":333}')

    report = verify_log(db, state, environ=NO_ENV)

    assert not report.intact
    first = report.findings[0]
    assert (first.seq, first.kind, first.subject, first.found_by) == (
        3,
        "job.success",
        "run/1/job/j3",
        "chain",
    )
    assert first.reason == "its content does not match its hash"
    assert len(report.findings) == 1  # the tree commits to hashes, which were not touched


def test_a_deleted_event_is_named_by_the_chain_and_its_head(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 4)
    _sign(db, state, clock)
    _append(db, 4, first=5)
    _sign(db, state, clock)
    _sql(db, "DELETE FROM events WHERE seq = 6")

    chain_break, head_failure = verify_log(db, state, environ=NO_ENV).findings

    assert (chain_break.seq, chain_break.reason) == (7, "expected event 6 here, found 7")
    assert (head_failure.seq, head_failure.found_by) == (5, "tree_head")
    assert head_failure.reason.endswith(
        "over 8 events covers more than the 7 the log holds now; events were deleted"
    )


def test_two_swapped_events_are_named_at_the_first_of_them(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 5)
    _sign(db, state, clock)
    _sql(db, "UPDATE events SET seq = -2 WHERE seq = 2")
    _sql(db, "UPDATE events SET seq = 2 WHERE seq = 4")
    _sql(db, "UPDATE events SET seq = 4 WHERE seq = -2")

    findings = verify_log(db, state, environ=NO_ENV).findings

    assert [(f.seq, f.found_by) for f in findings] == [(2, "chain"), (1, "tree_head")]
    assert findings[1].reason.startswith("events 1-5 no longer match the tree head")


def test_deleting_the_newest_events_is_caught_by_the_head_that_covered_them(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 5)
    _sign(db, state, clock)
    _append(db, 4, first=6)
    _sign(db, state, clock)
    _sql(db, "DELETE FROM events WHERE seq > 6")

    (finding,) = verify_log(db, state, environ=NO_ENV).findings

    assert (finding.seq, finding.kind, finding.subject, finding.found_by) == (
        7,
        None,
        None,
        "tree_head",
    )
    assert finding.reason.endswith(
        "over 9 events covers more than the 6 the log holds now; events were deleted"
    )


def test_history_rewritten_with_a_recomputed_chain_is_caught_by_its_head(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 4)
    _sign(db, state, clock)
    _append(db, 4, first=5)
    _sign(db, state, clock)
    _sql(db, "UPDATE events SET actor = 'mallory@example.com' WHERE seq = 6")
    _rechain_from(db, 6)

    (finding,) = verify_log(db, state, environ=NO_ENV).findings

    assert (finding.seq, finding.kind, finding.found_by) == (5, "job.success", "tree_head")
    assert finding.reason.startswith("events 5-8 no longer match the tree head signed")
    assert "over 8 events" in finding.reason


def test_an_altered_head_is_reported_as_not_genuine(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 3)
    _sign(db, state, clock)
    _sql(db, "UPDATE tree_heads SET root = :r", r="ab" * 32)

    (finding,) = verify_log(db, state, environ=NO_ENV).findings

    assert (finding.seq, finding.found_by) == (None, "tree_head")
    assert "over 3 events is not genuine: its signature does not verify" in finding.reason


def test_heads_signed_by_another_key_are_reported(
    db: Database, state: Path, clock: FrozenClock, tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    other.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    _append(db, 2)
    workspace_key = public_key(state, environ=NO_ENV)
    sign_tree_head(db, state, clock, environ={"CONVEYOR_AUDIT_KEY": str(other)})

    (finding,) = verify_log(db, state, environ=NO_ENV).findings

    assert f"not this workspace's key {workspace_key.key_id} (workspaces" in finding.reason
    assert finding.reason.endswith("give each the same CONVEYOR_AUDIT_KEY)")
    assert "names key sha256:" in finding.reason


def test_heads_cannot_be_checked_once_the_workspace_key_is_gone(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 2)
    _sign(db, state, clock)
    (state / "audit" / "signing.key").unlink()

    (finding,) = verify_log(db, state, environ=NO_ENV).findings

    assert finding.reason.endswith("cannot be checked: the workspace's signing key is missing")


# --- proving ---------------------------------------------------------------------------


def test_an_inclusion_proof_verifies_against_a_head_signed_for_it(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 5)
    _sign(db, state, clock)
    _append(db, 2, first=6)

    found = inclusion(db, state, 3, clock, environ=NO_ENV)

    assert found.head.size == found.tree_size == 7
    assert (found.seq, found.index, found.kind, found.subject) == (
        3,
        2,
        "job.success",
        "run/1/job/j3",
    )
    assert found.leaf == event_log.at(db, 3).hash  # type: ignore[union-attr]
    assert found.leaf_hash == merkle.leaf_hash(event_leaf(found.leaf))
    assert found.root == found.head.root == merkle.root(_leaves(db))
    assert verify_inclusion(
        event_leaf(found.leaf), found.index, found.tree_size, found.path, found.root
    )


def test_an_event_that_is_not_in_the_log_cannot_be_proven(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 3)

    with pytest.raises(NotFound, match="no event 4 in the log; it holds events 1-3"):
        inclusion(db, state, 4, clock, environ=NO_ENV)
    with pytest.raises(NotFound):
        inclusion(db, state, 0, clock, environ=NO_ENV)


def test_no_proof_is_given_for_an_altered_event_or_a_rewritten_log(
    db: Database, state: Path, clock: FrozenClock
) -> None:
    _append(db, 4)
    _sign(db, state, clock)
    _sql(db, "UPDATE events SET subject = 'run/9' WHERE seq = 2")

    with pytest.raises(IntegrityError, match="event 2 does not match its hash"):
        inclusion(db, state, 2, clock, environ=NO_ENV)
    _rechain_from(db, 2)
    with pytest.raises(IntegrityError, match="no longer matches its newest tree head"):
        inclusion(db, state, 1, clock, environ=NO_ENV)


SIGNER = """
from conveyor.audit.chain import NewEvent
from conveyor.core.clock import SystemClock
from conveyor.engine.audit import sign_tree_head
from conveyor.store import events as event_log
from conveyor.store.db import open_database

worker, url, state = int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
db = open_database(url)
wait_for_go()
try:
    for r in range(15):
        with db.write() as tx:
            event_log.append(tx, [NewEvent("job.log", "run/%d" % worker, "w", time.time(), {})])
        sign_tree_head(db, state, SystemClock(), environ={})
finally:
    db.close()
"""


def test_processes_appending_and_signing_at_once_share_one_key_and_consistent_heads(
    db: Database, database_url: str, state: Path, spawn: Spawn
) -> None:
    spawn(SIGNER, 2, [database_url, str(state)])

    report = verify_log(db, state, environ=NO_ENV)
    assert report.intact
    assert report.events == 30
    signed = tree_heads.all_heads(db)
    assert len({h.key_id for h in signed}) == 1
    assert signed[-1].size == 30
