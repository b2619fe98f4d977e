"""Rules and decisions as values: what a rule says, and what it decided about one input."""

from __future__ import annotations

from typing import Literal

from conveyor.core.errors import Location
from conveyor.core.values import frozen

Outcome = Literal["allow", "warn", "deny"]
OUTCOMES: tuple[Outcome, ...] = ("allow", "warn", "deny")
Effect = Literal["warn", "deny"]


@frozen
class Rule:
    """One policy rule: when `expression` is true (and `when` allows), the outcome is `effect`."""

    name: str
    effect: Effect
    expression: str
    message: str
    location: Location
    description: str = ""
    when: str | None = None
    zone: str = "UTC"


@frozen
class RuleResult:
    """What one rule decided: its outcome, and why when it is not `allow`.

    `applied` is false when the rule's `when` guard was false. `error` is set
    when the rule could not be evaluated; the outcome is then `deny` (fail
    closed) and `message` says which rule failed and how.
    """

    rule: str
    outcome: Outcome
    applied: bool
    message: str | None = None
    error: str | None = None


@frozen
class Decision:
    """The outcome of a set of rules for one input: deny wins, then warn, else allow."""

    outcome: Outcome
    results: tuple[RuleResult, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """The messages of every rule that warned or denied, in rule order."""
        return tuple(r.message for r in self.results if r.message is not None)

    @property
    def errors(self) -> tuple[RuleResult, ...]:
        """The rules that could not be evaluated (and so denied)."""
        return tuple(r for r in self.results if r.error is not None)

    def result(self, rule: str) -> RuleResult | None:
        """The result of the rule named `rule`, if it was evaluated."""
        return next((r for r in self.results if r.rule == rule), None)


def strongest(outcomes: list[Outcome]) -> Outcome:
    """Deny wins over warn, warn over allow; nothing at all allows."""
    return max(outcomes, key=OUTCOMES.index, default="allow")
