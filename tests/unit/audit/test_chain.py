"""The hash chain: linking, verifying, and detecting any change to a stored event."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.audit.chain import (
    GENESIS,
    ChainBreak,
    NewEvent,
    StoredEvent,
    encode_data,
    format_ts,
    link,
    verify,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=6,
)
new_events = st.builds(
    NewEvent,
    kind=st.text(min_size=1, max_size=20),
    subject=st.text(min_size=1, max_size=30),
    actor=st.text(min_size=1, max_size=20),
    ts=st.floats(min_value=0, max_value=4_102_444_800),  # up to the year 2100
    data=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
)
chains = st.lists(new_events, min_size=1, max_size=8)
FIELDS = [f.name for f in dataclasses.fields(StoredEvent)]


def _stored(
    events: list[NewEvent], *, last_seq: int = 0, last_hash: str = GENESIS
) -> list[StoredEvent]:
    return [
        StoredEvent(
            e.seq, e.ts, e.kind, e.subject, e.actor, encode_data(e.data), e.prev_hash, e.hash
        )
        for e in link(events, last_seq=last_seq, last_hash=last_hash)
    ]


@given(chains)
def test_any_sequence_of_events_verifies(events: list[NewEvent]) -> None:
    assert verify(_stored(events)) is None


@given(chains, st.data())
def test_linking_in_parts_gives_the_same_chain_as_linking_at_once(
    events: list[NewEvent], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(events)), label="cut")
    head = _stored(events[:cut])
    tail = _stored(
        events[cut:],
        last_seq=head[-1].seq if head else 0,
        last_hash=head[-1].hash if head else GENESIS,
    )

    assert head + tail == _stored(events)


@settings(max_examples=150)
@given(chains, st.data(), st.sampled_from(FIELDS))
def test_any_single_field_mutation_is_detected_at_that_event(
    events: list[NewEvent], data: st.DataObject, field: str
) -> None:
    stored = _stored(events)
    i = data.draw(st.integers(min_value=0, max_value=len(stored) - 1), label="index")
    value = getattr(stored[i], field)
    values = st.integers() if isinstance(value, int) else st.text(max_size=70)
    change: dict[str, Any] = {
        field: data.draw(values.filter(lambda v: v != value), label="new value")
    }
    stored[i] = dataclasses.replace(stored[i], **change)

    found = verify(stored)

    assert found is not None
    # The break names the event as stored, so a renumbered one by its new number.
    assert found.seq == stored[i].seq
    assert found.seq == i + 1 or field == "seq"


@given(st.lists(new_events, min_size=2, max_size=8), st.data())
def test_a_removed_event_is_detected_at_the_one_after_it(
    events: list[NewEvent], data: st.DataObject
) -> None:
    stored = _stored(events)
    i = data.draw(st.integers(min_value=0, max_value=len(stored) - 2), label="index")

    del stored[i]

    assert verify(stored) == ChainBreak(i + 2, f"expected event {i + 1} here, found {i + 2}")


@given(st.lists(new_events, min_size=2, max_size=8), st.data())
def test_two_swapped_events_are_detected_at_the_first_of_them(
    events: list[NewEvent], data: st.DataObject
) -> None:
    stored = _stored(events)
    i, j = sorted(
        data.draw(
            st.lists(
                st.integers(min_value=0, max_value=len(stored) - 1),
                min_size=2,
                max_size=2,
                unique=True,
            ),
            label="pair",
        )
    )

    stored[i], stored[j] = stored[j], stored[i]

    found = verify(stored)
    assert found is not None
    assert found.seq == j + 1


def test_the_first_event_links_to_genesis_and_each_next_to_the_one_before() -> None:
    first, second = link(
        [NewEvent("run.started", "run/1", "ada", T0), NewEvent("run.finished", "run/1", "ada", T0)],
        last_seq=0,
        last_hash=GENESIS,
    )

    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert first.hash != second.hash
    assert first.hash.startswith("sha256:")


def test_an_empty_chain_verifies() -> None:
    assert verify([]) is None


def test_a_chain_that_does_not_start_at_one_is_broken() -> None:
    stored = _stored([NewEvent("k", "s", "a", T0)], last_seq=1)

    assert verify(stored) == ChainBreak(2, "expected event 1 here, found 2")


def test_event_time_is_iso_8601_utc_with_microseconds() -> None:
    assert format_ts(T0) == "2026-01-01T00:00:00.000000Z"
    assert format_ts(T0 + 1.5) == "2026-01-01T00:00:01.500000Z"
    assert format_ts(0) == "1970-01-01T00:00:00.000000Z"


def test_stored_events_decode_to_the_linked_events() -> None:
    data = {"b": [1, 2.5, None], "a": {"ü": True}}
    (event,) = link([NewEvent("k", "s", "a", T0, data)], last_seq=0, last_hash=GENESIS)
    (stored,) = _stored([NewEvent("k", "s", "a", T0, data)])

    assert stored.data_json == '{"a":{"ü":true},"b":[1,2.5,null]}'
    assert stored.decode() == event
