"""The part of a job's log one attempt wrote, read from the whole log (live or stored)."""

from __future__ import annotations

from conveyor.engine.logs import attempt_marker, attempt_part

LOG = (
    "first\n"
    "--- attempt 1 failed: exited with code 1 ---\n"
    f"{attempt_marker(2, 3, 0.5)}\n"
    "second\n"
    "--- attempt 2 failed: exited with code 1 ---\n"
    f"{attempt_marker(3, 3, 1.0)}\n"
    "third\n"
)


def test_the_marker_names_the_attempt_its_count_and_the_delay() -> None:
    assert attempt_marker(2, 3, 0.5) == "--- attempt 2 of 3 (after 0.5s) ---"
    assert attempt_marker(3, 3, 1.0) == "--- attempt 3 of 3 (after 1s) ---"


def test_the_running_attempts_part_follows_its_marker() -> None:
    assert attempt_part(LOG, 3) == "third\n"
    while_second_ran = LOG[: LOG.index("--- attempt 2 failed")]
    assert attempt_part(while_second_ran, 2) == "second\n"


def test_a_part_ends_where_the_next_attempt_begins() -> None:
    # The next attempt may begin before this one is recorded as kept.
    assert attempt_part(LOG, 1) == "first\n--- attempt 1 failed: exited with code 1 ---\n"
    assert attempt_part(LOG, 2) == "second\n--- attempt 2 failed: exited with code 1 ---\n"


def test_attempt_1s_part_begins_the_log() -> None:
    assert attempt_part("only\n", 1) == "only\n"
    assert attempt_part("", 1) == ""


def test_an_attempt_not_begun_is_none() -> None:
    assert attempt_part(LOG, 4) is None
    assert attempt_part("--- attempt 2 of 2 (after 1s", 2) is None  # its marker half-written
    assert attempt_part(f"{attempt_marker(2, 2, 1)}\n", 2) == ""  # begun, nothing written yet


def test_a_marker_on_the_first_line_counts_and_the_last_one_wins() -> None:
    log = f"{attempt_marker(2, 2, 1)}\nfake:\n{attempt_marker(2, 2, 1)}\nreal\n"
    assert attempt_part(log, 2) == "real\n"
    assert attempt_part(f"{attempt_marker(2, 2, 1)}\nout\n", 2) == "out\n"


def test_the_last_attempt_of_a_job_that_is_over_runs_to_the_end() -> None:
    # Its output may hold lines that look like a later attempt's marker.
    printed = f"before\n{attempt_marker(2, 3, 1)}\nafter\n"
    assert attempt_part(printed, 1) == "before\n"  # while it runs, the next may have begun
    assert attempt_part(printed, 1, last=True) == printed
    assert attempt_part(LOG + printed, 3, last=True) == "third\n" + printed
