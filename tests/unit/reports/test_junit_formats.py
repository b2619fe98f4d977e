"""Reports as each tool writes them: real pytest output, and fixtures in the shape of the others."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conveyor.reports.junit import TestCaseFailure, TestSummary, parse_junit, parse_junit_files

FIXTURES = Path(__file__).parent / "fixtures"

SAMPLE_TESTS = """
import pytest


@pytest.fixture
def database():
    raise RuntimeError("database is down")


def test_adds():
    assert 1 + 1 == 2


@pytest.mark.parametrize("n", [1, 2])
def test_is_positive(n):
    assert n > 0


def test_totals_agree():
    assert 1 + 1 == 3, "totals disagree"


def test_reads_rows(database):
    pass


@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False
"""


def _run_pytest(workdir: Path) -> Path:
    (workdir / "tests").mkdir()
    (workdir / "tests" / "test_app.py").write_text(textwrap.dedent(SAMPLE_TESTS))
    (workdir / "pytest.ini").write_text("[pytest]\n")
    report = workdir / "reports" / "junit.xml"
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return report


def test_a_real_pytest_report_counts_passes_failures_errors_and_skips(tmp_path: Path) -> None:
    summary = parse_junit(_run_pytest(tmp_path))

    assert (summary.passed, summary.failed, summary.skipped) == (3, 2, 2)
    assert [(f.classname, f.name) for f in summary.failures] == [
        ("tests.test_app", "test_totals_agree"),
        ("tests.test_app", "test_reads_rows"),
    ]


def test_a_real_pytest_report_gives_the_first_line_of_each_failure(tmp_path: Path) -> None:
    report = _run_pytest(tmp_path)

    failed, errored = parse_junit(report).failures

    assert "totals disagree" in failed.message
    assert "\n" not in failed.message
    assert "database is down" in errored.message
    assert failed.file == str(report)


def test_a_surefire_report_counts_testcases_and_ignores_flaky_reruns() -> None:
    summary = parse_junit(FIXTURES / "surefire.xml")

    assert (summary.passed, summary.failed, summary.skipped) == (3, 2, 1)
    assert summary.failures == (
        TestCaseFailure(
            name="roundsTaxHalfEven",
            classname="com.example.billing.InvoiceServiceTest",
            message="expected: <10.05> but was: <10.04>",
            file=str(FIXTURES / "surefire.xml"),
        ),
        TestCaseFailure(
            name="rejectsEmptyInvoice",
            classname="com.example.billing.InvoiceServiceTest",
            message='Cannot invoke "java.util.List.size()" because "lines" is null',
            file=str(FIXTURES / "surefire.xml"),
        ),
    )


def test_a_gradle_report_counts_testcases_with_a_bare_skipped_element() -> None:
    summary = parse_junit(FIXTURES / "gradle.xml")

    assert (summary.passed, summary.failed, summary.skipped) == (2, 1, 1)
    (failure,) = summary.failures
    assert failure.name == "neverGoesNegative()"
    assert failure.message.startswith("org.opentest4j.AssertionFailedError: stock went negative")


def test_a_jest_junit_report_names_failures_by_their_describe_path() -> None:
    summary = parse_junit(FIXTURES / "jest-junit.xml")

    assert (summary.passed, summary.failed, summary.skipped) == (3, 2, 1)
    assert [(f.classname, f.name, f.message) for f in summary.failures] == [
        (
            "Cart totals applies the coupon once",
            "Cart totals applies the coupon once",
            "Error: expect(received).toBe(expected) // Object.is equality",
        ),
        (
            "Test suite failed to run",
            "src/legacy/payment.test.js",
            "● Test suite failed to run",
        ),
    ]


def test_a_go_junit_report_report_uses_the_failure_text_when_the_message_is_a_placeholder() -> None:
    summary = parse_junit(FIXTURES / "go-junit-report.xml")

    assert (summary.passed, summary.failed, summary.skipped) == (3, 3, 1)
    assert [(f.classname, f.name, f.message) for f in summary.failures] == [
        ("example.com/shop/cart", "TestTotal/with_coupon", "cart_test.go:41: total = 80, want 90"),
        (
            "example.com/shop/orders",
            "TestCancelOrder",
            "orders_test.go:77: cancel: order 42 is already shipped",
        ),
        ("example.com/shop/payments", "[build failed]", "Build error"),
    ]


def test_a_gotestsum_report_skips_go_framing_lines_in_failure_text() -> None:
    summary = parse_junit(FIXTURES / "gotestsum.xml")

    assert (summary.passed, summary.failed, summary.skipped) == (4, 3, 1)
    assert [(f.classname, f.name, f.message) for f in summary.failures] == [
        ("example.com/shop/cart", "TestTotal/with_coupon", "cart_test.go:41: total = 80, want 90"),
        ("example.com/shop/cart", "TestTotal", "Failed"),
        ("", "TestMain", "panic: payment gateway URL is not set"),
    ]


def test_suites_nested_inside_suites_are_counted_at_every_depth() -> None:
    summary = parse_junit(FIXTURES / "nested-suites.xml")

    assert (summary.passed, summary.failed, summary.skipped) == (3, 1, 1)
    (failure,) = summary.failures
    assert (failure.classname, failure.name) == ("integration.storage", "survives_a_restart")
    assert failure.message == "document 7 missing after restart"


def test_several_reports_add_up_with_failures_in_the_order_given() -> None:
    paths = [FIXTURES / "gradle.xml", FIXTURES / "nested-suites.xml"]

    summary = parse_junit_files(paths)

    assert (summary.passed, summary.failed, summary.skipped) == (5, 2, 2)
    assert [(f.name, Path(f.file).name) for f in summary.failures] == [
        ("neverGoesNegative()", "gradle.xml"),
        ("survives_a_restart", "nested-suites.xml"),
    ]


def test_no_reports_add_up_to_an_empty_summary() -> None:
    assert parse_junit_files([]) == TestSummary.empty()
