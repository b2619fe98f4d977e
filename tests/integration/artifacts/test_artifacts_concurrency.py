"""Real processes sharing one store: concurrent writers, a concurrent prune, a SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.artifacts.cache import CacheEntry, JobCache
from conveyor.artifacts.cas import ContentStore
from conveyor.core import digest

# Each worker puts content both workers share and content of its own, stores
# an entry under a shared key and one under its own, then looks entries up and
# restores them into the one workspace both use. It exits 1 on a bad lookup.
WORKER = r"""
import sys, time
from pathlib import Path
from conveyor.artifacts.cache import CacheEntry, CachedOutput, Corrupt, JobCache
from conveyor.core.records import TestCounts
from conveyor.artifacts.cas import ContentStore
from conveyor.core import digest

root, me, rounds, misses_ok = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
cas = ContentStore(root / "cas")
cache = JobCache(root / "cache", cas)
scratch = root / ("scratch-" + me)
scratch.mkdir()
while not (root / "go").exists():
    time.sleep(0.001)
started = time.time()
for i in range(rounds):
    shared = cas.put_bytes(b"shared %d " % i * 30000)
    source = scratch / "out"
    source.write_bytes((me + str(i)).encode() * 60000)
    own = cas.put_file(source)
    for name, blobs in (("shared-%d" % i, (shared,)), (me + "-%d" % i, (shared, own))):
        cache.store(CacheEntry(
            key=digest.of_text(name), job=name,
            outputs=tuple(CachedOutput("o/%s/%d" % (name, n), b.digest, b.size, 0o644)
                          for n, b in enumerate(blobs)),
            log_digest=cas.put_bytes(name.encode()).digest, exit_code=0, tests=TestCounts(),
            fingerprint={"worker": me}, created_at=time.time(), duration_s=0.0,
        ))
    for name in ("shared-%d" % i, "shared-%d" % max(i - 1, 0), me + "-%d" % i):
        found = cache.lookup(digest.of_text(name))
        if isinstance(found, Corrupt) or (found is None and not misses_ok):
            print("bad lookup of", name, found)
            sys.exit(1)
        if found is not None:
            cache.restore(found, root / "workspace")
print(started, time.time())
"""

PRUNER = r"""
import sys
from pathlib import Path
from conveyor.artifacts.cache import JobCache
from conveyor.artifacts.cas import ContentStore

root = Path(sys.argv[1])
cache = JobCache(root / "cache", ContentStore(root / "cas"))
passes = 0
while not (root / "done").exists():
    cache.prune(0)
    passes += 1
print(passes)
"""

# Most of its time goes to streaming a large file into the store, each time
# with a new first few bytes, so a kill usually lands in the middle of a put.
WRITER = r"""
import os, sys
from pathlib import Path
from conveyor.artifacts.cas import ContentStore

cas = ContentStore(Path(sys.argv[1]))
source = Path(sys.argv[2])
source.write_bytes(os.urandom(1 << 24))
while True:
    with open(source, "r+b") as f:
        f.write(os.urandom(8))
    cas.put_file(source)
    cas.put_bytes(os.urandom(1 << 16))
"""


def overlap(*outputs: str) -> float:
    """Seconds during which every worker was inside its loop."""
    spans = [tuple(map(float, out.split())) for out in outputs]
    return min(end for _, end in spans) - max(start for start, _ in spans)


_SPAWNED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """A failed assertion must not leave a worker or pruner spinning after the test."""
    yield
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def spawn(script: str, *args: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _SPAWNED.append(proc)
    return proc


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, out + err
    return out


def assert_store_is_whole(root: Path) -> None:
    """Every blob matches its digest, every entry is usable and no temp file is left."""
    cas = ContentStore(root / "cas")
    cache = JobCache(root / "cache", cas)
    infos = list(cas.iter_blobs())
    assert infos
    for info in infos:
        assert cas.read_bytes(info.digest) is not None  # raises CorruptBlob otherwise
    for manifest in (root / "cache" / "entries").glob("*/*.json"):
        found = cache.lookup("sha256:" + manifest.stem)
        assert isinstance(found, CacheEntry), found
    temp_dirs = [root / "cas" / "tmp", root / "cache" / "tmp"]
    assert [p for tmp in temp_dirs if tmp.exists() for p in tmp.iterdir()] == []
    for restored in (root / "workspace").rglob("*"):
        if restored.is_file():
            assert cas.has(digest.of_file(restored)), f"{restored} is not whole"


def test_two_processes_putting_and_caching_at_once_leave_only_whole_blobs_and_entries(
    tmp_path: Path,
) -> None:
    workers = [spawn(WORKER, tmp_path, f"w{n}", 40, 0) for n in range(2)]
    (tmp_path / "go").touch()
    assert overlap(*(finish(worker) for worker in workers)) > 0
    assert_store_is_whole(tmp_path)
    entries = list((tmp_path / "cache" / "entries").glob("*/*.json"))
    assert len(entries) == 40 + 2 * 40


def test_a_concurrent_prune_never_breaks_a_run_that_is_storing_and_restoring(
    tmp_path: Path,
) -> None:
    workers = [spawn(WORKER, tmp_path, f"w{n}", 40, 1) for n in range(2)]
    pruner = spawn(PRUNER, tmp_path)
    (tmp_path / "go").touch()
    assert overlap(*(finish(worker) for worker in workers)) > 0
    (tmp_path / "done").touch()
    assert int(finish(pruner)) > 0
    assert_store_is_whole(tmp_path)


@pytest.mark.parametrize("delay_s", [0.05, 0.2, 0.45])
def test_a_writer_killed_at_any_moment_leaves_no_partial_blob(
    tmp_path: Path, delay_s: float
) -> None:
    writer = spawn(WRITER, tmp_path / "cas", tmp_path / "source")
    deadline = time.monotonic() + 30
    while not list((tmp_path / "cas").glob("sha256/*/*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay_s)
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)
    cas = ContentStore(tmp_path / "cas")
    infos = list(cas.iter_blobs())
    assert infos
    for info in infos:
        assert digest.of_bytes(cas.read_bytes(info.digest)) == info.digest
    JobCache(tmp_path / "cache", cas).prune(10**12, now=time.time() + 7200)
    assert not list((tmp_path / "cas" / "tmp").iterdir())
