"""Change records: what an ITSM or a change board reads about one Promotion (pure).

A change record summarizes a Promotion of a Release into an Environment that
keeps them (`change_record: true`): who asked and when, the risk, the release
notes, every Gate with its outcome and reason, the approvals, and where the
Run and the evidence are. It is a value rendered as JSON or Markdown; the
Promotion service gathers its facts.

Risk is a heuristic, stated here so that anyone can check a level by hand.
Each factor sets a level; the record's level is the highest, and every
factor above `low` is given as a reason:

| factor | medium | high |
| --- | --- | --- |
| commits in the release (merges not counted) | 10 or more | 30 or more |
| files changed (when recorded) | 20 or more | 60 or more |
| lines added and removed (when recorded) | 300 or more | 1000 or more |
| tests of the release's Run | none reported | any failed |
| the last deployment into the environment | | failed |
| a breaking change (Conventional Commits) | any | |
| policy rules that warn | any | |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from conveyor.core.clock import iso
from conveyor.core.records import TestCounts
from conveyor.core.values import frozen
from conveyor.release.notes import ReleaseNotes
from conveyor.release.notes import to_json as notes_json
from conveyor.release.notes import to_markdown as notes_markdown

FORMAT = "conveyor.change-record/v1"
RiskLevel = Literal["low", "medium", "high"]
_ORDER: dict[RiskLevel, int] = {"low": 0, "medium": 1, "high": 2}
# (medium, high) thresholds, each "or more".
COMMITS = (10, 30)
FILES = (20, 60)
LINES = (300, 1000)


@frozen
class ChangeSize:
    """How big the change is: commits always; files and lines when they were recorded."""

    commits: int
    breaking: int = 0
    files: int | None = None
    lines_added: int | None = None
    lines_removed: int | None = None

    @property
    def lines(self) -> int | None:
        if self.lines_added is None and self.lines_removed is None:
            return None
        return (self.lines_added or 0) + (self.lines_removed or 0)


@frozen
class RiskFacts:
    """What the risk is judged from.

    `tests` is None when no job of the Run reported tests; `previous_failure`
    is the version whose deployment into this environment failed, when the
    last deployment there failed.
    """

    size: ChangeSize
    tests: TestCounts | None
    previous_failure: str | None = None
    warnings: tuple[str, ...] = ()


@frozen
class Risk:
    """The level and the reasons for it."""

    level: RiskLevel
    reasons: tuple[str, ...]


def assess_risk(facts: RiskFacts) -> Risk:
    """The risk of a change by the table in this module's docstring."""
    found = [*_size_factors(facts.size), *_other_factors(facts)]
    if not found:
        return Risk("low", (_calm(facts),))
    level = max((level for level, _ in found), key=_ORDER.__getitem__)
    ordered = sorted(found, key=lambda item: -_ORDER[item[0]])
    return Risk(level, tuple(f"{reason} ({lvl})" for lvl, reason in ordered))


def _by_threshold(value: int | None, limits: tuple[int, int]) -> RiskLevel | None:
    if value is None or value < limits[0]:
        return None
    return "high" if value >= limits[1] else "medium"


def _size_factors(size: ChangeSize) -> list[tuple[RiskLevel, str]]:
    found: list[tuple[RiskLevel, str]] = []
    for value, limits, noun in (
        (size.commits, COMMITS, "commits"),
        (size.files, FILES, "files changed"),
        (size.lines, LINES, "lines changed"),
    ):
        level = _by_threshold(value, limits)
        if level is not None:
            found.append((level, f"a large change: {value} {noun}"))
    if size.breaking:
        found.append(("medium", f"{_count(size.breaking, 'breaking change')} in the commits"))
    return found


def _other_factors(facts: RiskFacts) -> list[tuple[RiskLevel, str]]:
    found: list[tuple[RiskLevel, str]] = []
    tests = facts.tests
    if tests is None:
        found.append(("medium", "no test results were reported by the release's run"))
    elif tests.failed:
        found.append(("high", f"{_count(tests.failed, 'test')} failed in the release's run"))
    if facts.previous_failure is not None:
        found.append(
            (
                "high",
                f"the last deployment into this environment ({facts.previous_failure}) failed",
            )
        )
    found.extend(("medium", f"policy warning: {warning}") for warning in facts.warnings)
    return found


def _calm(facts: RiskFacts) -> str:
    tests = facts.tests
    passed = "" if tests is None else f", {_count(tests.passed, 'test')} passed"
    return f"a small change: {_count(facts.size.commits, 'commit')}{passed}, no warnings"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@frozen
class GateLine:
    """One Gate as the record shows it."""

    gate: str
    outcome: str
    reason: str
    notes: tuple[str, ...] = ()


@frozen
class ApprovalLine:
    """One person's decision as the record shows it."""

    by: str
    role: str
    decision: str
    at: float
    comment: str = ""


@frozen
class ChangeRecord:
    """The change record of one Promotion as it stands at `generated_at`."""

    promotion: int
    project: str
    service: str
    version: str
    environment: str
    state: str
    requested_by: str
    requested_at: float
    release_digest: str
    run_id: int
    risk: Risk
    facts: RiskFacts
    notes: ReleaseNotes
    gates: tuple[GateLine, ...]
    evaluated_at: float | None
    approvals: tuple[ApprovalLine, ...]
    generated_at: float

    @property
    def title(self) -> str:
        return f"Deploy {self.service} {self.version} to {self.environment}"


def evidence_command(service: str, version: str) -> str:
    """The command that exports the evidence bundle of a Release."""
    return f"conveyor evidence export {service} {version} -o {service}-{version}-evidence.zip"


