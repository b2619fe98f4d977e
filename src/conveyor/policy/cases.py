"""Tests of the rules themselves: example inputs (`policies/tests/*.yaml`) and expected outcomes.

A case names an input (missing parts take neutral defaults) and what the
rules must decide: the overall outcome, and for some rules their own outcome.
A rule that cannot be evaluated denies; a case expects that with `error`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from conveyor.core.errors import Location, SpecError, SpecIssue
from conveyor.core.values import frozen
from conveyor.policy.decision_input import DecisionInput
from conveyor.policy.evaluate import evaluate
from conveyor.policy.files import FileCheck, read_sources
from conveyor.policy.model import OUTCOMES, Decision, Outcome, Rule, RuleResult
from conveyor.policy.reading import InputError, read_input
from conveyor.spec.source import NodePath, read_yaml
from conveyor.spec.suggest import did_you_mean, one_of

SHAPE = "a mapping with 'version: 1' and 'cases:'"
Expected = Literal["allow", "warn", "deny", "error"]
EXPECTED: tuple[Expected, ...] = ("allow", "warn", "deny", "error")
T = TypeVar("T", bound=str)
_SYNONYMS = {"tests": "cases", "examples": "cases", "facts": "input", "expected": "expect"}


@frozen
class Case:
    """One example input and what the rules must decide about it."""

    name: str
    location: Location
    input: DecisionInput
    outcome: Outcome | None
    rules: tuple[tuple[str, Expected], ...]


@frozen
class Mismatch:
    """One expectation a case did not meet: the overall outcome, or one rule's."""

    subject: str
    expected: str
    actual: str
    detail: str | None = None


@frozen
class CaseResult:
    """A case, what the rules decided, and where that differs from what it expects."""

    case: Case
    decision: Decision
    mismatches: tuple[Mismatch, ...]

    @property
    def passed(self) -> bool:
        """Whether the rules decided everything the case expects."""
        return not self.mismatches


def run_cases(rules: Sequence[Rule], cases: Sequence[Case]) -> tuple[CaseResult, ...]:
    """Decide every case's input with all the rules and compare with its expectations."""
    return tuple(_run(rules, case) for case in cases)


def _run(rules: Sequence[Rule], case: Case) -> CaseResult:
    decision = evaluate(rules, case.input)
    mismatches = []
    if case.outcome is not None and decision.outcome != case.outcome:
        mismatches.append(Mismatch("outcome", case.outcome, decision.outcome))
    for name, expected in case.rules:
        result = decision.result(name)
        assert result is not None, "case files name only rules that exist"
        actual = _actual(result)
        if actual != expected:
            mismatches.append(Mismatch(name, expected, actual, result.message))
    return CaseResult(case, decision, tuple(mismatches))


def _actual(result: RuleResult) -> Expected:
    return "error" if result.error is not None else result.outcome


def load_cases(paths: Sequence[Path], rules: Sequence[Rule]) -> tuple[Case, ...]:
    """Read and check the case files at `paths` against `rules`; named in messages as given."""
    return read_cases(read_sources(paths), rules)


def read_cases(sources: Mapping[str, bytes], rules: Sequence[Rule]) -> tuple[Case, ...]:
    """Check case files given as {name: content}; SpecError with every issue in all of them."""
    names = [rule.name for rule in rules]
    cases: list[Case] = []
    issues: list[SpecIssue] = []
    for file, data in sources.items():
        try:
            check = FileCheck(read_yaml(data, file, shape=SHAPE))
        except SpecError as error:
            issues.extend(error.issues)
            continue
        cases.extend(_CaseFile(check, names).cases())
        issues.extend(check.issues)
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))
    return tuple(cases)


