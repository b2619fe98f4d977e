"""The content-addressed store on a real filesystem."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.artifacts.cas import ContentStore, CorruptBlob, MissingBlob, UnreadableFile
from conveyor.core import digest
from conveyor.core.errors import ArtifactError

BlobFile = Callable[[str], Path]


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_identical_content_is_stored_once(cas: ContentStore, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"same bytes")
    first = cas.put_file(source)
    second = cas.put_bytes(b"same bytes")
    assert first == second
    assert first.digest == digest.of_bytes(b"same bytes")
    assert first.size == len(b"same bytes")
    assert [info.digest for info in cas.iter_blobs()] == [first.digest]


def test_blobs_are_read_only(cas: ContentStore, blob_file: BlobFile) -> None:
    blob = cas.put_bytes(b"frozen")
    assert stat.S_IMODE(blob_file(blob.digest).stat().st_mode) == 0o444


def test_putting_other_content_never_touches_a_stored_blob(
    cas: ContentStore, blob_file: BlobFile
) -> None:
    original = cas.put_bytes(b"original")
    inode = blob_file(original.digest).stat().st_ino
    other = cas.put_bytes(b"imposter")
    assert other.digest != original.digest
    assert blob_file(original.digest).stat().st_ino == inode
    assert cas.read_bytes(original.digest) == b"original"


def test_putting_stored_content_again_keeps_the_blob_and_refreshes_its_last_use(
    cas: ContentStore, blob_file: BlobFile, tmp_path: Path
) -> None:
    blob = cas.put_bytes(b"popular")
    path = blob_file(blob.digest)
    inode = path.stat().st_ino
    os.utime(path, (1000.0, 1000.0))
    source = tmp_path / "again"
    source.write_bytes(b"popular")
    cas.put_file(source)
    assert path.stat().st_ino == inode
    assert path.stat().st_mtime > time.time() - 60
    assert [info.last_used for info in cas.iter_blobs()] == [path.stat().st_mtime]


def test_a_put_repairs_a_stored_blob_of_the_wrong_size(
    cas: ContentStore, blob_file: BlobFile
) -> None:
    blob = cas.put_bytes(b"whole content")
    path = blob_file(blob.digest)
    path.chmod(0o644)
    path.write_bytes(b"whole")
    assert cas.put_bytes(b"whole content") == blob
    assert cas.read_bytes(blob.digest) == b"whole content"


def test_has_size_and_open_describe_a_stored_blob(cas: ContentStore) -> None:
    blob = cas.put_bytes(b"0123456789")
    assert cas.has(blob.digest)
    assert cas.size(blob.digest) == 10
    with cas.open(blob.digest) as stream:
        assert stream.read() == b"0123456789"


def test_a_missing_blob_is_reported_as_missing(cas: ContentStore, tmp_path: Path) -> None:
    absent = digest.of_bytes(b"never stored")
    assert not cas.has(absent)
    for call in (
        lambda: cas.size(absent),
        lambda: cas.open(absent),
        lambda: cas.read_bytes(absent),
        lambda: cas.restore(absent, tmp_path / "out"),
    ):
        with pytest.raises(MissingBlob) as caught:
            call()
        assert caught.value.digest == absent
    assert not (tmp_path / "out").exists()


def test_restore_writes_the_content_and_creates_parent_directories(
    cas: ContentStore, workspace: Path
) -> None:
    blob = cas.put_bytes(b"built")
    dest = workspace / "dist" / "deep" / "app.bin"
    cas.restore(blob.digest, dest)
    assert dest.read_bytes() == b"built"
    assert dest.stat().st_mode & 0o222, "a restored file is the user's to edit"


def test_restore_keeps_the_executable_bit_when_the_mode_says_so(
    cas: ContentStore, workspace: Path
) -> None:
    blob = cas.put_bytes(b"#!/bin/sh\necho hi\n")
    cas.restore(blob.digest, workspace / "run.sh", mode=0o755)
    cas.restore(blob.digest, workspace / "data.txt", mode=0o644)
    assert stat.S_IMODE((workspace / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((workspace / "data.txt").stat().st_mode) == 0o644


def test_restore_leaves_an_identical_destination_untouched(
    cas: ContentStore, workspace: Path
) -> None:
    blob = cas.put_bytes(b"unchanged")
    dest = workspace / "out.txt"
    dest.write_bytes(b"unchanged")
    os.utime(dest, (1000.0, 1000.0))
    inode = dest.stat().st_ino
    cas.restore(blob.digest, dest)
    assert (dest.stat().st_ino, dest.stat().st_mtime) == (inode, 1000.0)


def test_restore_fixes_only_the_mode_of_an_identical_destination(
    cas: ContentStore, workspace: Path
) -> None:
    blob = cas.put_bytes(b"tool")
    dest = workspace / "tool"
    dest.write_bytes(b"tool")
    dest.chmod(0o644)
    inode = dest.stat().st_ino
    cas.restore(blob.digest, dest, mode=0o755)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert dest.stat().st_ino == inode


@pytest.mark.parametrize("existing", [b"other bytes", b"differ!!!", b""])
def test_restore_replaces_a_destination_with_other_content(
    cas: ContentStore, workspace: Path, existing: bytes
) -> None:
    blob = cas.put_bytes(b"fresh!!!!")
    dest = workspace / "out.txt"
    dest.write_bytes(existing)
    cas.restore(blob.digest, dest)
    assert dest.read_bytes() == b"fresh!!!!"


def test_restore_of_a_corrupt_blob_raises_deletes_it_and_leaves_the_destination_alone(
    cas: ContentStore, workspace: Path, blob_file: BlobFile
) -> None:
    blob = cas.put_bytes(b"precious release binary")
    flip_a_byte(blob_file(blob.digest))
    dest = workspace / "app.bin"
    dest.write_bytes(b"what was there before")
    with pytest.raises(CorruptBlob) as caught:
        cas.restore(blob.digest, dest)
    assert caught.value.digest == blob.digest
    assert caught.value.found != blob.digest
    assert isinstance(caught.value, ArtifactError)
    assert not cas.has(blob.digest)
    assert dest.read_bytes() == b"what was there before"
    assert [p.name for p in workspace.iterdir()] == ["app.bin"], "no temp file is left"


def test_read_bytes_of_a_corrupt_blob_raises_and_deletes_it(
    cas: ContentStore, blob_file: BlobFile
) -> None:
    blob = cas.put_bytes(b"soon to rot")
    flip_a_byte(blob_file(blob.digest))
    assert cas.read_bytes(blob.digest, verify=False) != b"soon to rot"
    with pytest.raises(CorruptBlob):
        cas.read_bytes(blob.digest)
    assert not cas.has(blob.digest)


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:../../etc",
        "sha256:../../../../tmp/" + "a" * 52,
        "sha256:" + "A" * 64,
        "sha256:" + "0" * 63,
        "sha512:" + "0" * 64,
        "0" * 64,
        "",
    ],
)
def test_malformed_digests_are_refused_without_touching_the_filesystem(
    cas: ContentStore, tmp_path: Path, bad: str
) -> None:
    before = sorted(tmp_path.rglob("*"))
    calls: list[Callable[[], object]] = [
        lambda: cas.has(bad),
        lambda: cas.size(bad),
        lambda: cas.open(bad),
        lambda: cas.read_bytes(bad),
        lambda: cas.restore(bad, tmp_path / "out"),
        lambda: cas.delete(bad),
        lambda: cas.touch(bad),
    ]
    for call in calls:
        with pytest.raises(ArtifactError, match="not a sha256 digest"):
            call()
    assert sorted(tmp_path.rglob("*")) == before


def test_iter_blobs_lists_blobs_and_ignores_temp_files_and_strays(
    cas: ContentStore, blob_file: BlobFile
) -> None:
    blob = cas.put_bytes(b"listed")
    (cas.root / "tmp").mkdir(parents=True, exist_ok=True)
    (cas.root / "tmp" / "blob.1.abc.conveyor-tmp").write_bytes(b"half a blo")
    shard = blob_file(blob.digest).parent
    (shard / "notes.txt").write_text("not a blob")
    (cas.root / "sha256" / "zz").mkdir()
    infos = list(cas.iter_blobs())
    assert [(i.digest, i.size) for i in infos] == [(blob.digest, 6)]
    assert cas.total_size() == 6


def test_delete_removes_a_blob_unless_it_was_used_recently(cas: ContentStore) -> None:
    blob = cas.put_bytes(b"short-lived")
    assert not cas.delete(blob.digest, unless_used_after=time.time() - 600)
    assert cas.delete(blob.digest)
    assert not cas.delete(blob.digest)
    assert not cas.has(blob.digest)


def test_stale_temp_files_are_removed_and_fresh_ones_kept(cas: ContentStore) -> None:
    tmp = cas.root / "tmp"
    tmp.mkdir(parents=True)
    old, fresh = tmp / "blob.1.old.conveyor-tmp", tmp / "blob.2.new.conveyor-tmp"
    old.write_bytes(b"left by a killed run")
    fresh.write_bytes(b"being written now")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert cas.remove_stale_temp() == 1
    assert not old.exists()
    assert fresh.exists()


def test_the_store_is_created_lazily(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "nowhere")
    assert list(store.iter_blobs()) == []
    assert store.total_size() == 0
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> ContentStore:
    return ContentStore(tmp_path_factory.mktemp("property") / "cas")


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=4096))
def test_put_then_read_returns_the_same_bytes_and_digest(
    shared_store: ContentStore, data: bytes
) -> None:
    blob = shared_store.put_bytes(data)
    assert blob.digest == digest.of_bytes(data)
    assert blob.size == len(data)
    assert shared_store.read_bytes(blob.digest) == data


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=4096), name=st.sampled_from(["a.bin", "sub/b.bin"]))
def test_put_file_then_restore_round_trips_the_content(
    shared_store: ContentStore, tmp_path_factory: pytest.TempPathFactory, data: bytes, name: str
) -> None:
    scratch = tmp_path_factory.mktemp("round-trip")
    source = scratch / "source"
    source.write_bytes(data)
    blob = shared_store.put_file(source)
    assert blob.digest == digest.of_bytes(data)
    shared_store.restore(blob.digest, scratch / "out" / name)
    assert (scratch / "out" / name).read_bytes() == data


def test_a_file_that_cannot_be_read_is_the_files_fault_not_the_stores(
    cas: ContentStore, tmp_path: Path
) -> None:
    with pytest.raises(UnreadableFile, match=r"cannot read .*gone\.txt: No such file") as raised:
        cas.put_file(tmp_path / "gone.txt")
    assert raised.value.reason == "No such file or directory"
    assert list(cas.iter_blobs()) == []


def test_a_store_that_cannot_take_a_file_is_the_stores_fault(
    cas: ContentStore, tmp_path: Path
) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"bytes")
    shutil.rmtree(cas.root / "tmp", ignore_errors=True)
    cas.root.mkdir(parents=True, exist_ok=True)
    (cas.root / "tmp").write_text("not a directory")  # the store cannot write its temp files
    with pytest.raises(ArtifactError, match=r"cannot store .*a\.txt") as raised:
        cas.put_file(source)
    assert not isinstance(raised.value, UnreadableFile)
