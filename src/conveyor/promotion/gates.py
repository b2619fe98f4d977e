"""The Gates of a Promotion: each a small function from facts to an outcome with a reason (pure).

Every gate is evaluated every time, in the order of `GATES`, so a report
always shows all of them; a requirement the environment does not set
passes and says so. Reasons name absolute times (UTC), never "in 5
minutes", so an unchanged situation gives an identical report.
"""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.core.clock import iso
from conveyor.core.durations import format_duration
from conveyor.core.errors import ConveyorError
from conveyor.core.values import replace
from conveyor.policy import decision_input as policy_input
from conveyor.policy.evaluate import evaluate
from conveyor.policy.model import Decision
from conveyor.policy.waiver import Waiver, covering
from conveyor.promotion.duties import discounted
from conveyor.promotion.model import Approval, GateReport, GateResult, PromotionFacts
from conveyor.spec.delivery import Freeze, Requirements


def evaluate_gates(facts: PromotionFacts, requirements: Requirements, now: float) -> GateReport:
    """Every Gate's outcome for `facts` under `requirements` at `now` (epoch seconds)."""
    return GateReport(
        evaluated_at=now,
        gates=(
            after_gate(facts, requirements),
            soak_gate(facts, requirements, now),
            approvals_gate(facts, requirements),
            window_gate(requirements, now),
            freeze_gate(requirements, now),
            policies_gate(facts, requirements, now),
            signed_gate(facts, requirements),
        ),
    )


def _at(ts: float) -> str:
    return iso(ts) or ""


