"""The RFC 6962 Merkle tree: known vectors, the RFC's own definitions, and proof properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conveyor.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MerkleTree,
    consistency_proof,
    event_leaf,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def h(hexdigest: str) -> bytes:
    return bytes.fromhex(hexdigest)


def flip(data: bytes, bit: int) -> bytes:
    """`data` with one bit inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- the RFC 6962 definitions, written out literally (section 2.1) ---------------------


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return sha256(b"")
    if len(d) == 1:
        return sha256(b"\x00" + d[0])
    k = largest_power_of_two_below(len(d))
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = largest_power_of_two_below(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = largest_power_of_two_below(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


# --- the Certificate Transparency reference vectors -----------------------------------
# From the RFC 6962 test data shared by the CT implementations
# (transparency-dev/merkle, proof/verify_test.go): eight leaves, the root of
# each prefix, and known inclusion and consistency proofs.

CT_LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
CT_ROOTS = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# (0-based leaf index, tree size, proof)
CT_INCLUSION = [
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
# (first size, second size, proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


def test_the_empty_tree_hashes_to_sha256_of_nothing() -> None:
    assert sha256(b"") == EMPTY_ROOT
    assert root([]) == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_leaves_and_nodes_are_hashed_with_their_rfc_prefixes() -> None:
    assert leaf_hash(b"abc") == sha256(b"\x00abc")
    assert node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)
    assert leaf_hash(b"") == CT_ROOTS[0]


def test_small_trees_hash_as_computed_by_hand() -> None:
    a, b, c, d, e = (leaf_hash(x) for x in (b"a", b"b", b"c", b"d", b"e"))

    assert root([b"a"]) == a
    assert root([b"a", b"b"]) == node_hash(a, b)
    assert root([b"a", b"b", b"c"]) == node_hash(node_hash(a, b), c)
    assert root([b"a", b"b", b"c", b"d"]) == node_hash(node_hash(a, b), node_hash(c, d))
    assert root([b"a", b"b", b"c", b"d", b"e"]) == node_hash(
        node_hash(node_hash(a, b), node_hash(c, d)), e
    )


def test_an_events_leaf_is_its_chain_hash_as_utf8_text() -> None:
    digest = "sha256:" + "ab" * 32

    assert event_leaf(digest) == digest.encode()
    assert root([event_leaf(digest)]) == sha256(b"\x00" + digest.encode())


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size: int) -> None:
    assert root(CT_LEAVES[:size]) == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_inclusion_proofs_match_the_certificate_transparency_vectors(
    index: int, size: int, expected: list[bytes]
) -> None:
    leaves = CT_LEAVES[:size]

    assert inclusion_proof(index, leaves) == expected
    assert verify_inclusion(leaves[index], index, size, expected, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("m", "n", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_certificate_transparency_vectors(
    m: int, n: int, expected: list[bytes]
) -> None:
    assert consistency_proof(m, CT_LEAVES[:n]) == expected
    assert verify_consistency(m, n, CT_ROOTS[m - 1], CT_ROOTS[n - 1], expected)


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_corrupted_certificate_transparency_inclusion_proofs_fail(
    index: int, size: int, proof: list[bytes]
) -> None:
    leaf, good_root = CT_LEAVES[index], CT_ROOTS[size - 1]
    flipped = [flip(proof[0], 3), *proof[1:]]

    assert not verify_inclusion(leaf, index + 1, size, proof, good_root)
    assert not verify_inclusion(leaf, index ^ 2, size, proof, good_root)
    assert not verify_inclusion(leaf, index, size * 2, proof, good_root)
    assert not verify_inclusion(leaf, index, size // 2, proof, good_root)
    assert not verify_inclusion(b"WrongLeaf", index, size, proof, good_root)
    assert not verify_inclusion(leaf, index, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(leaf, index, size, [*proof, b""], good_root)
    assert not verify_inclusion(leaf, index, size, [*proof, good_root], good_root)
    assert not verify_inclusion(leaf, index, size, [good_root, *proof], good_root)
    assert not verify_inclusion(leaf, index, size, proof[:-1], good_root)
    assert not verify_inclusion(leaf, index, size, flipped, good_root)


def test_edge_cases_of_consistency_follow_rfc_9162() -> None:
    r1, r2 = CT_ROOTS[0], CT_ROOTS[1]

    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, CT_ROOTS[4], [])
    assert verify_consistency(1, 1, r1, r1, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert not verify_consistency(1, 1, r1, r1, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, r1, r1, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, r1, [EMPTY_ROOT])
    assert not verify_consistency(2, 1, r2, r1, [])
    assert not verify_consistency(1, 2, r1, r2, [])


@pytest.mark.parametrize("n", range(40))
def test_the_tree_follows_the_rfc_definitions_for_every_size(n: int) -> None:
    leaves = [bytes([i]) * (i % 3) for i in range(n)]
    tree = MerkleTree(leaves)

    assert tree.root() == mth(leaves)
    for m in range(n):
        assert tree.inclusion_proof(m) == path(m, leaves)
    for m in range(1, n):
        assert tree.consistency_proof(m) == subproof(m, leaves, True)


def test_the_frontier_gives_the_root_of_every_prefix_and_resumes_from_its_hashes() -> None:
    leaves = [str(i).encode() for i in range(70)]
    frontier = Frontier()

    assert frontier.root() == EMPTY_ROOT
    for n, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.root() == root(leaves[:n])
        resumed = Frontier.resume(n, frontier.hashes)
        assert len(frontier.hashes) == n.bit_count()
        assert resumed.root() == frontier.root()
    resumed.append(b"next")
    assert resumed.root() == root([*leaves, b"next"])


def test_a_frontier_with_the_wrong_number_of_hashes_is_refused() -> None:
    with pytest.raises(ValueError, match="3 subtree hashes"):
        Frontier.resume(7, [EMPTY_ROOT, EMPTY_ROOT])
    with pytest.raises(ValueError):
        Frontier.resume(1, [b"short"])


def test_proofs_in_a_tree_of_a_hundred_thousand_events_verify() -> None:
    leaves = [event_leaf(f"sha256:{i:064x}") for i in range(100_000)]
    tree = MerkleTree(leaves)
    top = tree.root()

    for index in (0, 1, 65_535, 65_536, 99_998, 99_999):
        proof = tree.inclusion_proof(index)
        assert len(proof) <= 17
        assert verify_inclusion(leaves[index], index, tree.size, proof, top)
    m = 65_537
    assert verify_consistency(m, tree.size, root(leaves[:m]), top, tree.consistency_proof(m))


def test_proofs_outside_the_tree_are_refused() -> None:
    tree = MerkleTree([b"a", b"b"])

    with pytest.raises(IndexError):
        tree.inclusion_proof(2)
    with pytest.raises(IndexError):
        tree.consistency_proof(3)
    assert not verify_inclusion(b"a", -1, 2, [], tree.root())


# --- properties ------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=48, unique=True)


@given(leaf_lists, st.data())
def test_every_inclusion_proof_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1), label="index")

    proof = inclusion_proof(index, leaves)

    assert verify_inclusion(leaves[index], index, len(leaves), proof, root(leaves))


@given(leaf_lists, st.data())
def test_an_inclusion_proof_fails_for_another_leaf_or_index(
    leaves: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1), label="index")
    other = data.draw(st.integers(0, len(leaves) - 1), label="other")
    stranger = data.draw(st.binary(max_size=12), label="stranger")
    assume(other != index and stranger != leaves[index])
    proof, top = inclusion_proof(index, leaves), root(leaves)

    assert not verify_inclusion(stranger, index, len(leaves), proof, top)
    assert not verify_inclusion(leaves[index], other, len(leaves), proof, top)


@given(leaf_lists, st.data())
def test_an_inclusion_proof_with_any_element_changed_added_or_removed_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1), label="index")
    proof, top, size = inclusion_proof(index, leaves), root(leaves), len(leaves)
    leaf = leaves[index]
    assert not verify_inclusion(leaf, index, size, [*proof, top], top)
    if not proof:
        return
    at = data.draw(st.integers(0, len(proof) - 1), label="at")
    bit = data.draw(st.integers(0, 255), label="bit")
    changed = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]

    assert not verify_inclusion(leaf, index, size, changed, top)
    assert not verify_inclusion(leaf, index, size, proof[:at] + proof[at + 1 :], top)


