"""What the delivery endpoints carry: Releases, Promotions, Deployments, environments, Waivers.

The server writes these values and the remote control plane reads them back
into the records the embedded control plane returns, so a command prints the
same against a server as on its own workspace. Both sides use these
functions, so the two cannot drift apart. Every reader raises ValueError on a
document that is not one of its values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from conveyor.audit.evidence import FileEntry
from conveyor.audit.evidence_verify import head_from_json
from conveyor.core.records import TestCounts
from conveyor.engine.environments import EnvironmentView, InstanceView
from conveyor.engine.evidence import EvidenceExport
from conveyor.engine.releases import ReleaseOutcome
from conveyor.engine.waivers import WaiverStatus
from conveyor.policy.waiver import Waiver, WaiverState
from conveyor.promotion.codec import basis_from_json, basis_json, report_from_json, report_json
from conveyor.promotion.model import Approval, EnvironmentState, Promotion, PromotionState
from conveyor.release import notes as release_notes
from conveyor.release.change_record import (
    ApprovalLine,
    ChangeRecord,
    ChangeSize,
    GateLine,
    Risk,
    RiskFacts,
    RiskLevel,
)
from conveyor.release.model import Commit, Release, ReleaseArtifact
from conveyor.release.notes import Entry, ReleaseNotes, Section
from conveyor.rollout import status as rollout_status
from conveyor.rollout.deployment import Deployment, DeploymentId

Doc = dict[str, object]
_T = TypeVar("_T")


def _flat(cls: type[_T], doc: object) -> _T:
    """A dataclass of plain fields from the document `dataclasses.asdict` made of one."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"not a {cls.__name__}: {type(doc).__name__}")  # noqa: TRY004
    names = {f.name for f in dataclasses.fields(cast(Any, cls))}
    try:
        return cls(**{k: v for k, v in doc.items() if k in names})
    except TypeError as exc:
        raise ValueError(f"not a {cls.__name__}: {exc}") from None


def _mapping(doc: object) -> Mapping[str, object]:
    if not isinstance(doc, Mapping):
        raise ValueError(f"expected an object, found {type(doc).__name__}")  # noqa: TRY004
    return cast(Mapping[str, object], doc)


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, found {type(value).__name__}")  # noqa: TRY004
    return value


# --- releases ------------------------------------------------------------------


def release_to_json(release: Release) -> Doc:
    return dataclasses.asdict(release)


def release_from_json(doc: object) -> Release:
    data = dict(_mapping(doc))
    data["artifacts"] = tuple(_flat(ReleaseArtifact, a) for a in _list(data.get("artifacts")))
    data["commits"] = tuple(_flat(Commit, c) for c in _list(data.get("commits", [])))
    return _flat(Release, data)


def outcome_to_json(outcome: ReleaseOutcome) -> Doc:
    return {
        "release": release_to_json(outcome.release),
        "created": outcome.created,
        "reasons": list(outcome.reasons),
    }


def outcome_from_json(doc: object) -> ReleaseOutcome:
    data = _mapping(doc)
    reasons = tuple(str(r) for r in _list(data.get("reasons", [])))
    return ReleaseOutcome(release_from_json(data.get("release")), bool(data["created"]), reasons)


# --- promotions ----------------------------------------------------------------


def promotion_to_json(promotion: Promotion) -> Doc:
    doc = {f.name: getattr(promotion, f.name) for f in dataclasses.fields(promotion)}
    doc["basis"] = basis_json(promotion.basis)
    doc["report"] = None if promotion.report is None else report_json(promotion.report)
    doc["approvals"] = [dataclasses.asdict(a) for a in promotion.approvals]
    return doc


def promotion_from_json(doc: object) -> Promotion:
    data = dict(_mapping(doc))
    data["basis"] = basis_from_json(data.get("basis"))
    report = data.get("report")
    data["report"] = None if report is None else report_from_json(report)
    data["approvals"] = tuple(_flat(Approval, a) for a in _list(data.get("approvals", [])))
    promotion = _flat(Promotion, data)
    if promotion.state not in ("pending", "blocked", "approved", "deployed", *_CLOSED):
        raise ValueError(f"not a promotion state: {promotion.state!r}")
    return promotion


