"""Job logs: lines joined across chunks, masked, written live, stored compressed."""

from __future__ import annotations

import gzip
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.core.masking import Masker
from conveyor.engine.logs import JobLog, compress, decompress

MakeLog = Callable[..., tuple[JobLog, list[str]]]


@pytest.fixture
def make_log(tmp_path: Path) -> Iterator[MakeLog]:
    """Make a log (and the list its lines go to); every log is closed afterwards."""
    made: list[JobLog] = []

    def make(secrets: tuple[str, ...] = (), *, name: str = "0000") -> tuple[JobLog, list[str]]:
        lines: list[str] = []
        log = JobLog(tmp_path / "logs" / f"{name}.log", Masker(secrets), lines.append)
        made.append(log)
        return log, lines

    yield make
    for log in made:
        log.close()


def _closed(log: JobLog) -> str:
    """The log as stored once the job ended."""
    log.close()
    return decompress(log.compressed().read())


def test_a_line_split_across_chunks_is_one_line(make_log: MakeLog) -> None:
    log, lines = make_log()
    for chunk in (b"hel", b"lo wor", b"ld\nsec", b"ond\n"):
        log.feed(chunk)
    assert lines == ["hello world", "second"]
    log.close()


def test_several_lines_in_one_chunk_are_each_a_line(make_log: MakeLog) -> None:
    log, lines = make_log()
    log.feed(b"one\ntwo\n\nfour\n")
    assert lines == ["one", "two", "", "four"]
    log.close()


def test_crlf_line_endings_are_normalised(make_log: MakeLog) -> None:
    log, lines = make_log()
    log.feed(b"dos\r")
    log.feed(b"\nline\r\n")
    assert lines == ["dos", "line"]
    assert _closed(log) == "dos\nline\n"


def test_a_character_split_across_chunks_is_decoded_whole(make_log: MakeLog) -> None:
    log, lines = make_log()
    data = "naïve ✓\n".encode()
    log.feed(data[:3])
    log.feed(data[3:8])
    log.feed(data[8:])
    assert lines == ["naïve ✓"]
    log.close()


def test_invalid_utf8_is_replaced_not_fatal(make_log: MakeLog) -> None:
    log, lines = make_log()
    log.feed(b"bad \xff byte\n")
    assert lines == ["bad \ufffd byte"]
    log.close()


def test_a_secret_split_across_chunks_is_masked(make_log: MakeLog) -> None:
    log, lines = make_log(("hunter2",))
    log.feed(b"password: hun")
    log.feed(b"ter2 ok\n")
    assert lines == ["password: *** ok"]
    assert "hunter2" not in _closed(log)


def test_every_line_of_a_multi_line_secret_is_masked(make_log: MakeLog) -> None:
    log, lines = make_log(("line-one\nline-two",))
    log.feed(b"a line-one\nline-two b\n")
    assert lines == ["a ***", "*** b"]
    log.close()


def test_notes_from_conveyor_are_masked_too(make_log: MakeLog) -> None:
    log, lines = make_log(("hunter2",))
    log.note("--- retrying with hunter2 ---")
    assert lines == ["--- retrying with *** ---"]
    log.close()


def test_the_live_file_appears_only_after_the_first_line(make_log: MakeLog) -> None:
    log, _ = make_log()
    log.feed(b"no newline yet")
    assert not log.path.exists()
    log.feed(b"\n")
    assert log.path.read_text() == "no newline yet\n"
    log.close()


def test_a_silent_job_leaves_no_file(make_log: MakeLog) -> None:
    log, lines = make_log()
    log.close()
    blob = log.compressed().read()
    log.discard()
    assert lines == []
    assert gzip.decompress(blob) == b""
    assert not log.path.exists()


def test_the_compressed_log_is_gzip_of_exactly_the_masked_text(make_log: MakeLog) -> None:
    log, _ = make_log(("s3cr3t",))
    log.feed(b"token=s3cr3t\r\nnext ")
    log.feed(b"line\nunterminated s3cr3t")
    log.close()
    blob = log.compressed().read()
    expected = "token=***\nnext line\nunterminated ***\n"
    assert gzip.decompress(blob) == expected.encode()
    assert log.path.read_text() == expected
    log.discard()
    assert not log.path.exists()


def test_the_compressed_log_is_the_same_for_the_same_text(make_log: MakeLog) -> None:
    first, _ = make_log(name="a")
    second, _ = make_log(name="b")
    for log in (first, second):
        log.feed(b"same\n")
    first.close()
    second.close()
    assert first.compressed().read() == second.compressed().read()


