"""JUnit test reports end to end: counts, failed test names, and failing a job on them."""

from __future__ import annotations

from .support import WorkspaceFactory, jobs_by_name

WRITES_A_FAILING_REPORT = """
version: 1
jobs:
  test:
    inputs: []
    reports: {junit: "reports/*.xml"}
    run: |
      mkdir -p reports
      cat > reports/junit.xml <<'XML'
      <?xml version="1.0" encoding="utf-8"?>
      <testsuites>
        <testsuite name="pkg" tests="4" failures="1" errors="0" skipped="1">
          <testcase classname="pkg.TestMath" name="test_add" time="0.01"/>
          <testcase classname="pkg.TestMath" name="test_sub" time="0.01"/>
          <testcase classname="pkg.TestMath" name="test_div" time="0.01">
            <failure message="ZeroDivisionError">Traceback: division by zero</failure>
          </testcase>
          <testcase classname="pkg.TestMath" name="test_later" time="0">
            <skipped message="not yet"/>
          </testcase>
        </testsuite>
      </testsuites>
      XML
      echo "the script itself succeeds"
  deploy:
    needs: [test]
    inputs: []
    run: touch "$SIDE/deploy.ran"
"""


def test_a_job_whose_junit_report_has_failures_fails_even_when_its_script_exits_0(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(WRITES_A_FAILING_REPORT)

    result = ws.run()

    assert result.code == 1
    run = result.json()
    assert run["status"] == "failed"
    jobs = jobs_by_name(run)
    test = jobs["test"]
    assert test["status"] == "failed"
    assert test["exit_code"] == 0
    assert test["tests"] == {
        "passed": 2,
        "failed": 1,
        "skipped": 1,
        "failures": ["pkg.TestMath::test_div"],
    }
    assert jobs["deploy"]["status"] == "skipped"
    assert not ws.side_file("deploy.ran").exists()
    shown = ws.cli("show", str(run["id"]), "--json").json()
    assert jobs_by_name(shown)["test"]["tests"] == test["tests"]


def test_the_text_summary_names_the_failed_tests(workspace: WorkspaceFactory) -> None:
    ws = workspace(WRITES_A_FAILING_REPORT)

    code, out, _ = ws.cli("run")

    assert code == 1
    assert "failed tests:" in out
    assert "pkg.TestMath::test_div" in out
    assert "2 passed, 1 failed, 1 skipped" in out


PYTEST_SPEC = """
version: 1
jobs:
  test:
    inputs: ["tests_demo/**"]
    reports: {junit: reports/junit.xml}
    run: python -m pytest -q -p no:cacheprovider --junitxml=reports/junit.xml tests_demo
"""
PASSING = """
import pytest


def test_adds():
    assert 1 + 1 == 2


def test_joins():
    assert "-".join("ab") == "a-b"


@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    raise AssertionError
"""


def test_a_real_pytest_report_is_counted(workspace: WorkspaceFactory) -> None:
    ws = workspace(PYTEST_SPEC, files={"tests_demo/test_demo.py": PASSING})

    result = ws.run()

    assert result.code == 0, result.err + result.out
    test = result.json()["jobs"][0]
    assert test["status"] == "success"
    assert test["tests"] == {"passed": 2, "failed": 0, "skipped": 1, "failures": []}

    cached = ws.run().json()["jobs"][0]

    assert cached["status"] == "cached"
    assert cached["tests"] == test["tests"]


def test_a_failing_pytest_run_reports_the_failed_test_by_name(
    workspace: WorkspaceFactory,
) -> None:
    broken = PASSING + "\n\ndef test_broken():\n    assert 2 + 2 == 5\n"
    ws = workspace(PYTEST_SPEC, files={"tests_demo/test_demo.py": broken})

    result = ws.run()

    assert result.code == 1
    test = result.json()["jobs"][0]
    assert test["status"] == "failed"
    assert test["exit_code"] == 1
    assert test["tests"]["passed"] == 2
    assert test["tests"]["failed"] == 1
    assert test["tests"]["skipped"] == 1
    assert test["tests"]["failures"] == ["tests_demo.test_demo::test_broken"]


def test_a_report_that_is_not_junit_xml_fails_the_job_with_the_reason(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        """
        version: 1
        jobs:
          test:
            inputs: []
            reports: {junit: report.xml}
            run: echo "<testsuite" > report.xml
        """
    )

    result = ws.run()

    assert result.code == 1
    test = result.json()["jobs"][0]
    assert test["status"] == "failed"
    assert test["exit_code"] == 0
    assert "report.xml" in test["reason"]


def test_a_report_left_by_an_earlier_run_is_counted_with_a_warning(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(WRITES_A_FAILING_REPORT)
    assert ws.run().code == 1
    # The tests are no longer run, but the report of the last run is still there.
    ws.spec(WRITES_A_FAILING_REPORT.split("    run: |", 1)[0] + "    run: echo forgot the tests\n")

    code, out, err = ws.cli("run", "test")

    assert code == 1
    assert (
        "warning: test: report reports/junit.xml was not written by this run; it is left from "
        "an earlier one, and counted"
    ) in out + err