_CLOSED: tuple[PromotionState, ...] = ("rejected", "superseded", "failed")


# --- deployments and environments ----------------------------------------------


def deployment_to_json(deployment: Deployment) -> Doc:
    doc = {f.name: getattr(deployment, f.name) for f in dataclasses.fields(deployment)}
    doc["status"] = rollout_status.to_json(deployment.status)
    return doc


def deployment_from_json(doc: object) -> Deployment:
    data = dict(_mapping(doc))
    data["status"] = rollout_status.from_json(_mapping(data.get("status")))
    data["id"] = DeploymentId(int(cast(int, data["id"])))
    return _flat(Deployment, data)


def environment_to_json(view: EnvironmentView) -> Doc:
    return {
        "name": view.name,
        "deployed": None if view.deployed is None else dataclasses.asdict(view.deployed),
        "deployment": None if view.deployment is None else deployment_to_json(view.deployment),
        "queued": view.queued,
        "instances": [dataclasses.asdict(i) for i in view.instances],
    }


def environment_from_json(doc: object) -> EnvironmentView:
    data = _mapping(doc)
    deployed, deployment = data.get("deployed"), data.get("deployment")
    return EnvironmentView(
        name=str(data["name"]),
        deployed=None if deployed is None else _flat(EnvironmentState, deployed),
        deployment=None if deployment is None else deployment_from_json(deployment),
        queued=int(cast(int, data["queued"])),
        instances=tuple(_flat(InstanceView, i) for i in _list(data.get("instances", []))),
    )


# --- waivers ---------------------------------------------------------------------


def waiver_to_json(status: WaiverStatus) -> Doc:
    return {"waiver": dataclasses.asdict(status.waiver), "state": status.state, "at": status.at}


def waiver_from_json(doc: object) -> WaiverStatus:
    data = _mapping(doc)
    state = str(data["state"])
    if state not in ("pending", "active", "rejected", "revoked", "expired"):
        raise ValueError(f"not a waiver state: {state!r}")
    at = float(cast(float, data["at"]))
    return WaiverStatus(_flat(Waiver, data.get("waiver")), cast(WaiverState, state), at)


# --- release notes ---------------------------------------------------------------


def notes_to_json(notes: ReleaseNotes) -> Doc:
    """The notes as `release notes --json` prints them, with the commit's link and Markdown."""
    doc = release_notes.to_json(notes)
    return {**doc, "commit_url": notes.commit_url, "markdown": release_notes.to_markdown(notes)}


def notes_from_json(doc: object) -> ReleaseNotes:
    data = _mapping(doc)
    return ReleaseNotes(
        service=str(data["service"]),
        version=str(data["version"]),
        previous_version=_text(data.get("previous_version")),
        date=str(data["date"]),
        commit=_text(data.get("commit")),
        run_id=int(cast(int, data["run"])),
        compare_url=_text(data.get("compare_url")),
        commit_url=_text(data.get("commit_url")),
        sections=tuple(_section(s) for s in _list(data.get("sections", []))),
        authors=tuple(str(a) for a in _list(data.get("authors", []))),
    )


def _section(doc: object) -> Section:
    data = _mapping(doc)
    changes = tuple(_entry(e) for e in _list(data.get("changes", [])))
    return Section(str(data["key"]), str(data["title"]), changes)


