"""The pure prune plan: which entries and blobs go, given what is on disk."""

from __future__ import annotations

from conveyor.artifacts.cas import BlobInfo
from conveyor.artifacts.prune import EntryUsage, PrunePlan, plan_prune

NOW = 1_767_225_600.0
OLD = NOW - 3600.0


def d(name: str) -> str:
    return "sha256:" + name * 64


def blobs(*items: tuple[str, int, float]) -> dict[str, BlobInfo]:
    return {d(name): BlobInfo(d(name), size, used) for name, size, used in items}


def entry(key: str, used: float, *names: str, size: int = 10) -> EntryUsage:
    return EntryUsage(d(key), size, used, frozenset(d(n) for n in names))


def plan(
    entries: list[EntryUsage],
    found: dict[str, BlobInfo],
    max_bytes: int,
    pinned: tuple[str, ...] = (),
) -> PrunePlan:
    return plan_prune(entries, found, max_bytes=max_bytes, pinned=pinned, grace_s=600.0, now=NOW)


def test_nothing_goes_when_everything_is_referenced_and_fits() -> None:
    result = plan([entry("e", OLD, "1")], blobs(("1", 100, OLD)), max_bytes=110)
    assert result == PrunePlan((), (), 110, 110)


def test_unreferenced_old_blobs_go_even_under_the_limit() -> None:
    result = plan([], blobs(("1", 100, OLD), ("2", 5, NOW)), max_bytes=10**9)
    assert result.blobs == (d("1"),)
    assert result.bytes_after == 5


def test_entries_go_oldest_first_and_only_as_many_as_needed() -> None:
    entries = [entry("a", OLD + 2, "1"), entry("b", OLD, "2"), entry("c", OLD + 1, "3")]
    found = blobs(("1", 100, OLD), ("2", 100, OLD), ("3", 100, OLD))
    assert plan(entries, found, max_bytes=220).entries == (d("b"),)
    result = plan(entries, found, max_bytes=219)
    assert result.entries == (d("b"), d("c"))
    assert set(result.blobs) == {d("2"), d("3")}
    assert result.bytes_after == 110


def test_a_blob_shared_with_a_surviving_entry_is_kept() -> None:
    entries = [entry("a", OLD, "1", "2"), entry("b", NOW, "2")]
    found = blobs(("1", 100, OLD), ("2", 100, OLD))
    result = plan(entries, found, max_bytes=150)
    assert result.entries == (d("a"),)
    assert result.blobs == (d("1"),)
    assert result.bytes_after == 110


def test_pinned_and_young_blobs_survive_even_past_the_limit() -> None:
    entries = [entry("a", OLD, "1", "2")]
    found = blobs(("1", 100, OLD), ("2", 100, NOW - 10))
    result = plan(entries, found, max_bytes=0, pinned=(d("1"),))
    assert result.entries == (d("a"),)
    assert result.blobs == ()
    assert result.bytes_after == 200


def test_a_referenced_digest_missing_from_the_store_is_not_counted() -> None:
    result = plan([entry("a", OLD, "9")], {}, max_bytes=0)
    assert result == PrunePlan((d("a"),), (), 10, 0)
