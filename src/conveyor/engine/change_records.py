"""Change records: built from the store, filed when a Promotion is recorded, sent to an ITSM.

A Promotion into an environment with `change_record: true` gets a change
record the moment it is recorded: a `change_record.created` Event holds the
digest of the record's JSON as filed, so a copy kept elsewhere (an ITSM's)
can be checked against the signed log. With `CONVEYOR_CHANGE_WEBHOOK` set,
the record is POSTed there (with `CONVEYOR_CHANGE_WEBHOOK_TOKEN` as a bearer
token); the outcome is an Event, `change_record.delivered` or
`change_record.delivery_failed`, and a failure is reported but never stops
the Promotion. The token is never recorded or shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.digest import canonical_json, of_bytes
from conveyor.core.errors import NotFound
from conveyor.core.masking import Masker
from conveyor.core.records import RunRecord, TestCounts
from conveyor.engine.releases import ReleaseService
from conveyor.engine.webhook import TIMEOUT_S, Delivery, post_json, shown_url
from conveyor.promotion.model import Promotion
from conveyor.release.change_record import (
    ApprovalLine,
    ChangeRecord,
    ChangeSize,
    GateLine,
    RiskFacts,
    assess_risk,
    to_json,
)
from conveyor.release.commits import is_merge, parse_message
from conveyor.release.model import Release
from conveyor.spec.delivery import Environment
from conveyor.store import events as event_log
from conveyor.store import evidence as evidence_store
from conveyor.store import releases as release_store
from conveyor.store import runs as run_store
from conveyor.store.db import Database

WEBHOOK_VARIABLE = "CONVEYOR_CHANGE_WEBHOOK"
TOKEN_VARIABLE = "CONVEYOR_CHANGE_WEBHOOK_TOKEN"  # noqa: S105 - a variable name, not a value
FILED = "change_record.created"
DELIVERED = "change_record.delivered"
DELIVERY_FAILED = "change_record.delivery_failed"
ACTOR = "conveyor"


class Sender(Protocol):
    """What POSTs a record: `post_json`, or anything with its signature."""

    def __call__(
        self, url: str, body: bytes, *, token: str | None, timeout_s: float
    ) -> Delivery: ...


class ChangeRecords:
    """Builds the change records of one store's Promotions and files new ones.

    It is a Promotion observer: the Promotion service calls `recorded` once a
    Promotion is recorded, with the Environment it goes into.
    """

    def __init__(
        self,
        *,
        db: Database,
        releases: ReleaseService,
        clock: Clock,
        environ: Mapping[str, str],
        warn: Callable[[str], None],
        send: Sender = post_json,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.db = db
        self.releases = releases
        self.clock = clock
        self.environ = environ
        self.warn = warn
        self.send = send
        self.timeout_s = timeout_s

    # --- filing ----------------------------------------------------------------

    def recorded(self, promotion: Promotion, environment: Environment) -> None:
        """File the change record of a Promotion into an environment that keeps them."""
        if not environment.change_record:
            return
        body = canonical_json(to_json(self.build(promotion)))
        url = self.environ.get(WEBHOOK_VARIABLE, "").strip()
        data: dict[str, object] = {
            "promotion": int(promotion.id),
            "environment": promotion.environment,
            "digest": of_bytes(body),
            "webhook": shown_url(url) if url else None,
        }
        self._append(NewEvent(FILED, promotion.subject, ACTOR, self.clock.now(), data))
        if url:
            self._deliver(promotion, url, body)

    def _deliver(self, promotion: Promotion, url: str, body: bytes) -> None:
        token = self.environ.get(TOKEN_VARIABLE, "").strip() or None
        outcome = self.send(url, body, token=token, timeout_s=self.timeout_s)
        reason = Masker([token] if token else []).mask(outcome.reason)
        shown = shown_url(url)
        data: dict[str, object] = {
            "promotion": int(promotion.id),
            "webhook": shown,
            "status": outcome.status,
            "reason": reason,
        }
        kind = DELIVERED if outcome.delivered else DELIVERY_FAILED
        self._append(NewEvent(kind, promotion.subject, ACTOR, self.clock.now(), data))
        if not outcome.delivered:
            self.warn(
                f"the change record of promotion {promotion.id} was not delivered to {shown}: "
                f"{reason}; the promotion goes on (recorded as {DELIVERY_FAILED})"
            )

    def _append(self, event: NewEvent) -> None:
        with self.db.write() as tx:
            event_log.append(tx, [event])

    # --- reading ---------------------------------------------------------------

    def filed(self, promotion: Promotion) -> bool:
        """Whether a change record was filed for `promotion` when it was recorded."""
        return evidence_store.has_event(self.db, subject=promotion.subject, kind=FILED)

    def get(self, promotion: Promotion) -> ChangeRecord:
        """The change record of a Promotion that has one, as it stands now."""
        if not self.filed(promotion):
            raise NotFound(
                f"promotion {promotion.id} into {promotion.environment} has no change record: "
                f"only environments with `change_record: true` keep them"
            )
        return self.build(promotion)

    def build(self, promotion: Promotion) -> ChangeRecord:
        """The change record of `promotion` from what the store holds now."""
        release = release_store.get_release(
            self.db, project=promotion.project, service=promotion.service, version=promotion.version
        )
        run = run_store.get_run(self.db, run_id=release.run_id)
        report = promotion.report
        return ChangeRecord(
            promotion=int(promotion.id),
            project=promotion.project,
            service=promotion.service,
            version=promotion.version,
            environment=promotion.environment,
            state=promotion.state,
            requested_by=promotion.requested_by,
            requested_at=promotion.requested_at,
            release_digest=promotion.release_digest,
            run_id=int(release.run_id),
            risk=assess_risk(facts := self._facts(promotion, release, run)),
            facts=facts,
            notes=self.releases.notes(release.version, service=release.service),
            gates=()
            if report is None
            else tuple(GateLine(g.gate, g.outcome, g.reason, g.notes) for g in report.gates),
            evaluated_at=None if report is None else report.evaluated_at,
            approvals=tuple(
                ApprovalLine(a.by, a.role, a.verdict, a.at, a.comment) for a in promotion.approvals
            ),
            generated_at=self.clock.now(),
        )

    def _facts(self, promotion: Promotion, release: Release, run: RunRecord) -> RiskFacts:
        last = evidence_store.previous_outcome(
            self.db,
            project=promotion.project,
            service=promotion.service,
            environment=promotion.environment,
            before=promotion.id,
        )
        return RiskFacts(
            size=change_size(release),
            tests=run_tests(run),
            previous_failure=last[1] if last is not None and last[0] == "failed" else None,
            warnings=policy_warnings(promotion),
        )


def change_size(release: Release) -> ChangeSize:
    """Commits (merges not counted) and breaking changes; files and lines are not recorded."""
    commits = [c for c in release.commits if not is_merge(c)]
    breaking = sum(1 for c in commits if parse_message(c.message).breaking)
    return ChangeSize(commits=len(commits), breaking=breaking)


def run_tests(run: RunRecord) -> TestCounts | None:
    """The test counts of every job of the Run that reported tests; None when none did."""
    counts = [job.tests for job in run.jobs if job.tests is not None]
    if not counts:
        return None
    return TestCounts(
        passed=sum(c.passed for c in counts),
        failed=sum(c.failed for c in counts),
        skipped=sum(c.skipped for c in counts),
    )


def policy_warnings(promotion: Promotion) -> tuple[str, ...]:
    """The warnings of the policy rules, as the `policies` Gate last reported them."""
    report = promotion.report
    if report is None:
        return ()
    return tuple(note for gate in report.gates if gate.gate == "policies" for note in gate.notes)