def _span(seconds: float) -> str:
    """`10m`, `2h`, `1h30m` for whole minutes as people write soaks; else `45.0s`."""
    whole = round(seconds)
    if whole < 60 or whole % 60 or whole != seconds:
        return format_duration(seconds)
    hours, minutes = divmod(whole // 60, 60)
    if hours and minutes:
        return f"{hours}h{minutes:02d}m"
    return f"{hours}h" if hours else f"{minutes}m"


def after_gate(facts: PromotionFacts, requirements: Requirements) -> GateResult:
    """The Release runs, healthy, in the environment it must come from."""
    after, version = requirements.after, facts.version
    if after is None:
        return GateResult("after", "passed", "no earlier environment is required")
    previous = facts.previous
    if previous is None:
        reason = f"{version} is not deployed in {after}; promote it to {after} first"
        return GateResult("after", "blocked", reason)
    if previous.release_id != facts.release_id:
        reason = (
            f"{after} runs {previous.version}, not {version}; promote {version} to {after} first"
        )
        return GateResult("after", "blocked", reason)
    if previous.healthy_since is None:
        reason = f"{version} is deployed in {after} since {_at(previous.deployed_at)}, not healthy"
        return GateResult("after", "blocked", reason)
    reason = f"{version} is deployed in {after} and healthy since {_at(previous.healthy_since)}"
    return GateResult("after", "passed", reason)


def soak_gate(facts: PromotionFacts, requirements: Requirements, now: float) -> GateResult:
    """The Release has been healthy in the previous environment for at least the soak time."""
    soak, after = requirements.soak_s, requirements.after
    if soak is None or after is None:
        return GateResult("soak", "passed", "no soak time is required")
    span = _span(soak)
    previous = facts.previous
    if previous is None or previous.release_id != facts.release_id:
        reason = f"the {span} soak starts once {facts.version} is healthy in {after}"
        return GateResult("soak", "blocked", reason)
    if previous.healthy_since is None:
        reason = f"the {span} soak starts once {facts.version} is healthy in {after}"
        return GateResult("soak", "blocked", reason)
    ends = previous.healthy_since + soak
    since = _at(previous.healthy_since)
    if now < ends:
        reason = f"healthy in {after} since {since}; the {span} soak ends at {_at(ends)}"
        return GateResult("soak", "waiting", reason, retry_at=ends)
    return GateResult("soak", "passed", f"healthy in {after} since {since}, past the {span} soak")


def approvals_gate(facts: PromotionFacts, requirements: Requirements) -> GateResult:
    """Enough different people, in allowed roles and free of the change, approved."""
    wanted = requirements.approvals
    if wanted is None:
        return GateResult("approvals", "passed", "no approvals are required")
    rejections = [a for a in facts.approvals if a.verdict == "reject"]
    if rejections:
        reason = "; ".join(_rejected(a) for a in rejections)
        return GateResult("approvals", "blocked", reason, final=True)
    counted, notes = _counted(facts, wanted.roles)
    if len(counted) >= wanted.count:
        return GateResult("approvals", "passed", f"approved by {_by(counted)}", notes=notes)
    missing = wanted.count - len(counted)
    have = f"{len(counted)} of {wanted.count} approvals" + (
        f" (by {_by(counted)})" if counted else ""
    )
    reason = (
        f"{have}; needs {missing} more from someone with the role "
        f"{' or '.join(wanted.roles)} who neither requested it nor wrote a change in it"
    )
    return GateResult("approvals", "blocked", reason, notes=notes)


def _counted(
    facts: PromotionFacts, allowed: tuple[str, ...]
) -> tuple[list[Approval], tuple[str, ...]]:
    """The approvals that count (one per person), and why any others do not."""
    counted: dict[str, Approval] = {}
    notes: list[str] = []
    for approval in facts.approvals:
        if approval.verdict != "approve":
            continue
        why_not = discounted(
            approval,
            release_digest=facts.release_digest,
            requester=facts.requester,
            authors=facts.authors,
            allowed=allowed,
        )
        if why_not is not None:
            notes.append(f"not counted: {why_not}")
        else:
            counted.setdefault(approval.by, approval)
    return list(counted.values()), tuple(notes)


def _by(approvals: list[Approval]) -> str:
    return ", ".join(f"{a.by} ({a.role})" for a in approvals)


def _rejected(approval: Approval) -> str:
    text = f"rejected by {approval.by} ({approval.role})"
    return f"{text}: {approval.comment}" if approval.comment else text


def window_gate(requirements: Requirements, now: float) -> GateResult:
    """The promotion starts inside one of the environment's windows."""
    windows = requirements.windows
    if not windows:
        return GateResult("window", "passed", "no window is required")
    instant = datetime.fromtimestamp(now, UTC)
    for window in windows:
        if window.is_open(instant):
            return GateResult("window", "passed", f"inside the window '{window.text}'")
    opens = min(window.next_open(instant) for window in windows).timestamp()
    names = ", ".join(f"'{window.text}'" for window in windows)
    noun = "window" if len(windows) == 1 else "windows"
    reason = f"outside the {noun} {names}; the next opens at {_at(opens)}"
    return GateResult("window", "waiting", reason, retry_at=opens)


def freeze_gate(requirements: Requirements, now: float) -> GateResult:
    """No declared freeze covers now; a freeze blocks until it (and any it runs into) ends."""
    freezes = requirements.freezes
    instant = datetime.fromtimestamp(now, UTC)
    active = [freeze for freeze in freezes if freeze.covers(instant)]
    if not active:
        reason = "no freeze now" if freezes else "no freeze is declared"
        return GateResult("freeze", "passed", reason)
    end = _freeze_end(freezes, instant)
    why = "; ".join(dict.fromkeys(freeze.reason for freeze in active))
    reason = f"frozen until {_at(end.timestamp())}: {why}"
    return GateResult("freeze", "blocked", reason, retry_at=end.timestamp())


def _freeze_end(freezes: tuple[Freeze, ...], instant: datetime) -> datetime:
    """When the freezes covering `instant` end, following any that start before that."""
    end = instant
    while covering := [f for f in freezes if f.covers(end)]:
        end = max(f.end for f in covering)
    return end


def policies_gate(facts: PromotionFacts, requirements: Requirements, now: float) -> GateResult:
    """The policy rules the environment names allow it; errors and unknown rules deny."""
    names = requirements.policies
    if not names:
        return GateResult("policies", "passed", "no policy rules are required")
    approvals = tuple(
        policy_input.Approval(a.by, a.role, datetime.fromtimestamp(a.at, UTC).isoformat())
        for a in facts.approvals
        if a.verdict == "approve"
    )
    decision_input = replace(
        facts.policy_input,
        approvals=approvals,
        time=policy_input.time_facts(datetime.fromtimestamp(now, UTC)),
    )
    try:
        decision = evaluate(facts.rules, decision_input, names)
    except ConveyorError as exc:  # a rule the environment names is not defined: fail closed
        return GateResult("policies", "blocked", "; ".join(str(exc).splitlines()), final=True)
    return _policy_result(decision, names, _waived(decision, facts, now), facts.environment)


def _waived(decision: Decision, facts: PromotionFacts, now: float) -> dict[str, Waiver]:
    """The active Waiver excusing each rule that denied (a rule that failed is never waived)."""
    found: dict[str, Waiver] = {}
    for result in decision.results:
        if result.outcome == "deny" and result.error is None:
            waiver = covering(facts.waivers, result.rule, facts.environment, now)
            if waiver is not None:
                found[result.rule] = waiver
    return found


def _policy_result(
    decision: Decision, names: tuple[str, ...], waived: dict[str, Waiver], environment: str
) -> GateResult:
    rules = ", ".join(f"'{name}'" for name in names)
    denied = [r for r in decision.results if r.outcome == "deny" and r.rule not in waived]
    if denied:
        reason = "; ".join(
            r.message or "" if r.error else f"denied by '{r.rule}': {r.message}" for r in denied
        )
        hint = tuple(
            f"an exception to '{r.rule}' needs an approved waiver: `conveyor waiver create "
            f"--rule {r.rule} --env {environment} --expires 48h --reason ...`"
            for r in denied
            if r.error is None
        )
        return GateResult("policies", "blocked", reason, final=True, notes=hint)
    warnings = tuple(
        f"'{r.rule}' warns: {r.message}" for r in decision.results if r.outcome == "warn"
    )
    if waived:
        uses = "; ".join(_waiver_use(rule, waiver) for rule, waiver in waived.items())
        return GateResult(
            "policies",
            "passed",
            f"allowed by {rules}, with {uses}",
            retry_at=min(waiver.expires_at for waiver in waived.values()),
            notes=warnings,
            waivers=tuple(dict.fromkeys(int(waiver.id) for waiver in waived.values())),
        )
    if warnings:
        return GateResult(
            "policies", "passed", f"allowed by {rules}, with warnings", notes=warnings
        )
    return GateResult("policies", "passed", f"allowed by {rules}")


def _waiver_use(rule: str, waiver: Waiver) -> str:
    return f"'{rule}' waived by waiver {waiver.id} until {_at(waiver.expires_at)} ({waiver.reason})"


def signed_gate(facts: PromotionFacts, requirements: Requirements) -> GateResult:
    """The artifacts' content matches the Release's digests (signatures extend this check)."""
    if not requirements.signed:
        return GateResult("signed", "passed", "not required (signed: false)")
    if facts.artifact_problems:
        return GateResult("signed", "blocked", "; ".join(facts.artifact_problems), final=True)
    return GateResult("signed", "passed", "the artifacts match the release's digests")
