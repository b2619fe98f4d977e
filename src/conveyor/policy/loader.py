"""Rule files (`policies/*.yaml`) to checked, frozen Rules, or SpecError with every issue.

Each expression is compiled and checked against the decision input when the
file is read, and each message's placeholders too, so a rule that loads
always evaluates to an outcome or to an error about the input's values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from conveyor.core.errors import Location, SpecError, SpecIssue
from conveyor.policy.decision_input import DecisionInput
from conveyor.policy.expressions import check_expression
from conveyor.policy.files import FileCheck, read_sources
from conveyor.policy.messages import check_message
from conveyor.policy.model import Effect, Rule
from conveyor.policy.reading import InputError, read_input, zone_problem
from conveyor.spec.source import Document, NodePath, SourceMap, describe, read_yaml

SHAPE = "a mapping with 'version: 1' and 'rules:'"
INPUT_SHAPE = 'an object with the decision input, like {"environment": {"name": "prod"}}'
RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
FILE_KEYS = ("version", "zone", "rules")
RULE_KEYS = ("name", "description", "when", "deny", "warn", "message", "zone")
_SYNONYMS = {
    "policies": "rules",
    "policy": "rules",
    "id": "name",
    "if": "when",
    "condition": "when",
    "guard": "when",
    "block": "deny",
    "forbid": "deny",
    "error": "deny",
    "fail": "deny",
    "warning": "warn",
    "msg": "message",
    "reason": "message",
    "timezone": "zone",
    "time_zone": "zone",
    "tz": "zone",
    "desc": "description",
}


def load_rules(paths: Sequence[Path]) -> tuple[Rule, ...]:
    """Read and check the rule files at `paths`; they are named in messages as given."""
    return read_rules(read_sources(paths))


def load_input(path: Path) -> DecisionInput:
    """Read a decision input from a JSON (or YAML) file; SpecError with every problem located."""
    [(file, data)] = read_sources([path]).items()
    try:
        document = read_yaml(data, file, shape=INPUT_SHAPE)
    except SpecError as error:
        # JSON that YAML cannot read (tabs for indentation); its values are still JSON's.
        document = _json_document(data, file, error)
    check = FileCheck(document)
    try:
        facts = read_input(document.data)
    except InputError as error:
        check.add_input_problems((), error)
        raise SpecError(check.issues) from None
    if check.issues:
        raise SpecError(check.issues)
    return facts


def _json_document(data: bytes, file: str, error: SpecError) -> Document:
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        if not file.endswith(".json"):
            raise error from None
        where = Location(file, exc.lineno, exc.colno)
        raise SpecError([SpecIssue(where, f"invalid JSON: {exc.msg}")]) from None
    except (ValueError, RecursionError):
        raise error from None
    if not isinstance(value, dict):
        where = Location(file, 1, 1)
        raise SpecError([SpecIssue(where, f"expected {INPUT_SHAPE}, found {describe(value)}")])
    return Document(value, SourceMap(file))


def read_rules(sources: Mapping[str, bytes]) -> tuple[Rule, ...]:
    """Check rule files given as {name: content}; SpecError with every issue in all of them."""
    rules: list[Rule] = []
    issues: list[SpecIssue] = []
    names: list[tuple[str, Location]] = []
    for file, data in sources.items():
        try:
            check = FileCheck(read_yaml(data, file, shape=SHAPE))
        except SpecError as error:
            issues.extend(error.issues)
            continue
        reader = _RuleFile(check)
        rules.extend(reader.rules())
        issues.extend(check.issues)
        names.extend(reader.names)
    issues.extend(_duplicates(names))
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))
    return tuple(rules)


def _duplicates(names: Sequence[tuple[str, Location]]) -> Iterator[SpecIssue]:
    first: dict[str, Location] = {}
    for name, where in names:
        if name in first:
            message = f"rule '{name}' is defined twice; the first is at {first[name]}"
            yield SpecIssue(where, message, "rename or remove one of them")
        else:
            first[name] = where


class _RuleFile:
    """Checks one rule file and builds its Rules."""

    def __init__(self, check: FileCheck) -> None:
        self.check = check
        self.zone = "UTC"
        self.names: list[tuple[str, Location]] = []

    def rules(self) -> Iterator[Rule]:
        """The file's valid rules; its problems go to the check's issues."""
        check = self.check
        data = check.mapping((), check.document.data, FILE_KEYS, _SYNONYMS) or {}
        check.version()
        if "zone" in data:
            self.zone = self._zone(("zone",), data["zone"]) or "UTC"
        if check.lacks(data, "rules", FILE_KEYS, _SYNONYMS):
            check.add((), "the file has no 'rules'", "add 'rules:' with a list of rules")
        for index, entry in enumerate(check.items(("rules",), data.get("rules", []))):
            rule = self._rule(("rules", index), entry)
            if rule is not None:
                yield rule

    def _rule(self, at: NodePath, entry: object) -> Rule | None:
        check = self.check
        data = check.mapping(at, entry, RULE_KEYS, _SYNONYMS)
        if data is None:
            return None
        name = self._name(at, data)
        effect = self._effect(at, data, name or "this rule")
        message = self._message(at, data)
        when = self._expression((*at, "when"), data["when"]) if "when" in data else None
        zone = self._zone((*at, "zone"), data["zone"]) if "zone" in data else self.zone
        description = self._description(at, data)
        if name is None or effect is None or message is None or zone is None:
            return None
        if "when" in data and when is None:
            return None
        kind, expression = effect
        return Rule(
            name=name,
            effect=kind,
            expression=expression,
            message=message,
            location=check.positions.value((*at, "name")),
            description=description,
            when=when,
            zone=zone,
        )

    def _description(self, at: NodePath, data: dict[str, object]) -> str:
        if "description" not in data:
            return ""
        text = self.check.text((*at, "description"), data["description"])
        return " ".join((text or "").split())

    def _name(self, at: NodePath, data: dict[str, object]) -> str | None:
        if "name" not in data:
            if self.check.lacks(data, "name", RULE_KEYS, _SYNONYMS):
                self.check.add(at, "a rule needs a 'name'", "add 'name:', like name: tests-green")
            return None
        name = self.check.text((*at, "name"), data["name"])
        if name is not None and not RULE_NAME.fullmatch(name):
            fixed = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "my-rule"
            message = f"rule name '{name}' may only use letters, digits, '-', '_' and '.'"
            self.check.add((*at, "name"), message, f"try '{fixed}'")
            return None
        if name is not None:
            self.names.append((name, self.check.positions.value((*at, "name"))))
        return name

    def _effect(
        self, at: NodePath, data: dict[str, object], name: str
    ) -> tuple[Effect, str] | None:
        given: list[Effect] = [key for key in ("deny", "warn") if key in data]
        if not given:
            if all(self.check.lacks(data, key, RULE_KEYS, _SYNONYMS) for key in ("deny", "warn")):
                hint = "add 'deny:' (or 'warn:') with a CEL expression that is true when it applies"
                self.check.add(at, f"rule '{name}' has neither 'deny' nor 'warn'", hint)
            return None
        if len(given) == 2:
            message = f"rule '{name}' has both 'deny' and 'warn'; a rule has one outcome"
            self.check.add((*at, "warn"), message, "split it into two rules", key=True)
            return None
        expression = self._expression((*at, given[0]), data[given[0]])
        return None if expression is None else (given[0], expression)

    def _expression(self, path: NodePath, value: object) -> str | None:
        source = self.check.text(path, value)
        if source is None:
            return None
        problems = check_expression(source)
        self.check.add_inside(path, problems)
        return None if problems else source

    def _message(self, at: NodePath, data: dict[str, object]) -> str | None:
        if "message" not in data:
            if not self.check.lacks(data, "message", RULE_KEYS, _SYNONYMS):
                return None
            hint = "add 'message:' saying what to do, like \"{release.tests.failed} tests failed\""
            self.check.add(at, "a rule needs a 'message'", hint)
            return None
        message = self.check.text((*at, "message"), data["message"])
        if message is None:
            return None
        problems = check_message(message)
        self.check.add_inside((*at, "message"), problems)
        return None if problems else message.strip()

    def _zone(self, path: NodePath, value: object) -> str | None:
        zone = self.check.text(path, value)
        if zone is None:
            return None
        problem = zone_problem(zone.strip())
        if problem is not None:
            self.check.add(path, *problem)
            return None
        return zone.strip()
