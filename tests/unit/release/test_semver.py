"""Semantic versions: parsing, normalizing, precedence and bumping."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.release.semver import Version, parse_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", Version(1, 2, 3)),
        ("v1.2.3", Version(1, 2, 3)),
        ("V0.0.0", Version(0, 0, 0)),
        (" 10.20.30 ", Version(10, 20, 30)),
        ("1.0.0-rc.1", Version(1, 0, 0, ("rc", "1"))),
        ("1.0.0-alpha-a.b-c", Version(1, 0, 0, ("alpha-a", "b-c"))),
        ("1.0.0+build.7", Version(1, 0, 0, (), ("build", "7"))),
        ("1.0.0-0A.is.legal+001", Version(1, 0, 0, ("0A", "is", "legal"), ("001",))),
    ],
)
def test_valid_versions_parse_and_a_leading_v_is_dropped(text: str, expected: Version) -> None:
    assert parse_version(text) == expected
    assert str(parse_version(text)) == text.strip().lstrip("vV")


@pytest.mark.parametrize(
    "text",
    [
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-",
        "1.2.3-01",
        "1.2.3+",
        "x.y.z",
        "1.2.3-rc..1",
        "vv1.2.3",
        "",
        "1.2.3 beta",
    ],
)
def test_invalid_versions_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version") as caught:
        parse_version(text)
    assert "MAJOR.MINOR.PATCH" in str(caught.value)


def test_precedence_follows_the_semver_specification_example() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
        "10.0.0",
    ]
    versions = [parse_version(text) for text in ordered]

    shuffled = versions[1::2] + versions[::2]
    assert sorted(shuffled) == versions
    assert all(a < b for a, b in itertools.pairwise(versions))


def test_build_metadata_does_not_count_for_precedence() -> None:
    a, b = parse_version("1.0.0+a"), parse_version("1.0.0+b")

    assert a.same_precedence(b)
    assert not a < b and not b < a
    assert a != b


@pytest.mark.parametrize(
    ("start", "level", "expected"),
    [
        ("1.2.3", "patch", "1.2.4"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "major", "2.0.0"),
        ("0.1.0", "major", "1.0.0"),
        ("1.2.3-rc.1", "patch", "1.2.3"),
        ("1.3.0-rc.1", "minor", "1.3.0"),
        ("1.2.3-rc.1", "minor", "1.3.0"),
        ("2.0.0-rc.1", "major", "2.0.0"),
        ("2.1.0-rc.1", "major", "3.0.0"),
        ("1.2.3+build.4", "patch", "1.2.4"),
    ],
)
def test_bumping_resets_lower_parts_and_releases_a_prerelease_first(
    start: str, level: str, expected: str
) -> None:
    assert str(parse_version(start).bump(level)) == expected  # type: ignore[arg-type]


@given(
    st.integers(0, 999),
    st.integers(0, 999),
    st.integers(0, 999),
    st.sampled_from(["patch", "minor", "major"]),
)
def test_a_bump_is_always_higher_and_round_trips_as_text(
    major: int, minor: int, patch: int, level: str
) -> None:
    version = Version(major, minor, patch)
    bumped = version.bump(level)  # type: ignore[arg-type]

    assert bumped > version
    assert parse_version(str(bumped)) == bumped
