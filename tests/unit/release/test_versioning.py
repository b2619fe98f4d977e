"""The next version from the commits since the previous Release, and what was assumed."""

from __future__ import annotations

from conveyor.release.model import Commit
from conveyor.release.semver import Version, parse_version
from conveyor.release.versioning import check_new, next_version


def commits(*messages: str) -> list[Commit]:
    return [
        Commit(f"{i:040x}", "Ada", "ada@example.com", "2026-01-01T00:00:00Z", message)
        for i, message in enumerate(messages, start=1)
    ]


def test_the_first_release_is_0_1_0_and_says_there_was_none_before() -> None:
    derived = next_version(None, commits("initial", "feat: a", "fix: b"))

    assert derived.version == Version(0, 1, 0)
    assert "no earlier release" in derived.reasons[0]


def test_the_first_release_is_1_0_0_when_a_commit_breaks_something() -> None:
    derived = next_version(None, commits("feat!: new API", "initial"))

    assert derived.version == Version(1, 0, 0)
    assert "breaking change in 0000000" in derived.reasons[0]


def test_a_feature_since_the_previous_release_makes_a_minor_release() -> None:
    derived = next_version(parse_version("0.1.0"), commits("fix: a", "feat(ui): b"))

    assert derived.version == Version(0, 2, 0)
    assert derived.reasons == (
        "2 commits since 0.1.0: a feature in 0000000 (b), so a minor release",
    )


def test_a_breaking_change_makes_a_major_release_even_before_1_0() -> None:
    assert next_version(parse_version("0.2.0"), commits("feat!: x")).version == Version(1, 0, 0)


def test_fixes_and_chores_make_a_patch_release() -> None:
    derived = next_version(parse_version("1.4.2"), commits("chore: deps", "fix: x"))

    assert derived.version == Version(1, 4, 3)
    assert "no feature or breaking change" in derived.reasons[0]


def test_no_commits_since_the_previous_release_make_a_patch_release() -> None:
    derived = next_version(parse_version("1.0.0"), [])

    assert derived.version == Version(1, 0, 1)
    assert derived.reasons == ("no commits since 1.0.0: a patch release",)


def test_unreadable_history_assumes_0_1_0_first_and_says_why() -> None:
    derived = next_version(None, None, unknown="run 3 was not made from a git commit")

    assert derived.version == Version(0, 1, 0)
    assert derived.reasons == (
        "run 3 was not made from a git commit; assumed 0.1.0 for the first release",
    )


def test_unreadable_history_assumes_a_patch_after_a_previous_release() -> None:
    derived = next_version(parse_version("2.3.4"), None, unknown="commit abc is not here")

    assert derived.version == Version(2, 3, 5)
    assert "assumed a patch release after 2.3.4" in derived.reasons[0]


def test_a_version_differing_only_in_build_metadata_from_a_released_one_is_refused() -> None:
    released = [parse_version("1.0.0+a"), parse_version("0.9.0")]

    assert check_new(parse_version("1.0.0+b"), released) is not None
    assert check_new(parse_version("1.0.0"), released) is not None
    assert check_new(parse_version("1.0.1"), released) is None
