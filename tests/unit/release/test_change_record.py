"""Change records as values: the documented risk heuristic, their JSON and their Markdown."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conveyor.core.records import RunId, TestCounts
from conveyor.release.change_record import (
    FORMAT,
    ApprovalLine,
    ChangeRecord,
    ChangeSize,
    GateLine,
    RiskFacts,
    assess_risk,
    evidence_command,
    to_json,
    to_markdown,
)
from conveyor.release.model import Commit, Release, ReleaseArtifact, ReleaseId
from conveyor.release.notes import build_notes

T0 = 1_767_225_600.0
GREEN = TestCounts(passed=12)


def facts(commits: int = 2, **changes: object) -> RiskFacts:
    return replace(RiskFacts(ChangeSize(commits=commits), GREEN), **changes)


def test_a_small_change_with_green_tests_and_no_warnings_is_low_risk() -> None:
    risk = assess_risk(facts())

    assert risk.level == "low"
    assert risk.reasons == ("a small change: 2 commits, 12 tests passed, no warnings",)


@pytest.mark.parametrize(
    ("size", "level", "reason"),
    [
        (ChangeSize(commits=10), "medium", "a large change: 10 commits (medium)"),
        (ChangeSize(commits=30), "high", "a large change: 30 commits (high)"),
        (ChangeSize(commits=1, files=20), "medium", "a large change: 20 files changed (medium)"),
        (ChangeSize(commits=1, files=60), "high", "a large change: 60 files changed (high)"),
        (
            ChangeSize(commits=1, lines_added=200, lines_removed=100),
            "medium",
            "a large change: 300 lines changed (medium)",
        ),
        (
            ChangeSize(commits=1, lines_added=1000),
            "high",
            "a large change: 1000 lines changed (high)",
        ),
        (ChangeSize(commits=1, breaking=1), "medium", "1 breaking change in the commits (medium)"),
    ],
)
def test_the_size_of_a_change_raises_its_risk_at_the_documented_thresholds(
    size: ChangeSize, level: str, reason: str
) -> None:
    risk = assess_risk(facts(size=size))

    assert (risk.level, risk.reasons) == (level, (reason,))


def test_just_below_every_threshold_a_change_is_still_low_risk() -> None:
    size = ChangeSize(commits=9, files=19, lines_added=150, lines_removed=149)

    assert assess_risk(facts(size=size)).level == "low"


def test_failed_tests_make_a_change_high_risk_and_missing_ones_medium() -> None:
    failed = assess_risk(facts(tests=TestCounts(passed=3, failed=2)))
    missing = assess_risk(facts(tests=None))

    assert failed.reasons == ("2 tests failed in the release's run (high)",)
    assert failed.level == "high"
    assert missing.reasons == ("no test results were reported by the release's run (medium)",)


def test_a_failed_last_deployment_into_the_environment_makes_a_change_high_risk() -> None:
    risk = assess_risk(facts(previous_failure="1.3.0"))

    assert risk.level == "high"
    assert risk.reasons == ("the last deployment into this environment (1.3.0) failed (high)",)


def test_every_factor_is_a_reason_the_highest_first_and_the_highest_decides() -> None:
    risk = assess_risk(
        facts(
            size=ChangeSize(commits=12),
            warnings=("'big-change' warns: watch the rollout",),
            previous_failure="1.3.0",
        )
    )

    assert risk.level == "high"
    assert risk.reasons == (
        "the last deployment into this environment (1.3.0) failed (high)",
        "a large change: 12 commits (medium)",
        "policy warning: 'big-change' warns: watch the rollout (medium)",
    )


def release() -> Release:
    return Release(
        id=ReleaseId(1),
        project="shop",
        service="payments-api",
        version="1.4.0",
        commit_sha="9f2c1e0" + "0" * 33,
        run_id=RunId(7),
        config_digest="sha256:" + "c" * 64,
        config="{}",
        artifacts=(ReleaseArtifact("dist/app.whl", "sha256:" + "a" * 64, 10),),
        created_at=T0,
        created_by="dev@example.com",
        previous_version="1.3.0",
        repository="https://github.com/acme/payments",
        commits=(
            Commit("9f2c1e0" + "0" * 33, "Ada", "ada@example.com", "2026-01-01", "feat: refunds"),
        ),
    )


def record(**changes: object) -> ChangeRecord:
    made = ChangeRecord(
        promotion=7,
        project="shop",
        service="payments-api",
        version="1.4.0",
        environment="prod",
        state="approved",
        requested_by="dev@example.com",
        requested_at=T0,
        release_digest="sha256:" + "d" * 64,
        run_id=7,
        risk=assess_risk(facts()),
        facts=facts(),
        notes=build_notes(release(), previous_commit="1" * 40),
        gates=(
            GateLine("approvals", "passed", "approved by lead@example.com (approver)"),
            GateLine("policies", "passed", "allowed by big | small", ("'x' warns: y",)),
        ),
        evaluated_at=T0 + 60,
        approvals=(ApprovalLine("lead@example.com", "approver", "approve", T0 + 60, "ship it"),),
        generated_at=T0 + 120,
    )
    return replace(made, **changes)


def test_the_json_of_a_record_holds_summary_risk_notes_gates_approvals_and_links() -> None:
    doc = to_json(record())

    assert doc["format"] == FORMAT
    assert doc["title"] == "Deploy payments-api 1.4.0 to prod"
    assert doc["summary"] == {
        "promotion": 7,
        "project": "shop",
        "service": "payments-api",
        "version": "1.4.0",
        "environment": "prod",
        "state": "approved",
        "requested_by": "dev@example.com",
        "requested_at": "2026-01-01T00:00:00Z",
        "release_digest": "sha256:" + "d" * 64,
        "commit": "9f2c1e0" + "0" * 33,
        "run": 7,
    }
    assert doc["risk"] == {
        "level": "low",
        "reasons": ["a small change: 2 commits, 12 tests passed, no warnings"],
        "factors": {
            "commits": 2,
            "breaking_changes": 0,
            "files": None,
            "lines_added": None,
            "lines_removed": None,
            "tests": {"passed": 12, "failed": 0, "skipped": 0},
            "previous_deployment_failed": False,
            "previous_failed_version": None,
            "policy_warnings": [],
        },
    }
    assert doc["approvals"] == [
        {
            "by": "lead@example.com",
            "role": "approver",
            "decision": "approve",
            "at": "2026-01-01T00:01:00Z",
            "comment": "ship it",
        }
    ]
    assert doc["links"] == {
        "run": {"id": 7, "command": "conveyor show 7"},
        "evidence": {"command": evidence_command("payments-api", "1.4.0")},
        "commit": "https://github.com/acme/payments/commit/9f2c1e0" + "0" * 33,
        "compare": "https://github.com/acme/payments/compare/" + "1" * 40 + "...9f2c1e0" + "0" * 33,
    }
    notes = doc["release_notes"]
    assert isinstance(notes, dict)
    assert "- refunds ([9f2c1e0]" in str(notes["markdown"])
    json.dumps(doc)  # plain JSON values only


def test_the_markdown_of_a_record_reads_as_a_change_request() -> None:
    text = to_markdown(record())

    assert text.startswith("# Change record: Deploy payments-api 1.4.0 to prod\n")
    assert "| Risk | **low** |" in text
    assert "## Risk: low\n\n- a small change: 2 commits, 12 tests passed, no warnings\n" in text
    assert "| approvals | passed | approved by lead@example.com (approver) |" in text
    assert "| policies | passed | allowed by big \\| small; 'x' warns: y |" in text
    assert "- lead@example.com approved as approver at 2026-01-01T00:01:00Z: ship it" in text
    assert "### payments-api 1.4.0 (2026-01-01)" in text
    assert "- Evidence: `conveyor evidence export payments-api 1.4.0 -o " in text


def test_a_record_not_yet_evaluated_or_approved_says_so() -> None:
    text = to_markdown(record(gates=(), approvals=(), evaluated_at=None))

    assert "## Gates\n\nNot evaluated yet.\n" in text
    assert "## Approvals\n\nNone yet.\n" in text


def test_text_from_people_stays_on_its_line_in_markdown() -> None:
    approval = ApprovalLine("lead@example.com", "approver", "reject", T0, "no\n# not a heading")

    text = to_markdown(record(approvals=(approval,)))

    assert "rejected as approver at 2026-01-01T00:00:00Z: no # not a heading" in text