# --- JSON ------------------------------------------------------------------------------


def to_json(record: ChangeRecord) -> dict[str, object]:
    """The record as JSON values: what `--json` prints and the webhook receives."""
    return {
        "format": FORMAT,
        "title": record.title,
        "summary": {
            "promotion": record.promotion,
            "project": record.project,
            "service": record.service,
            "version": record.version,
            "environment": record.environment,
            "state": record.state,
            "requested_by": record.requested_by,
            "requested_at": iso(record.requested_at),
            "release_digest": record.release_digest,
            "commit": record.notes.commit,
            "run": record.run_id,
        },
        "risk": _risk_json(record.risk, record.facts),
        "release_notes": {**notes_json(record.notes), "markdown": _notes_markdown(record)},
        "gates": [_gate_json(gate) for gate in record.gates],
        "evaluated_at": iso(record.evaluated_at),
        "approvals": [_approval_json(a) for a in record.approvals],
        "links": _links(record),
        "generated_at": iso(record.generated_at),
    }


def _risk_json(risk: Risk, facts: RiskFacts) -> dict[str, object]:
    size, tests = facts.size, facts.tests
    return {
        "level": risk.level,
        "reasons": list(risk.reasons),
        "factors": {
            "commits": size.commits,
            "breaking_changes": size.breaking,
            "files": size.files,
            "lines_added": size.lines_added,
            "lines_removed": size.lines_removed,
            "tests": None
            if tests is None
            else {"passed": tests.passed, "failed": tests.failed, "skipped": tests.skipped},
            "previous_deployment_failed": facts.previous_failure is not None,
            "previous_failed_version": facts.previous_failure,
            "policy_warnings": list(facts.warnings),
        },
    }


def _gate_json(gate: GateLine) -> dict[str, object]:
    return {
        "gate": gate.gate,
        "outcome": gate.outcome,
        "reason": gate.reason,
        "notes": [*gate.notes],
    }


def _approval_json(approval: ApprovalLine) -> dict[str, object]:
    return {
        "by": approval.by,
        "role": approval.role,
        "decision": approval.decision,
        "at": iso(approval.at),
        "comment": approval.comment,
    }


def _links(record: ChangeRecord) -> dict[str, object]:
    return {
        "run": {"id": record.run_id, "command": f"conveyor show {record.run_id}"},
        "evidence": {"command": evidence_command(record.service, record.version)},
        "commit": record.notes.commit_url,
        "compare": record.notes.compare_url,
    }


def _notes_markdown(record: ChangeRecord) -> str:
    return notes_markdown(record.notes, level=3)


# --- Markdown --------------------------------------------------------------------------


def to_markdown(record: ChangeRecord) -> str:
    """The record as Markdown for people (and ITSM tools that render it)."""
    lines = [f"# Change record: {record.title}", "", *_summary_table(record), ""]
    lines += [f"## Risk: {record.risk.level}", ""]
    lines += [f"- {_inline(reason)}" for reason in record.risk.reasons]
    evaluated = f" (evaluated {iso(record.evaluated_at)})" if record.evaluated_at else ""
    lines += ["", f"## Gates{evaluated}", "", *_gate_table(record.gates), ""]
    lines += ["## Approvals", "", *_approval_lines(record.approvals), ""]
    lines += ["## Release notes", "", _notes_markdown(record).rstrip("\n"), ""]
    lines += ["## Links", "", *_link_lines(record)]
    return "\n".join(lines) + "\n"


def _summary_table(record: ChangeRecord) -> list[str]:
    commit = (record.notes.commit or "none")[:12]
    rows = [
        ("Promotion", f"{record.promotion} ({record.state})"),
        ("Requested by", f"{record.requested_by} at {iso(record.requested_at)}"),
        ("Release", f"{record.service} {record.version}, commit {commit}, run {record.run_id}"),
        ("Release identity", f"`{record.release_digest}`"),
        ("Risk", f"**{record.risk.level}**"),
        ("Generated", iso(record.generated_at) or ""),
    ]
    return ["| | |", "| --- | --- |", *(f"| {k} | {_cell(v)} |" for k, v in rows)]


def _gate_table(gates: Sequence[GateLine]) -> list[str]:
    if not gates:
        return ["Not evaluated yet."]
    rows = ["| Gate | Outcome | Reason |", "| --- | --- | --- |"]
    for gate in gates:
        reason = "; ".join([gate.reason, *gate.notes])
        rows.append(f"| {gate.gate} | {gate.outcome} | {_cell(reason)} |")
    return rows


def _approval_lines(approvals: Sequence[ApprovalLine]) -> list[str]:
    if not approvals:
        return ["None yet."]
    out = []
    for approval in approvals:
        verb = "approved" if approval.decision == "approve" else "rejected"
        line = f"- {approval.by} {verb} as {approval.role} at {iso(approval.at)}"
        out.append(f"{line}: {_inline(approval.comment)}" if approval.comment else line)
    return out


def _link_lines(record: ChangeRecord) -> list[str]:
    links = _links(record)
    lines = [
        f"- Run: `conveyor show {record.run_id}`",
        f"- Evidence: `{evidence_command(record.service, record.version)}`",
    ]
    if links["commit"]:
        lines.append(f"- Commit: {links['commit']}")
    if links["compare"]:
        lines.append(f"- Changes: {links['compare']}")
    return lines


def _inline(text: str) -> str:
    """Text on one Markdown line."""
    return " ".join(text.split())


def _cell(text: str) -> str:
    """Text in one Markdown table cell."""
    return _inline(text).replace("|", "\\|")
