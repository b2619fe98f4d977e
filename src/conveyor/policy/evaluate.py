"""Deciding: each selected rule evaluated against one input; deny wins, and errors deny."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from conveyor.core.errors import NotFound, SpecIssue
from conveyor.policy.decision_input import DecisionInput
from conveyor.policy.expressions import EvaluationError, activation, evaluate_expression
from conveyor.policy.messages import render_message
from conveyor.policy.model import Decision, Rule, RuleResult, strongest
from conveyor.policy.reading import to_plain
from conveyor.spec.delivery import Environment
from conveyor.spec.suggest import did_you_mean

if TYPE_CHECKING:
    from celpy.evaluation import Context


class UnknownRule(NotFound):
    """An environment requires a policy rule that no rule file defines."""


def evaluate(
    rules: Sequence[Rule], facts: DecisionInput, names: Sequence[str] | None = None
) -> Decision:
    """Decide `facts` with the rules named in `names` (every rule when None), in that order."""
    views = _Views(facts)
    results = tuple(_decide(rule, views) for rule in select_rules(rules, names, facts))
    return Decision(strongest([result.outcome for result in results]), results)


def select_rules(
    rules: Sequence[Rule], names: Sequence[str] | None, facts: DecisionInput
) -> list[Rule]:
    """The rules `names` asks for; UnknownRule naming the environment when one does not exist."""
    if names is None:
        return list(rules)
    by_name = {rule.name: rule for rule in rules}
    wanted = list(dict.fromkeys(names))
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise UnknownRule(_missing(missing, list(by_name), facts.environment.name))
    return [by_name[name] for name in wanted]


def check_required(rules: Sequence[Rule], environments: Sequence[Environment]) -> list[SpecIssue]:
    """An issue for every `requires.policies` entry that names no rule, at its environment."""
    known = [rule.name for rule in rules]
    issues = []
    for environment in environments:
        for name in environment.requires.policies:
            if name not in known:
                message = f"environment '{environment.name}' requires policy rule '{name}', "
                message += "which no rule file defines"
                hint = did_you_mean(name, known) or _defined(known)
                issues.append(SpecIssue(environment.location, message, hint))
    return issues


def _missing(missing: list[str], known: list[str], environment: str) -> str:
    who = f"environment '{environment}'" if environment else "the promotion"
    lines = []
    for name in missing:
        hint = did_you_mean(name, known) or _defined(known)
        lines.append(f"{who} requires policy rule '{name}', which no rule file defines; {hint}")
    return "\n".join(lines)


def _defined(known: list[str]) -> str:
    if not known:
        return "policies/*.yaml defines no rules yet"
    shown = ", ".join(f"'{name}'" for name in known[:12])
    return f"the rules are {shown}" + (f" and {len(known) - 12} more" if len(known) > 12 else "")


class _Views:
    """The input as each zone sees it (CEL values and plain values), made once per zone."""

    def __init__(self, facts: DecisionInput) -> None:
        self.facts = facts
        self._cel: dict[str, Context] = {}
        self._plain: dict[str, dict[str, object]] = {}

    def cel(self, zone: str) -> Context:
        """The CEL activation of the input with `time` in `zone`."""
        if zone not in self._cel:
            self._cel[zone] = activation(self.facts.in_zone(zone))
        return self._cel[zone]

    def plain(self, zone: str) -> dict[str, object]:
        """The plain values of the input with `time` in `zone`, for messages."""
        if zone not in self._plain:
            self._plain[zone] = to_plain(self.facts.in_zone(zone))
        return self._plain[zone]


def _decide(rule: Rule, views: _Views) -> RuleResult:
    context = views.cel(rule.zone)
    part = "when"
    try:
        if rule.when is not None and not evaluate_expression(rule.when, context):
            return RuleResult(rule.name, "allow", applied=False)
        part = rule.effect
        triggered = evaluate_expression(rule.expression, context)
    except EvaluationError as exc:
        error = f"its '{part}' cannot be evaluated: {exc}"
        message = f"rule '{rule.name}' failed, so it denies: {error}"
        return RuleResult(rule.name, "deny", applied=True, message=message, error=error)
    if not triggered:
        return RuleResult(rule.name, "allow", applied=True)
    message = render_message(rule.message, views.plain(rule.zone))
    return RuleResult(rule.name, rule.effect, applied=True, message=message)
