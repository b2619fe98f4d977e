"""Conventional Commits: headers, scopes, `!`, footers, merges and the bump they ask for."""

from __future__ import annotations

import pytest

from conveyor.release.commits import Footer, bump_for, is_merge, level_of, parse_message
from conveyor.release.model import Commit


def commit(message: str, *, sha: str = "a" * 40, parents: int = 1) -> Commit:
    return Commit(sha, "Ada Lovelace", "ada@example.com", "2026-01-01T00:00:00Z", message, parents)


def test_a_header_gives_type_scope_and_description() -> None:
    parsed = parse_message("feat(api): add refunds")

    assert parsed.conventional
    assert (parsed.type, parsed.scope, parsed.description) == ("feat", "api", "add refunds")
    assert not parsed.breaking


def test_types_are_read_case_insensitively() -> None:
    assert parse_message("Fix: handle empty carts").type == "fix"


@pytest.mark.parametrize("header", ["feat!: drop v1", "feat(api)!: drop v1", "refactor!: drop v1"])
def test_a_bang_after_the_type_or_scope_marks_a_breaking_change(header: str) -> None:
    parsed = parse_message(header)

    assert parsed.breaking
    assert parsed.description == "drop v1"
    assert level_of(parsed) == "major"


def test_a_breaking_change_footer_marks_a_breaking_change_and_carries_its_note() -> None:
    parsed = parse_message(
        "fix(db): widen ids\n\nIds are 64-bit now.\n\n"
        "BREAKING CHANGE: clients must store ids\nas strings\nRefs: #42"
    )

    assert parsed.breaking
    assert parsed.breaking_note == "clients must store ids\nas strings"
    assert parsed.body == "Ids are 64-bit now."
    assert parsed.footers == (
        Footer("BREAKING CHANGE", "clients must store ids\nas strings"),
        Footer("Refs", "#42"),
    )


def test_the_hyphenated_breaking_change_token_counts_too() -> None:
    assert parse_message("feat: x\n\nBREAKING-CHANGE: y").breaking_note == "y"


def test_a_lowercase_breaking_change_footer_is_not_a_breaking_change() -> None:
    assert not parse_message("feat: x\n\nbreaking change: y").breaking


def test_footers_in_token_hash_form_keep_the_hash() -> None:
    parsed = parse_message("fix: crash\n\nCloses #12\nReviewed-by: Grace")

    assert parsed.footers == (Footer("Closes", "#12"), Footer("Reviewed-by", "Grace"))


def test_a_paragraph_that_looks_like_a_footer_before_more_body_stays_body() -> None:
    parsed = parse_message("docs: notes\n\nNote: this is prose.\n\nMore prose.\n\nSigned-off-by: A")

    assert parsed.body == "Note: this is prose.\n\nMore prose."
    assert parsed.footers == (Footer("Signed-off-by", "A"),)


def test_a_breaking_change_line_out_of_place_in_the_body_still_counts() -> None:
    parsed = parse_message("feat: x\n\nBREAKING CHANGE: y\n\nand then some prose")

    assert parsed.breaking
    assert parsed.breaking_note == "y"


@pytest.mark.parametrize(
    "message",
    [
        "Update README",
        "feat:missing space",
        "feat (api): space before scope",
        "feat(api: unclosed",
        "Merge branch 'main' into feature",
        'Revert "feat: add x"',
        ": no type",
    ],
)
def test_messages_that_are_not_conventional_are_other_changes_and_patches(message: str) -> None:
    parsed = parse_message(message)

    assert not parsed.conventional
    assert parsed.description == message
    assert level_of(parsed) == "patch"


def test_an_empty_scope_is_no_scope() -> None:
    assert parse_message("fix(): x").scope is None


def test_git_merge_commits_are_recognized_but_a_conventional_merge_is_a_change() -> None:
    assert is_merge(commit("Merge pull request #7 from ada/x\n\nfeat: add x", parents=2))
    assert is_merge(commit("Merge branch 'feature'", parents=2))
    assert not is_merge(commit("feat: add x (#7)", parents=2))
    assert not is_merge(commit("Merge the two caches", parents=1))


def test_the_bump_is_the_highest_level_any_commit_asks_for() -> None:
    commits = [
        commit("docs: typo", sha="1" * 40),
        commit("feat(cart): totals", sha="2" * 40),
        commit("fix: rounding", sha="3" * 40),
    ]

    bump = bump_for(commits)

    assert bump.level == "minor"
    assert bump.decided_by is not None and bump.decided_by.sha == "2" * 40
    assert bump.counted == 3


def test_merges_git_wrote_do_not_count_towards_the_bump() -> None:
    commits = [
        commit("Merge branch 'x'\n\nBREAKING CHANGE: in a merge message", parents=2),
        commit("fix: y"),
    ]

    bump = bump_for(commits)

    assert bump.level == "patch"
    assert bump.counted == 1


def test_no_commits_ask_for_a_patch_decided_by_nothing() -> None:
    bump = bump_for([])

    assert (bump.level, bump.decided_by, bump.counted) == ("patch", None, 0)
