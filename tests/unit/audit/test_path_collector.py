"""Inclusion proofs for chosen leaves from one pass: the same as the whole tree's, in O(log n)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    PathCollector,
    path_ranges,
    verify_inclusion,
)


def leaves(n: int) -> list[bytes]:
    return [f"sha256:{i:064x}".encode() for i in range(n)]


def collect(n: int, indices: list[int]) -> tuple[bytes, dict[int, list[bytes]]]:
    collector = PathCollector(n, indices)
    for leaf in leaves(n):
        collector.append(leaf)
    return collector.finish()


@given(st.data())
def test_every_collected_path_is_the_path_the_whole_tree_gives(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=300))
    indices = data.draw(st.lists(st.integers(min_value=0, max_value=n - 1), max_size=12))
    tree = MerkleTree(leaves(n))

    root, paths = collect(n, indices)

    assert root == tree.root()
    assert set(paths) == set(indices)
    for index in indices:
        assert paths[index] == tree.inclusion_proof(index)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 64, 65, 1000])
def test_the_first_and_last_leaves_of_any_size_are_proven_against_the_root(n: int) -> None:
    root, paths = collect(n, [0, n - 1])

    for index in (0, n - 1):
        assert verify_inclusion(leaves(n)[index], index, n, paths[index], root)


def test_path_ranges_name_one_range_per_level_nearest_sibling_first() -> None:
    assert path_ranges(0, 1) == []
    assert path_ranges(0, 5) == [(1, 2), (2, 4), (4, 5)]
    assert path_ranges(4, 5) == [(0, 4)]
    assert path_ranges(6, 7) == [(4, 6), (0, 4)]


def test_an_empty_tree_has_the_empty_root_and_no_paths() -> None:
    assert collect(0, []) == (EMPTY_ROOT, {})


def test_finishing_before_every_leaf_was_seen_is_refused() -> None:
    collector = PathCollector(3, [0])
    collector.append(b"a")

    with pytest.raises(ValueError, match="saw 1 of 3 leaves"):
        collector.finish()


def test_a_leaf_beyond_the_size_is_refused() -> None:
    collector = PathCollector(1, [])
    collector.append(b"a")

    with pytest.raises(IndexError):
        collector.append(b"b")


def test_a_leaf_outside_the_tree_has_no_path() -> None:
    with pytest.raises(IndexError):
        PathCollector(3, [3])
