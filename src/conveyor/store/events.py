"""Appending to and reading the event chain."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from conveyor.audit.chain import GENESIS, Event, Link, NewEvent, StoredEvent, encode_data, link
from conveyor.store.db import Database, Row, Transaction, bind_list
from conveyor.store.scoping import project_events_clause

_COLUMNS = "seq, ts, kind, subject, actor, data, prev_hash, hash"


def append(tx: Transaction, events: Sequence[NewEvent]) -> list[Event]:
    """Chain `events` after the newest stored Event, inside the caller's write transaction.

    On SQLite the write transaction already holds the database lock; on
    PostgreSQL a transaction-scoped advisory lock serializes appenders.
    """
    if not events:
        return []
    if tx.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(7261101)")
    rows = tx.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
    last_seq, last_hash = (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)
    linked = link(events, last_seq=last_seq, last_hash=last_hash)
    tx.executemany(
        f"INSERT INTO events ({_COLUMNS}) VALUES "
        "(:seq, :ts, :kind, :subject, :actor, :data, :prev_hash, :hash)",
        [
            {
                "seq": e.seq,
                "ts": e.ts,
                "kind": e.kind,
                "subject": e.subject,
                "actor": e.actor,
                "data": encode_data(e.data),
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            }
            for e in linked
        ],
    )
    return linked


def _stored(row: Row) -> StoredEvent:
    seq, ts, kind, subject, actor, data, prev_hash, digest = row
    return StoredEvent(
        int(seq),
        str(ts),
        str(kind),
        str(subject),
        str(actor),
        str(data),
        str(prev_hash),
        str(digest),
    )


def iter_all(db: Database, *, batch: int = 5000) -> Iterator[StoredEvent]:
    """Every stored Event in chain order, read in batches."""
    after = 0
    while True:
        with db.read() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq > :after ORDER BY seq LIMIT :n",
                {"after": after, "n": batch},
            )
        if not rows:
            return
        for row in rows:
            event = _stored(row)
            after = event.seq
            yield event


def for_subject(db: Database, prefix: str, *, limit: int = 1000) -> list[Event]:
    """Events whose subject is `prefix` or below it (`run/3` also gives `run/3/job/x`)."""
    # Not LIKE: `_` and `%` in subjects would be wildcards, and SQLite's LIKE ignores case.
    below = prefix + "/"
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM events WHERE subject = :s OR substr(subject, 1, :k) = :p "
            "ORDER BY seq LIMIT :n",
            {"s": prefix, "k": len(below), "p": below, "n": limit},
        )
    return [_stored(row).decode() for row in rows]


def at(db: Database, seq: int) -> StoredEvent | None:
    """The Event stored under `seq`, or None."""
    with db.read() as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM events WHERE seq = :s", {"s": seq})
    return _stored(rows[0]) if rows else None


def hash_at(tx: Transaction, seq: int) -> str | None:
    """The chain hash stored for Event `seq`, or None."""
    rows = tx.execute("SELECT hash FROM events WHERE seq = :s", {"s": seq})
    return str(rows[0][0]) if rows else None


def last_seq(tx: Transaction) -> int:
    """The seq of the newest Event; 0 when there is none."""
    rows = tx.execute("SELECT max(seq) FROM events")
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def between(tx: Transaction, *, after: int, until: int, batch: int = 5000) -> Iterator[StoredEvent]:
    """Events with `after` < seq <= `until` in order, read in batches inside `tx`."""
    while after < until:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM events WHERE seq > :after AND seq <= :until "
            "ORDER BY seq LIMIT :n",
            {"after": after, "until": until, "n": batch},
        )
        if not rows:
            return
        for row in rows:
            event = _stored(row)
            after = event.seq
            yield event


def to_check(
    tx: Transaction, *, after: int, until: int, own: Mapping[int, str], batch: int = 5000
) -> Iterator[StoredEvent | Link]:
    """Events with `after` < seq <= `until` in order, as `chain.verify` checks them: only the
    links of those in `own` (seq -> hash, appended by the caller), the whole of the others."""
    if not own:
        yield from between(tx, after=after, until=until, batch=batch)
        return
    while after < until:
        links = [
            Link(int(seq), str(prev_hash), str(digest))
            for seq, prev_hash, digest in tx.execute(
                "SELECT seq, prev_hash, hash FROM events WHERE seq > :after AND seq <= :until "
                "ORDER BY seq LIMIT :n",
                {"after": after, "until": until, "n": batch},
            )
        ]
        if not links:
            return
        others = [place.seq for place in links if place.seq not in own]
        if len(others) * 2 > len(links):  # mostly others': one read of the whole batch
            yield from between(tx, after=after, until=links[-1].seq, batch=batch)
            after = links[-1].seq
            continue
        whole: dict[int, StoredEvent] = {}
        for start in range(0, len(others), 500):  # within any database's limit of parameters
            marks, params = bind_list("s", others[start : start + 500])
            rows = tx.execute(f"SELECT {_COLUMNS} FROM events WHERE seq IN ({marks})", params)
            whole.update((event.seq, event) for event in map(_stored, rows))
        for place in links:
            yield whole.get(place.seq, place)
        after = links[-1].seq


def chain_hashes(db: Database, *, count: int, batch: int = 20000) -> list[tuple[int, str]]:
    """(seq, hash) of the first `count` Events in chain order, read in batches."""
    out: list[tuple[int, str]] = []
    after = 0
    while len(out) < count:
        with db.read() as tx:
            rows = tx.execute(
                "SELECT seq, hash FROM events WHERE seq > :after ORDER BY seq LIMIT :n",
                {"after": after, "n": min(batch, count - len(out))},
            )
        if not rows:
            break
        out.extend((int(seq), str(digest)) for seq, digest in rows)
        after = out[-1][0]
    return out


def page(
    db: Database, *, prefix: str | None, after: int, limit: int, project: str | None = None
) -> list[Event]:
    """Up to `limit` Events after seq `after`, at or below `prefix` when given, in order.

    With `project`, only that project's Events (`store/scoping.py` says which they are).
    """
    clauses = ["seq > :after"]
    params: dict[str, object] = {"after": after, "n": limit}
    if project is not None:
        scoped, scope_params = project_events_clause(project)
        clauses.append(scoped)
        params.update(scope_params)
    if prefix:
        below = prefix + "/"
        clauses.append("(subject = :s OR substr(subject, 1, :k) = :p)")
        params.update({"s": prefix, "k": len(below), "p": below})
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT :n",
            params,
        )
    return [_stored(row).decode() for row in rows]
