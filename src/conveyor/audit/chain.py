"""The hash chain over Events.

Each Event's hash is SHA-256 over the canonical JSON of its fields and the
previous Event's hash, so altering, deleting or reordering any stored row
breaks every hash after it. The first Event links to `GENESIS`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from conveyor.core.digest import canonical_json, of_bytes
from conveyor.core.values import field, frozen

GENESIS = "sha256:" + "0" * 64


@frozen
class NewEvent:
    """An Event not yet appended: what changed, to what, by whom, when."""

    kind: str
    subject: str
    actor: str
    ts: float
    data: Mapping[str, object] = field(default_factory=dict)


@frozen
class Event:
    """An appended Event, with its place in the chain."""

    seq: int
    ts: str
    kind: str
    subject: str
    actor: str
    data: Mapping[str, object]
    prev_hash: str
    hash: str


def format_ts(ts: float) -> str:
    """Event time as ISO 8601 UTC with microseconds; the hash covers this exact text."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *, seq: int, ts: str, kind: str, subject: str, actor: str, data_json: str, prev_hash: str
) -> str:
    """The hash of one Event given its predecessor's hash."""
    body = {
        "seq": seq,
        "ts": ts,
        "kind": kind,
        "subject": subject,
        "actor": actor,
        "data": data_json,
        "prev": prev_hash,
    }
    return of_bytes(canonical_json(body))


def encode_data(data: Mapping[str, object]) -> str:
    return canonical_json(dict(data)).decode()


def link(events: Iterable[NewEvent], *, last_seq: int, last_hash: str) -> list[Event]:
    """Chain `events` after the Event (`last_seq`, `last_hash`)."""
    out: list[Event] = []
    seq, prev = last_seq, last_hash
    for new in events:
        seq += 1
        ts = format_ts(new.ts)
        data_json = encode_data(new.data)
        digest = event_hash(
            seq=seq,
            ts=ts,
            kind=new.kind,
            subject=new.subject,
            actor=new.actor,
            data_json=data_json,
            prev_hash=prev,
        )
        out.append(Event(seq, ts, new.kind, new.subject, new.actor, new.data, prev, digest))
        prev = digest
    return out


@frozen
class StoredEvent:
    """An Event exactly as read back from the store, data still encoded."""

    seq: int
    ts: str
    kind: str
    subject: str
    actor: str
    data_json: str
    prev_hash: str
    hash: str

    def decode(self) -> Event:
        data: dict[str, object] = json.loads(self.data_json)
        return Event(
            self.seq, self.ts, self.kind, self.subject, self.actor, data, self.prev_hash, self.hash
        )


@frozen
class Link:
    """An Event's place in the chain without its content: enough to check an Event the
    caller appended itself, whose hash it kept (see `verify`)."""

    seq: int
    prev_hash: str
    hash: str


@frozen
class ChainBreak:
    """The first Event that does not follow from the ones before it, and why."""

    seq: int
    reason: str


def rehash(event: StoredEvent) -> str:
    """The hash `event`'s stored fields give; it differs from `event.hash` if any was altered."""
    return event_hash(
        seq=event.seq,
        ts=event.ts,
        kind=event.kind,
        subject=event.subject,
        actor=event.actor,
        data_json=event.data_json,
        prev_hash=event.prev_hash,
    )


def verify(
    events: Iterable[StoredEvent | Link],
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS,
    appended: Mapping[int, str] | None = None,
) -> ChainBreak | None:
    """Check Events in order from the start, or after a known one; the first break, or None.

    `appended` maps the seq of Events the caller appended itself to the hash
    it computed then: such an Event must still carry that hash, and is not
    hashed again, so its content need not even be read (a `Link`). (Its
    content is covered by that hash: a later full check, such as `conveyor
    audit verify`, finds it altered.) Any other Event is hashed again.
    """
    expected_seq, prev = after_seq + 1, after_hash
    own = appended or {}
    for event in events:
        if event.seq != expected_seq:
            return ChainBreak(event.seq, f"expected event {expected_seq} here, found {event.seq}")
        if event.prev_hash != prev:
            return ChainBreak(event.seq, "its link to the previous event does not match")
        known = own.get(event.seq)
        if known is not None and known != event.hash:
            return ChainBreak(event.seq, "its hash is not the one it was appended with")
        if known is None and not (isinstance(event, StoredEvent) and rehash(event) == event.hash):
            return ChainBreak(event.seq, "its content does not match its hash")
        expected_seq, prev = event.seq + 1, event.hash
    return None