def _entry(doc: object) -> Entry:
    data = _mapping(doc)
    return Entry(
        sha=str(data["sha"]),
        type=_text(data.get("type")),
        scope=_text(data.get("scope")),
        description=str(data["description"]),
        breaking_note=_text(data.get("breaking")),
        author=str(data["author"]),
        email=str(data["email"]),
        url=_text(data.get("url")),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# --- change records ----------------------------------------------------------------
# The API answers a change record in its own format (`release/change_record.to_json`,
# what `change-record --json` prints and its webhook receives); this reads it back.


def change_record_from_json(doc: object) -> ChangeRecord:
    data = _mapping(doc)
    summary, risk = _mapping(data["summary"]), _mapping(data["risk"])
    links = _mapping(data.get("links", {}))
    notes = dict(_mapping(data["release_notes"]))
    notes.setdefault("commit_url", links.get("commit"))
    return ChangeRecord(
        promotion=int(cast(int, summary["promotion"])),
        project=str(summary["project"]),
        service=str(summary["service"]),
        version=str(summary["version"]),
        environment=str(summary["environment"]),
        state=str(summary["state"]),
        requested_by=str(summary["requested_by"]),
        requested_at=_time(summary["requested_at"]),
        release_digest=str(summary["release_digest"]),
        run_id=int(cast(int, summary["run"])),
        risk=_risk(risk),
        facts=_facts(risk),
        notes=notes_from_json(notes),
        gates=tuple(_gate(g) for g in _list(data.get("gates", []))),
        evaluated_at=None if data.get("evaluated_at") is None else _time(data["evaluated_at"]),
        approvals=tuple(_approval(a) for a in _list(data.get("approvals", []))),
        generated_at=_time(data["generated_at"]),
    )


def _time(value: object) -> float:
    """An epoch time from the ISO 8601 UTC text records carry (to the second)."""
    return datetime.fromisoformat(str(value)).timestamp()


def _risk(risk: Mapping[str, object]) -> Risk:
    level = str(risk["level"])
    if level not in ("low", "medium", "high"):
        raise ValueError(f"not a risk level: {level!r}")
    return Risk(cast(RiskLevel, level), tuple(str(r) for r in _list(risk.get("reasons", []))))


def _facts(risk: Mapping[str, object]) -> RiskFacts:
    factors = _mapping(risk["factors"])
    size = ChangeSize(
        commits=int(cast(int, factors["commits"])),
        breaking=int(cast(int, factors.get("breaking_changes", 0))),
        files=cast(int | None, factors.get("files")),
        lines_added=cast(int | None, factors.get("lines_added")),
        lines_removed=cast(int | None, factors.get("lines_removed")),
    )
    tests = factors.get("tests")
    previous = factors.get("previous_failed_version")
    return RiskFacts(
        size=size,
        tests=None if tests is None else _flat(TestCounts, tests),
        previous_failure=None if previous is None else str(previous),
        warnings=tuple(str(w) for w in _list(factors.get("policy_warnings", []))),
    )


def _gate(doc: object) -> GateLine:
    data = _mapping(doc)
    notes = tuple(str(n) for n in _list(data.get("notes", [])))
    return GateLine(str(data["gate"]), str(data["outcome"]), str(data["reason"]), notes)


def _approval(doc: object) -> ApprovalLine:
    data = _mapping(doc)
    return ApprovalLine(
        by=str(data["by"]),
        role=str(data["role"]),
        decision=str(data["decision"]),
        at=_time(data["at"]),
        comment=str(data.get("comment", "")),
    )


# --- evidence export -------------------------------------------------------------------
# The bundle itself is the answer's body; what the export says about it travels in a
# header, and the list of its files in the bundle's own manifest.

EVIDENCE_HEADER = "X-Conveyor-Evidence"


def export_summary_to_json(done: EvidenceExport) -> Doc:
    return {
        "service": done.release.service,
        "version": done.release.version,
        "events": done.events,
        "promotions": done.promotions,
        "change_records": done.change_records,
        "tree_head": done.head.to_json(),
    }


def export_from_json(
    summary: object, *, path: Path, release: Release, manifest: object
) -> EvidenceExport:
    """The export as the embedded control plane returns it, from its summary and manifest."""
    data = _mapping(summary)
    files = tuple(_flat(FileEntry, f) for f in _list(_mapping(manifest).get("files")))
    return EvidenceExport(
        path=path,
        release=release,
        events=int(cast(int, data["events"])),
        promotions=int(cast(int, data["promotions"])),
        change_records=int(cast(int, data["change_records"])),
        head=head_from_json(data["tree_head"]),
        files=files,
    )
