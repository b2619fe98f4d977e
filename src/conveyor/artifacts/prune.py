"""What a prune removes: a pure plan over the entries and blobs found on disk.

Blobs live only while something keeps them: a cache entry that references
them, a pin from the caller (released artifacts), or their youth. Youth
protects a concurrent run that has put its blobs but not yet written the
entry that references them. Entries go least recently used first, and only
as many as needed to fit the limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence

from conveyor.artifacts.cas import BlobInfo
from conveyor.core.values import frozen


@frozen
class EntryUsage:
    """A cache entry as prune sees it: manifest size, last use and referenced digests."""

    key: str
    size: int
    last_used: float
    digests: frozenset[str]


@frozen
class PrunePlan:
    """Entries to remove (least recently used first), blobs to delete, bytes around it."""

    entries: tuple[str, ...]
    blobs: tuple[str, ...]
    bytes_before: int
    bytes_after: int


@frozen
class PruneReport:
    """What a prune removed, and the bytes held before and after against the limit."""

    entries_removed: int
    blobs_removed: int
    temp_files_removed: int
    bytes_before: int
    bytes_after: int
    max_bytes: int

    @property
    def over_limit(self) -> bool:
        """Whether pinned and protected content alone still exceeds the limit."""
        return self.bytes_after > self.max_bytes


def plan_prune(
    entries: Sequence[EntryUsage],
    blobs: Mapping[str, BlobInfo],
    *,
    max_bytes: int,
    pinned: Collection[str],
    grace_s: float,
    now: float,
) -> PrunePlan:
    """Remove LRU entries until what remains fits in `max_bytes`; drop every blob left unkept."""
    kept = {d for d, info in blobs.items() if d in pinned or info.last_used > now - grace_s}
    refs = Counter(d for entry in entries for d in entry.digests)
    garbage = [d for d in blobs if refs[d] == 0 and d not in kept]
    before = sum(entry.size for entry in entries) + sum(info.size for info in blobs.values())
    after = before - sum(blobs[d].size for d in garbage)
    removed: list[str] = []
    for entry in sorted(entries, key=lambda e: (e.last_used, e.key)):
        if after <= max_bytes:
            break
        removed.append(entry.key)
        after -= entry.size
        for d in entry.digests:
            refs[d] -= 1
            if refs[d] == 0 and d in blobs and d not in kept:
                garbage.append(d)
                after -= blobs[d].size
    return PrunePlan(tuple(removed), tuple(garbage), before, after)
