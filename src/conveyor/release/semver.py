"""Semantic versions (semver.org 2.0.0): parsing, precedence and bumping."""

from __future__ import annotations

import re
from typing import Literal

from conveyor.core.values import frozen

Level = Literal["major", "minor", "patch"]
LEVELS: tuple[Level, ...] = ("patch", "minor", "major")

_NUMBER = r"0|[1-9]\d*"
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_PATTERN = re.compile(
    rf"[vV]?(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
HINT = (
    "write MAJOR.MINOR.PATCH like 1.4.0 (a leading 'v' is dropped; "
    "a prerelease and build metadata look like 1.4.0-rc.1+build.7)"
)


@frozen
class Version:
    """A semantic version; ordering is semver precedence (build metadata does not count)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """A sort key that orders versions by precedence."""
        # A release sorts after its prereleases; numeric identifiers before alphanumeric ones.
        pre = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def same_precedence(self, other: Version) -> bool:
        """Whether the two differ at most in build metadata."""
        return self.key() == other.key()

    def bump(self, level: Level) -> Version:
        """The next version at `level`; a prerelease first becomes its own release."""
        major, minor, patch, pre = self.major, self.minor, self.patch, bool(self.prerelease)
        if level == "major":
            if pre and minor == 0 and patch == 0:
                return Version(major, 0, 0)
            return Version(major + 1, 0, 0)
        if level == "minor":
            if pre and patch == 0:
                return Version(major, minor, 0)
            return Version(major, minor + 1, 0)
        return Version(major, minor, patch if pre else patch + 1)


def parse_version(text: str) -> Version:
    """The Version `text` names (`v1.2.3` is 1.2.3); ValueError with a hint when it is none."""
    found = _PATTERN.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"'{text}' is not a semantic version; {HINT}")
    pre, build = found.group("pre"), found.group("build")
    return Version(
        int(found.group("major")),
        int(found.group("minor")),
        int(found.group("patch")),
        tuple(pre.split(".")) if pre else (),
        tuple(build.split(".")) if build else (),
    )


def higher(a: Level, b: Level) -> Level:
    """The larger of two bump levels."""
    return a if LEVELS.index(a) >= LEVELS.index(b) else b
