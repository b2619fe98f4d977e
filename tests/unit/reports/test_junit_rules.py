"""How testcases are classified and summaries combined."""

from __future__ import annotations

from pathlib import Path

from conveyor.reports.junit import MESSAGE_LIMIT, TestCaseFailure, TestSummary, parse_junit


def _report(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n', encoding="utf-8")
    return path


def _failure(name: str) -> TestCaseFailure:
    return TestCaseFailure(name=name, classname="suite", message="boom", file="junit.xml")


def test_a_report_without_testcases_is_valid_and_counts_nothing(tmp_path: Path) -> None:
    for body in ("<testsuites/>", '<testsuite name="empty" tests="0"></testsuite>'):
        assert parse_junit(_report(tmp_path, body)) == TestSummary.empty()


def test_counts_come_from_testcases_not_from_suite_attributes(tmp_path: Path) -> None:
    body = (
        '<testsuite name="s" tests="10" failures="4" errors="2" skipped="3">'
        '<testcase name="only" classname="s"/>'
        "</testsuite>"
    )

    summary = parse_junit(_report(tmp_path, body))

    assert (summary.passed, summary.failed, summary.skipped) == (1, 0, 0)


def test_a_testcase_with_several_problems_counts_as_one_failure(tmp_path: Path) -> None:
    body = (
        "<testsuites><testsuite>"
        '<testcase name="t" classname="c">'
        '<failure message="first">x</failure><failure message="second"/><error message="third"/>'
        "</testcase>"
        "</testsuite></testsuites>"
    )

    summary = parse_junit(_report(tmp_path, body))

    assert (summary.passed, summary.failed, summary.skipped) == (0, 1, 0)
    assert summary.failures[0].message == "first"


def test_a_failure_outweighs_a_skip_in_the_same_testcase(tmp_path: Path) -> None:
    body = (
        '<testsuite><testcase name="t">'
        '<skipped/><error message="teardown broke"/>'
        "</testcase></testsuite>"
    )

    summary = parse_junit(_report(tmp_path, body))

    assert (summary.failed, summary.skipped) == (1, 0)


def test_a_failure_message_is_its_first_line_trimmed_to_the_limit(tmp_path: Path) -> None:
    long_line = "x" * 500
    body = (
        '<testsuite><testcase name="t">'
        f'<failure message="{long_line}&#10;second line"/>'
        "</testcase></testsuite>"
    )

    (failure,) = parse_junit(_report(tmp_path, body)).failures

    assert len(failure.message) == MESSAGE_LIMIT
    assert failure.message.endswith("…")
    assert "second line" not in failure.message


def test_a_failure_without_message_or_text_is_described_by_its_kind(tmp_path: Path) -> None:
    body = '<testsuite><testcase name="t"><error/></testcase></testsuite>'

    (failure,) = parse_junit(_report(tmp_path, body)).failures

    assert failure.message == "error"


def test_a_namespaced_report_is_read_like_a_plain_one(tmp_path: Path) -> None:
    body = (
        '<testsuites xmlns="urn:example:junit"><testsuite>'
        '<testcase name="a"/><testcase name="b"><failure message="no"/></testcase>'
        "</testsuite></testsuites>"
    )

    summary = parse_junit(_report(tmp_path, body))

    assert (summary.passed, summary.failed) == (1, 1)


def test_merging_adds_counts_and_keeps_failures_in_order() -> None:
    first = TestSummary(passed=2, failed=1, skipped=0, failures=(_failure("a"),))
    second = TestSummary(passed=1, failed=1, skipped=3, failures=(_failure("b"),))

    merged = first.merge(second)

    assert merged == TestSummary(
        passed=3, failed=2, skipped=3, failures=(_failure("a"), _failure("b"))
    )
    assert first + second == merged
    assert TestSummary.sum([first, second]) == merged


def test_the_sum_of_no_summaries_is_the_empty_summary() -> None:
    assert TestSummary.sum([]) == TestSummary(passed=0, failed=0, skipped=0, failures=())


def test_a_summary_is_ok_only_when_nothing_failed() -> None:
    assert TestSummary(passed=3, failed=0, skipped=1).ok
    assert not TestSummary(passed=3, failed=1, skipped=0).ok
    assert TestSummary(passed=3, failed=1, skipped=2).total == 6