@given(leaf_lists, st.binary(max_size=12), st.data())
def test_an_inclusion_proof_fails_against_a_different_root(
    leaves: list[bytes], extra: bytes, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1), label="index")
    proof = inclusion_proof(index, leaves)

    assert not verify_inclusion(leaves[index], index, len(leaves), proof, root([*leaves, extra]))


@given(st.lists(st.binary(max_size=12), max_size=48), st.data())
def test_every_consistency_proof_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    m = data.draw(st.integers(0, n), label="m")

    proof = consistency_proof(m, leaves)

    assert verify_consistency(m, n, root(leaves[:m]), root(leaves), proof)


@given(leaf_lists, st.binary(max_size=12), st.data())
def test_a_consistency_proof_fails_against_a_different_root(
    leaves: list[bytes], extra: bytes, data: st.DataObject
) -> None:
    n = len(leaves)
    m = data.draw(st.integers(1, n), label="m")
    proof = consistency_proof(m, leaves)
    old, new, other = root(leaves[:m]), root(leaves), root([*leaves, extra])
    assume(other not in (old, new))

    assert not verify_consistency(m, n, old, other, proof)
    assert not verify_consistency(m, n, other, new, proof)
    assert not verify_consistency(m, n, new, old, proof) or old == new


@given(leaf_lists, st.data())
def test_a_consistency_proof_with_an_element_changed_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    m = data.draw(st.integers(1, n), label="m")
    proof = consistency_proof(m, leaves)
    assume(proof)
    at = data.draw(st.integers(0, len(proof) - 1), label="at")
    changed = [*proof[:at], sha256(proof[at]), *proof[at + 1 :]]

    assert not verify_consistency(m, n, root(leaves[:m]), root(leaves), changed)
