"""Waivers: time-boxed, justified, approved exceptions to one Policy rule in one Environment (pure).

A Waiver is requested by one person and takes effect once a second person
approves it; it ends when it expires or is revoked. Its state is computed
from its record at a time, never stored:

```
pending ──(approved by someone else)──▶ active ──(expires_at)──▶ expired
   │                                      │
   ├──(rejected)──▶ rejected               └──(revoked)──▶ revoked
   └──(expires_at)──▶ expired
```

An active Waiver excuses what its rule decides (`deny`) for promotions into
its environment of its project; a rule that cannot be evaluated still
blocks, since a Waiver excuses a decision, not a broken rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NewType, get_args

from conveyor.core.values import frozen

WaiverId = NewType("WaiverId", int)
WaiverState = Literal["pending", "active", "expired", "rejected", "revoked"]
WAIVER_STATES: tuple[WaiverState, ...] = get_args(WaiverState)
WaiverDecision = Literal["approved", "rejected"]

# A waiver is an exception, not a standing rule: the longest one lasts 30 days.
MAX_DURATION_S = 30 * 86400.0
MAX_DURATION_TEXT = "30d"
# Who may approve, reject or revoke a waiver (besides its requester withdrawing it).
DECIDING_ROLES: tuple[str, ...] = ("approver", "release-manager", "admin")


@frozen
class NewWaiver:
    """A Waiver about to be recorded: which rule, where, why, by whom, until when."""

    project: str
    rule: str
    environment: str
    reason: str
    requested_by: str
    requested_at: float
    expires_at: float


@frozen(kw_only=True)
class Waiver(NewWaiver):
    """A recorded Waiver with its decision and revocation, if any."""

    id: WaiverId
    decided_by: str | None = None
    decided_at: float | None = None
    decision: WaiverDecision | None = None
    comment: str = ""
    revoked_by: str | None = None
    revoked_at: float | None = None

    def state(self, now: float) -> WaiverState:
        """What the Waiver is at `now`: revoked and rejected are final, then expiry wins."""
        if self.revoked_at is not None:
            return "revoked"
        if self.decision == "rejected":
            return "rejected"
        if now >= self.expires_at:
            return "expired"
        return "active" if self.decision == "approved" else "pending"

    def covers(self, rule: str, environment: str, now: float) -> bool:
        """Whether the Waiver excuses `rule` in `environment` at `now`."""
        return self.rule == rule and self.environment == environment and self.state(now) == "active"

    @property
    def subject(self) -> str:
        """The subject of its lifecycle Events."""
        return waiver_subject(self.project, self.id)


def waiver_subject(project: str, waiver_id: int) -> str:
    """`waiver/<project>/<id>`: where a Waiver's own Events are recorded."""
    return f"waiver/{project}/{waiver_id}"


def covering(waivers: Iterable[Waiver], rule: str, environment: str, now: float) -> Waiver | None:
    """The active Waiver for `rule` in `environment` that lasts longest (lowest id on a tie)."""
    found = [w for w in waivers if w.covers(rule, environment, now)]
    return max(found, key=lambda w: (w.expires_at, -w.id), default=None)


def duration_problem(seconds: float) -> str | None:
    """Why a waiver cannot last `seconds`, or None when it may."""
    if seconds <= 0:
        return "a waiver must last some time; give a positive duration, like 48h"
    if seconds > MAX_DURATION_S:
        return (
            f"a waiver lasts at most {MAX_DURATION_TEXT}; ask again when it ends "
            "or change the rule instead"
        )
    return None