def test_lines_fed_from_many_threads_are_all_kept_whole(make_log: MakeLog) -> None:
    log, lines = make_log()

    def write(n: int) -> None:
        for i in range(200):
            log.feed(f"t{n}-{i}\n".encode())

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = _closed(log)
    assert sorted(lines) == sorted(f"t{n}-{i}" for n in range(4) for i in range(200))
    assert sorted(text.splitlines()) == sorted(lines)


def test_a_note_comes_after_an_unterminated_line_and_does_not_join_it(make_log: MakeLog) -> None:
    # An attempt that ends mid-line is followed by the next attempt's marker.
    log, lines = make_log()
    log.feed(b"attempt one, no newline")
    log.note("--- attempt 2 of 2 ---")
    log.feed(b"attempt two\n")
    assert lines == ["attempt one, no newline", "--- attempt 2 of 2 ---", "attempt two"]
    assert _closed(log) == ("attempt one, no newline\n--- attempt 2 of 2 ---\nattempt two\n")


def test_a_log_larger_than_memory_is_compressed_from_its_file(make_log: MakeLog) -> None:
    log, _ = make_log(("hunter2",))
    line = b"x" * 1023 + b"\n"
    for _ in range(9 * 1024):
        log.feed(line)
    log.feed(b"tail hunter2")
    text = _closed(log)
    assert len(text) == 9 * 1024 * 1024 + len("tail ***\n")
    assert text.endswith("x\ntail ***\n")


def test_since_a_mark_is_what_was_written_after_it_partial_line_ended(make_log: MakeLog) -> None:
    log, _ = make_log(("hunter2",))
    log.feed("früh ☕ hunter2\n".encode())
    mark = log.mark()
    log.feed("später 🚀\nno newline".encode())
    assert decompress(log.compressed(mark).read()) == "später 🚀\nno newline\n"
    assert decompress(log.compressed(0).read()) == "früh ☕ ***\nspäter 🚀\nno newline\n"
    assert _closed(log).endswith("no newline\n")  # ended once, not twice


def test_a_mark_before_anything_was_written_is_the_start(make_log: MakeLog) -> None:
    log, _ = make_log()
    assert log.mark() == 0
    assert decompress(log.compressed(0).read()) == ""
    log.feed(b"one\n")
    assert decompress(log.compressed(0).read()) == "one\n"


def test_since_a_mark_past_the_memory_limit_reads_only_that_part(make_log: MakeLog) -> None:
    log, _ = make_log()
    line = "x" * 1000 + "ü" * 11 + "\n"  # 1,012 characters, 1,023 bytes
    for _ in range(9 * 1024):  # 9.3 million characters: past the 8 MiB kept in memory
        log.feed(line.encode())
    mark = log.mark()
    log.feed("tail 🚀\n".encode())
    assert decompress(log.compressed(mark).read()) == "tail 🚀\n"
    before = log.mark()
    log.close()
    assert (
        decompress(log.compressed(before).read()) == ""
    )  # the file is closed, and nothing followed


def test_a_log_past_the_memory_limit_is_compressed_as_read_with_bounded_memory(
    make_log: MakeLog,
) -> None:
    # A job may print gigabytes: its log is never held whole, neither plain nor compressed.
    log, _ = make_log()
    line = (bytes(range(48, 122)) * 13 + b"\n").decode()  # 963 characters of varied text
    for _ in range(30 * 1024):  # 29 MiB
        log.feed(line.encode())
    log.close()
    size = log.path.stat().st_size
    assert size > 28 << 20

    tracemalloc.start()
    try:
        with log.compressed() as stream:
            pieces = []
            while piece := stream.read(1 << 20):
                pieces.append(len(piece))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8 << 20, peak
    expected = compress(log.path.read_bytes())
    assert sum(pieces) == len(expected)
    assert log.compressed().read() == expected  # the same bytes as a log kept in memory gives


@pytest.mark.parametrize("content", [b"", b"one line\n", b"x" * 100_000, bytes(range(256)) * 64])
def test_a_stored_log_is_gzip_without_a_time(content: bytes) -> None:
    # Equal logs are one blob in the store: nothing in the bytes depends on when.
    stored = compress(content)
    assert stored[:4] == b"\x1f\x8b\x08\x00" and stored[4:8] == bytes(4)  # gzip, mtime 0
    assert gzip.decompress(stored) == content
