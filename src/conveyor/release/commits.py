"""Conventional Commits (conventionalcommits.org 1.0.0): reading messages, deciding a bump.

A header `type(scope)!: description`, an optional body, and footers such as
`BREAKING CHANGE: ...` or `Refs: #12` in the last paragraphs. A message that
does not follow the form is still a change; it counts as `Other` and a patch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from conveyor.core.values import frozen
from conveyor.release.model import Commit
from conveyor.release.semver import Level, higher

_HEADER = re.compile(
    r"(?P<type>[A-Za-z][A-Za-z0-9-]*)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?: (?P<desc>.+)"
)
_FOOTER = re.compile(r"(?P<token>BREAKING CHANGE|BREAKING-CHANGE|[A-Za-z][A-Za-z0-9-]*)(?:: | #)")
_BREAKING_TOKENS = ("BREAKING CHANGE", "BREAKING-CHANGE")
_BREAKING_IN_BODY = re.compile(r"^BREAKING[ -]CHANGE: (?P<note>.+)$", re.MULTILINE)


@frozen
class Footer:
    """One trailer of a message: `Token: value` or `Token #value`."""

    token: str
    value: str


@frozen
class ParsedMessage:
    """A commit message read as a Conventional Commit; `type` is None when it is not one."""

    type: str | None
    scope: str | None
    description: str
    body: str
    footers: tuple[Footer, ...]
    breaking: bool
    breaking_note: str | None

    @property
    def conventional(self) -> bool:
        """Whether the message follows the Conventional Commits form."""
        return self.type is not None


def parse_message(message: str) -> ParsedMessage:
    """Read the header, body and footers of one commit message."""
    lines = message.strip("\n").replace("\r\n", "\n").split("\n")
    header = lines[0].strip()
    rest = lines[2:] if len(lines) > 1 and not lines[1].strip() else lines[1:]
    body_lines, footers = _split_footers(rest)
    body = "\n".join(body_lines).strip("\n")
    found = _HEADER.fullmatch(header)
    if found is None:
        return ParsedMessage(None, None, header, body, footers, False, None)
    note = next((f.value for f in footers if f.token in _BREAKING_TOKENS), None)
    if note is None and (stray := _BREAKING_IN_BODY.search(body)):
        # Out of place, but still meant: a missed major would break whoever upgrades.
        note = stray.group("note").strip()
    bang = found.group("bang") is not None
    scope = found.group("scope")
    return ParsedMessage(
        type=found.group("type").lower(),
        scope=scope.strip() or None if scope is not None else None,
        description=found.group("desc").strip(),
        body=body,
        footers=footers,
        breaking=bang or note is not None,
        breaking_note=note,
    )


def _split_footers(lines: list[str]) -> tuple[list[str], tuple[Footer, ...]]:
    """The body and the footers: the trailing paragraphs that each start with a token."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    paragraphs = [p for p in paragraphs if p]
    split = len(paragraphs)
    while split > 0 and _FOOTER.match(paragraphs[split - 1][0]):
        split -= 1
    footers = [f for p in paragraphs[split:] for f in _footers(p)]
    body = "\n\n".join("\n".join(p) for p in paragraphs[:split])
    return body.split("\n") if body else [], tuple(footers)


def _footers(paragraph: list[str]) -> list[Footer]:
    """Footers of one paragraph; a line that starts no footer continues the one before."""
    out: list[tuple[str, list[str]]] = []
    for line in paragraph:
        found = _FOOTER.match(line)
        if found:
            value = line[found.end() :]
            if found.group(0).endswith("#"):
                value = "#" + value
            out.append((found.group("token"), [value]))
        else:
            out[-1][1].append(line)
    return [Footer(token, "\n".join(value).strip()) for token, value in out]


def is_merge(commit: Commit) -> bool:
    """A merge git wrote itself ('Merge branch ...'); its branch's commits tell the story."""
    return commit.parents > 1 and not parse_message(commit.message).conventional


def level_of(message: ParsedMessage) -> Level:
    """What one change asks for: major when breaking, minor for a feature, else patch."""
    if message.breaking:
        return "major"
    return "minor" if message.type == "feat" else "patch"


@frozen
class Bump:
    """The bump a list of commits asks for, and the commit that decided it."""

    level: Level
    decided_by: Commit | None
    counted: int


def bump_for(commits: Sequence[Commit]) -> Bump:
    """The highest level any commit asks for (merges git wrote do not count)."""
    level: Level = "patch"
    decided_by: Commit | None = None
    counted = 0
    for commit in commits:
        if is_merge(commit):
            continue
        counted += 1
        asked = level_of(parse_message(commit.message))
        if decided_by is None or higher(asked, level) != level:
            level, decided_by = asked, commit
    return Bump(level, decided_by, counted)
