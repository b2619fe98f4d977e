"""The documents of an evidence bundle as JSON values: the Release, its Run, its Promotions.

Times are ISO 8601 UTC; digests are `sha256:<hex>`. Each document stands on
its own, so an auditor reads one without the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from conveyor.core.clock import iso
from conveyor.core.record_json import tests_to_json
from conveyor.core.records import JobRecord, RunRecord, TestCounts
from conveyor.policy.waiver import Waiver
from conveyor.promotion.codec import gate_json, report_json, requirements_json
from conveyor.promotion.model import Approval, Promotion
from conveyor.release.model import Release, identity_digest

Json = dict[str, object]


def about(release: Release) -> Json:
    """What a bundle is about: one Release, by name and by identity."""
    return {
        "project": release.project,
        "service": release.service,
        "version": release.version,
        "release_identity": identity_digest(release),
    }


def release_document(release: Release) -> Json:
    """`release.json`: the Release record with its artifact digests and commits."""
    return {
        **about(release),
        "commit": release.commit_sha,
        "run": int(release.run_id),
        "config_digest": release.config_digest,
        "config": json.loads(release.config),
        "previous_version": release.previous_version,
        "repository": release.repository,
        "created_at": iso(release.created_at),
        "created_by": release.created_by,
        "artifacts": [
            {"path": a.path, "digest": a.digest, "size": a.size} for a in release.artifacts
        ],
        "commits": [
            {
                "sha": c.sha,
                "author": c.author,
                "email": c.email,
                "committer_email": c.committer_email,
                "date": c.date,
                "message": c.message,
            }
            for c in release.commits
        ],
    }


def run_document(run: RunRecord, tests: TestCounts | None) -> Json:
    """`run.json`: the Run that built the Release, every job, and the test results."""
    return {
        "id": int(run.id),
        "project": run.project,
        "status": run.status,
        "pipeline": run.pipeline_path,
        "spec_digest": run.spec_digest,
        "branch": run.branch,
        "commit": run.commit_sha,
        "event": run.event,
        "actor": run.actor,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_s": run.duration_s,
        "error": run.error,
        "tests": tests_to_json(tests),
        "jobs": [_job(job) for job in run.jobs],
    }


def _job(job: JobRecord) -> Json:
    return {
        "name": job.name,
        "status": job.status,
        "cached": job.cached,
        "exit_code": job.exit_code,
        "attempts": job.attempts,
        "reason": job.reason,
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration_s": job.duration_s,
        "cache_key": job.cache_key,
        "log_digest": job.log_digest,
        "outputs": [{"path": o.path, "digest": o.digest, "size": o.size} for o in job.outputs],
        "tests": tests_to_json(job.tests),
    }


def promotions_document(
    promotions: Sequence[Promotion],
    change_records: Mapping[int, str],
    waivers: Mapping[int, Sequence[Waiver]] | None = None,
) -> Json:
    """`promotions.json`: every Promotion of the Release with its gates, approvals, waivers.

    `change_records` maps a promotion's id to the path of its change record in the bundle;
    `waivers` maps it to the Waivers its decisions relied on.
    """
    used = waivers or {}
    return {
        "promotions": [
            _promotion(p, change_records.get(int(p.id)), used.get(int(p.id), ()))
            for p in promotions
        ]
    }


def _promotion(promotion: Promotion, change_record: str | None, waivers: Sequence[Waiver]) -> Json:
    report = promotion.report
    gates: Json | None = None
    if report is not None:
        gates = report_json(report)
        gates["evaluated_at"] = iso(report.evaluated_at)
        gates["gates"] = [
            {**gate_json(gate), "retry_at": iso(gate.retry_at)} for gate in report.gates
        ]
    return {
        "id": int(promotion.id),
        "environment": promotion.environment,
        "state": promotion.state,
        "release_identity": promotion.release_digest,
        "requested_by": promotion.requested_by,
        "requester_roles": list(promotion.basis.requester_roles),
        "requested_at": iso(promotion.requested_at),
        "updated_at": iso(promotion.updated_at),
        "requirements": requirements_json(promotion.basis.requirements),
        "rules": [
            {"name": r.name, "effect": r.effect, "when": r.when, "expression": r.expression}
            for r in promotion.basis.rules
        ],
        "gate_report": gates,
        "approvals": [_approval(a) for a in promotion.approvals],
        "waivers": [_waiver(w) for w in waivers],
        "change_record": change_record,
    }


def _waiver(waiver: Waiver) -> Json:
    """A Waiver a promotion relied on: the exception, who asked, who approved, until when."""
    return {
        "id": int(waiver.id),
        "rule": waiver.rule,
        "environment": waiver.environment,
        "reason": waiver.reason,
        "requested_by": waiver.requested_by,
        "requested_at": iso(waiver.requested_at),
        "expires_at": iso(waiver.expires_at),
        "decision": waiver.decision,
        "decided_by": waiver.decided_by,
        "decided_at": iso(waiver.decided_at),
        "comment": waiver.comment,
        "revoked_by": waiver.revoked_by,
        "revoked_at": iso(waiver.revoked_at),
    }


def _approval(approval: Approval) -> Json:
    return {
        "by": approval.by,
        "role": approval.role,
        "decision": approval.verdict,
        "comment": approval.comment,
        "at": iso(approval.at),
        "release_identity": approval.release_digest,
    }
