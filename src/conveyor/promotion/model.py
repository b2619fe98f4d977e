"""What a Promotion is: a request to move one Release into one Environment, and its Gates.

A Promotion's state is computed from its last Gate report while it is open
(`pending`, `blocked`, `approved`); people and later steps move it on:
`rejected` by a reject, `superseded` by a newer promotion into the same
environment, `deployed` or `failed` by the Deployment that carries it out.

```
pending ─┐           ┌─▶ approved ─▶ deployed | failed
blocked ─┴─(gates)───┤
                     └─▶ rejected | superseded      (closed: never approved again)
```
"""

from __future__ import annotations

from typing import Literal, NewType, get_args

from conveyor.core.values import field, frozen
from conveyor.policy.decision_input import DecisionInput
from conveyor.policy.model import Rule
from conveyor.policy.waiver import Waiver
from conveyor.release.model import ReleaseId
from conveyor.spec.delivery import Requirements

PromotionId = NewType("PromotionId", int)

PromotionState = Literal[
    "pending", "blocked", "approved", "rejected", "superseded", "deployed", "failed"
]
PROMOTION_STATES: tuple[PromotionState, ...] = get_args(PromotionState)
# Re-evaluated until the gates decide; a newer promotion into the environment supersedes them.
OPEN_STATES: frozenset[PromotionState] = frozenset({"pending", "blocked"})
# Approvals and rejections are accepted while the promotion has not been carried out or closed.
DECIDABLE_STATES: frozenset[PromotionState] = frozenset({"pending", "blocked", "approved"})

GateName = Literal["after", "soak", "approvals", "window", "freeze", "policies", "signed"]
GATES: tuple[GateName, ...] = get_args(GateName)
GateOutcome = Literal["passed", "waiting", "blocked"]
Verdict = Literal["approve", "reject"]


@frozen
class GateResult:
    """What one Gate decided, and why, in words a person reads.

    `waiting` passes by itself once time moves to `retry_at` (a window opens,
    a soak ends). `blocked` needs something else to change: a person (an
    approval), another step (a deployment into the previous environment), or
    time when `retry_at` is set (a freeze ends). A `final` block cannot clear
    while the promotion waits: a new promotion is needed. A gate that passed
    may still set `retry_at` when it will change by itself (a waiver it relied
    on expires); `waivers` are the ids of the Waivers its outcome relied on.
    """

    gate: GateName
    outcome: GateOutcome
    reason: str
    retry_at: float | None = None
    final: bool = False
    notes: tuple[str, ...] = ()
    waivers: tuple[int, ...] = ()

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@frozen
class GateReport:
    """Every Gate of one evaluation, in order, and when it was made."""

    evaluated_at: float
    gates: tuple[GateResult, ...]

    @property
    def state(self) -> PromotionState:
        """`approved` when every gate passed, `blocked` when one blocks, else `pending`."""
        if all(gate.passed for gate in self.gates):
            return "approved"
        if any(gate.outcome == "blocked" for gate in self.gates):
            return "blocked"
        return "pending"

    @property
    def final(self) -> bool:
        """Whether a gate blocks in a way waiting cannot clear."""
        return any(gate.final for gate in self.gates if not gate.passed)

    @property
    def retry_at(self) -> float | None:
        """The next moment a gate may change by itself (a window opens, a soak, a freeze or
        a waiver a passed gate relied on ends)."""
        times = [g.retry_at for g in self.gates if g.retry_at is not None]
        return min(times, default=None)

    @property
    def earliest_pass(self) -> float | None:
        """No approval before this moment: the last of the timed gates' retry times."""
        times = [g.retry_at for g in self.gates if not g.passed and g.retry_at is not None]
        return max(times, default=None)

    def gate(self, name: GateName) -> GateResult:
        return next(gate for gate in self.gates if gate.gate == name)

    def same_as(self, other: GateReport | None) -> bool:
        """Whether `other` decided the same, whenever it was made."""
        return other is not None and self.gates == other.gates


@frozen
class Actor:
    """Who acts, and the roles the workspace's roles map gives them."""

    name: str
    roles: tuple[str, ...] = ()

    @property
    def identity(self) -> str:
        """The name as compared and recorded: trimmed, case folded (emails ignore case)."""
        return identity(self.name)


def identity(name: str) -> str:
    """A person's name or email as Conveyor compares it."""
    return name.strip().casefold()


@frozen
class Approval:
    """One person's recorded decision on one Promotion of one Release identity."""

    id: int
    promotion_id: PromotionId
    release_digest: str
    by: str
    role: str
    verdict: Verdict
    comment: str
    at: float


@frozen
class Basis:
    """What a Promotion is judged by, fixed when it is requested.

    The environment's requirements and the policy rules they name are taken
    from the workspace at request time, so nobody loosens them afterwards
    (an approver editing conveyor.yaml changes nothing for this promotion),
    and `why` shows the rules that decided.
    """

    requirements: Requirements
    rules: tuple[Rule, ...] = ()
    requester_roles: tuple[str, ...] = ()


@frozen
class NewPromotion:
    """A Promotion about to be recorded."""

    project: str
    service: str
    version: str
    release_id: ReleaseId
    release_digest: str
    environment: str
    requested_by: str
    requested_at: float
    basis: Basis


@frozen(kw_only=True)
class Promotion(NewPromotion):
    """A recorded Promotion with its state, last Gate report and approvals."""

    id: PromotionId
    state: PromotionState
    updated_at: float
    revision: int
    report: GateReport | None = None
    approvals: tuple[Approval, ...] = ()

    @property
    def subject(self) -> str:
        """The subject of its Events, below its Release's."""
        return promotion_subject(self.service, self.version, self.id)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


def promotion_subject(service: str, version: str, promotion_id: int) -> str:
    """`release/<service>/<version>/promotion/<id>`: its Release's events include it."""
    return f"release/{service}/{version}/promotion/{promotion_id}"


@frozen
class EnvironmentState:
    """The Release running in one Environment: since when, and since when healthy (or not)."""

    environment: str
    release_id: ReleaseId
    version: str
    deployed_at: float
    healthy_since: float | None = None


@frozen
class PromotionFacts:
    """Everything the Gates read about one Promotion, gathered by the service.

    `authors` are the identities of the authors, committers and co-authors of
    the Release's commits. `previous` is what runs in the environment the
    requirements name as `after`. `artifact_problems` is what the artifact
    check found (empty when the content matches the Release's digests).
    `waivers` are the environment's approved, unrevoked Waivers; the policies
    Gate decides which are active at its time.
    """

    environment: str
    version: str
    release_id: ReleaseId
    release_digest: str
    requester: str
    authors: frozenset[str] = frozenset()
    previous: EnvironmentState | None = None
    approvals: tuple[Approval, ...] = ()
    rules: tuple[Rule, ...] = ()
    policy_input: DecisionInput = field(default_factory=DecisionInput)
    artifact_problems: tuple[str, ...] = ()
    waivers: tuple[Waiver, ...] = ()
