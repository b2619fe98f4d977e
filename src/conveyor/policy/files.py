"""Checking the shape of policy files (rules and test cases), with every issue located."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.core.errors import Location, SpecError, SpecIssue
from conveyor.core.values import field, mutable
from conveyor.policy.reading import InputError
from conveyor.spec.cel import Problem
from conveyor.spec.source import Document, NodePath, SourceMap, describe
from conveyor.spec.suggest import closest, did_you_mean, one_of

VERSION = 1


def read_sources(paths: Sequence[Path]) -> dict[str, bytes]:
    """The content of each file, keyed by its path as given; SpecError for any unreadable."""
    sources = {}
    issues = []
    for path in paths:
        try:
            sources[str(path)] = path.read_bytes()
        except OSError as exc:
            message = f"cannot read '{path}': {exc.strerror or exc}"
            issues.append(SpecIssue(Location(str(path), 1, 1), message))
    if issues:
        raise SpecError(issues)
    return sources


@mutable
class FileCheck:
    """One file read with positions, and the issues found in it so far."""

    document: Document
    issues: list[SpecIssue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.issues.extend(self.document.issues)

    @property
    def positions(self) -> SourceMap:
        """Where each key and value of the file is."""
        return self.document.positions

    def add(
        self, path: NodePath, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        """Record an issue at the value (or, with `key`, the key) at `path`."""
        where = self.positions.key(path) if key else self.positions.value(path)
        self.issues.append(SpecIssue(where, message, hint))

    def add_inside(self, path: NodePath, problems: Sequence[Problem]) -> None:
        """Record problems found inside the text at `path`, at their offsets in it."""
        for offset, message, hint in problems:
            self.issues.append(SpecIssue(self.positions.inside(path, offset), message, hint))

    def add_input_problems(self, prefix: NodePath, error: InputError) -> None:
        """Record the problems of a decision input written at `prefix`."""
        for problem in error.problems:
            where = (*prefix, *problem.path)
            self.add(where, problem.message, problem.hint, key=problem.on_key)

    def version(self) -> None:
        """The file's `version:` must be there and be 1."""
        data = self.document.data
        if "version" not in data:
            self.add((), "the file has no 'version'", f"add 'version: {VERSION}' at the top")
        elif data["version"] != VERSION or isinstance(data["version"], bool):
            found = describe(data["version"])
            self.add(("version",), f"unsupported version {found}", f"write 'version: {VERSION}'")

    def mapping(
        self,
        path: NodePath,
        value: object,
        allowed: Sequence[str],
        synonyms: Mapping[str, str] | None = None,
    ) -> dict[str, object] | None:
        """`value` as a mapping whose unknown keys are reported with a did-you-mean."""
        if not isinstance(value, dict):
            self.add(path, f"{_name(path)} must be a mapping, found {describe(value)}")
            return None
        for key in value:
            if key not in allowed:
                hint = did_you_mean(key, allowed, synonyms) or f"expected {one_of(allowed)}"
                self.add((*path, key), f"unknown key '{key}'", hint, key=True)
        return value

    def lacks(
        self,
        data: Mapping[str, object],
        key: str,
        allowed: Sequence[str],
        synonyms: Mapping[str, str] | None = None,
    ) -> bool:
        """Whether `key` is missing and no unknown key is a misspelling of it (reported already)."""
        if key in data:
            return False
        unknown = [name for name in data if name not in allowed]
        return all(closest(name, allowed, synonyms) != key for name in unknown)

    def items(self, path: NodePath, value: object) -> list[object]:
        """`value` as a list (reported and empty when it is not one)."""
        if not isinstance(value, list):
            self.add(path, f"{_name(path)} must be a list, found {describe(value)}")
            return []
        return value

    def text(self, path: NodePath, value: object) -> str | None:
        """`value` as non-blank text; true/false become CEL's `true`/`false`."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip():
            return value
        hint = "put it in quotes to make it text" if isinstance(value, int | float) else None
        self.add(path, f"{_name(path)} must be text, found {describe(value)}", hint)
        return None

    def at(self, path: NodePath) -> Location:
        """Where the entry at `path` starts."""
        return self.positions.key(path)


def _name(path: NodePath) -> str:
    """`'rules[2].deny'` for `("rules", 2, "deny")`; `the file` for the top."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return f"'{text}'" if text else "the file"