class _CaseFile:
    """Checks one case file and builds its Cases."""

    def __init__(self, check: FileCheck, rules: Sequence[str]) -> None:
        self.check = check
        self.rules = rules
        self.seen: dict[str, Location] = {}

    def cases(self) -> Iterator[Case]:
        """The file's valid cases; its problems go to the check's issues."""
        check = self.check
        data = check.mapping((), check.document.data, ("version", "cases"), _SYNONYMS) or {}
        check.version()
        if check.lacks(data, "cases", ("version", "cases"), _SYNONYMS):
            check.add((), "the file has no 'cases'", "add 'cases:' with a list of cases")
        for index, entry in enumerate(check.items(("cases",), data.get("cases", []))):
            case = self._case(("cases", index), entry)
            if case is not None:
                yield case

    def _case(self, at: NodePath, entry: object) -> Case | None:
        data = self.check.mapping(at, entry, ("name", "input", "expect"), _SYNONYMS)
        if data is None:
            return None
        name = self._name(at, data)
        facts = self._input((*at, "input"), data.get("input", {}))
        expect = self._expect(at, data)
        if name is None or facts is None or expect is None:
            return None
        outcome, rules = expect
        return Case(name, self.check.at(at), facts, outcome, rules)

    def _name(self, at: NodePath, data: dict[str, object]) -> str | None:
        if "name" not in data:
            self.check.add(at, "a case needs a 'name'", "add 'name:' saying what it shows")
            return None
        name = self.check.text((*at, "name"), data["name"])
        if name is not None and name in self.seen:
            message = f"case '{name}' is defined twice; the first is at {self.seen[name]}"
            self.check.add((*at, "name"), message, "give each case its own name")
        elif name is not None:
            self.seen[name] = self.check.positions.value((*at, "name"))
        return name

    def _input(self, path: NodePath, value: object) -> DecisionInput | None:
        if value is None:
            return DecisionInput()
        if not isinstance(value, dict):
            self.check.add(path, "'input' must be a mapping, like {environment: {name: prod}}")
            return None
        try:
            return read_input(value)
        except InputError as error:
            self.check.add_input_problems(path, error)
            return None

    def _expect(
        self, at: NodePath, data: dict[str, object]
    ) -> tuple[Outcome | None, tuple[tuple[str, Expected], ...]] | None:
        path = (*at, "expect")
        if "expect" not in data:
            hint = "add 'expect:', like expect: {outcome: deny, rules: {tests-green: deny}}"
            self.check.add(at, "a case needs 'expect'", hint)
            return None
        expect = self.check.mapping(path, data["expect"], ("outcome", "rules"))
        if expect is None:
            return None
        if not expect:
            self.check.add(path, "'expect' is empty", "name an 'outcome', or 'rules' outcomes")
            return None
        outcome = None
        if "outcome" in expect:
            outcome = self._outcome((*path, "outcome"), expect["outcome"], OUTCOMES)
        rules = self._rules((*path, "rules"), expect.get("rules", {}))
        if ("outcome" in expect and outcome is None) or rules is None:
            return None
        return outcome, rules

    def _rules(self, path: NodePath, value: object) -> tuple[tuple[str, Expected], ...] | None:
        if not isinstance(value, dict):
            message = "'rules' must map rule names to outcomes, like {tests-green: deny}"
            self.check.add(path, message)
            return None
        expected: list[tuple[str, Expected]] = []
        for name, outcome in value.items():
            if name not in self.rules:
                hint = did_you_mean(name, self.rules) or f"the rules are {one_of(self.rules)}"
                self.check.add((*path, name), f"there is no rule '{name}'", hint, key=True)
                continue
            checked = self._outcome((*path, name), outcome, EXPECTED)
            if checked is not None:
                expected.append((name, checked))
        return tuple(expected) if len(expected) == len(value) else None

    def _outcome(self, path: NodePath, value: object, choices: tuple[T, ...]) -> T | None:
        for choice in choices:
            if value == choice:
                return choice
        hint = did_you_mean(str(value), choices) or f"write {one_of(choices)}"
        self.check.add(path, f"'{value}' is not an outcome", hint)
        return None
