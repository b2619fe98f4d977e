"""Release notes: commits grouped by kind, with authors, short shas and links; Markdown, JSON."""

from __future__ import annotations

from conveyor.core.records import RunId
from conveyor.release.model import Commit, Release, ReleaseArtifact, ReleaseId
from conveyor.release.notes import build_notes, changelog_markdown, to_json, to_markdown

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HEAD = "f" * 40
BASE = "e" * 40


def commit(n: int, message: str, author: str = "Ada Lovelace", parents: int = 1) -> Commit:
    email = author.split(maxsplit=1)[0].lower() + "@example.com"
    return Commit(f"{n:x}" * 40, author, email, "2026-01-01T00:00:00Z", message, parents)


def release(
    *commits: Commit,
    version: str = "1.3.0",
    previous: str | None = "1.2.0",
    repository: str | None = "https://github.com/acme/shop",
) -> Release:
    return Release(
        id=ReleaseId(2),
        project="shop",
        service="payments-api",
        version=version,
        commit_sha=HEAD,
        run_id=RunId(7),
        config_digest="sha256:" + "c" * 64,
        config="{}",
        artifacts=(ReleaseArtifact("dist/a.whl", "sha256:" + "a" * 64, 10),),
        created_at=T0,
        created_by="ada@example.com",
        previous_version=previous,
        repository=repository,
        commits=commits,
    )


MIXED = (
    commit(1, "feat(cart): add totals"),
    commit(2, "fix: rounding of cents", author="Grace Hopper"),
    commit(3, "perf: cache prices"),
    commit(4, "feat(api)!: drop v1\n\nBREAKING CHANGE: clients must move to /v2"),
    commit(5, "docs: explain refunds"),
    commit(6, "Tidy up"),
    commit(7, "Merge branch 'feature'", parents=2),
    commit(
        8, "chore: deps\n\nCo-authored-by: Linus T <linus@example.com>", author="Barbara Liskov"
    ),
)


def test_commits_are_grouped_by_kind_in_a_fixed_order_with_breaking_changes_first() -> None:
    notes = build_notes(release(*MIXED), previous_commit=BASE)

    titles = [section.title for section in notes.sections]
    assert titles == ["Breaking changes", "Features", "Fixes", "Performance", "Other"]
    by_title = {s.title: [e.description for e in s.entries] for s in notes.sections}
    assert by_title["Breaking changes"] == ["drop v1"]
    assert by_title["Features"] == ["add totals"]
    assert by_title["Other"] == ["explain refunds", "Tidy up", "deps"]


def test_merge_commits_git_wrote_are_left_out_of_the_notes() -> None:
    notes = build_notes(release(*MIXED))

    described = [e.description for s in notes.sections for e in s.entries]
    assert "Merge branch 'feature'" not in described


def test_authors_include_co_authors_once_each_sorted_by_name() -> None:
    notes = build_notes(release(*MIXED, commit(9, "fix: again", author="Grace Hopper")))

    assert notes.authors == ("Ada Lovelace", "Barbara Liskov", "Grace Hopper", "Linus T")


def test_markdown_links_shas_and_the_comparison_with_the_previous_release() -> None:
    text = to_markdown(build_notes(release(*MIXED), previous_commit=BASE))

    assert text.startswith("## payments-api 1.3.0 (2026-01-01)\n")
    assert f"[Changes since 1.2.0](https://github.com/acme/shop/compare/{BASE}...{HEAD})" in text
    assert (
        "- **cart:** add totals ([1111111](https://github.com/acme/shop/commit/"
        + "1" * 40
        + ")) by Ada Lovelace"
    ) in text
    assert "- feat(api): drop v1 ([4444444]" in text
    assert "  clients must move to /v2" in text
    assert "- docs: explain refunds ([5555555]" in text
    assert "### Authors\n\nAda Lovelace, Barbara Liskov, Grace Hopper, Linus T\n" in text


def test_gitlab_links_go_below_the_dash() -> None:
    notes = build_notes(
        release(commit(1, "fix: x"), repository="https://gitlab.com/acme/shop"),
        previous_commit=BASE,
    )

    assert notes.compare_url == f"https://gitlab.com/acme/shop/-/compare/{BASE}...{HEAD}"
    assert notes.sections[0].entries[0].url == "https://gitlab.com/acme/shop/-/commit/" + "1" * 40


def test_without_a_known_forge_the_notes_show_plain_short_shas() -> None:
    text = to_markdown(build_notes(release(commit(1, "fix: x"), repository=None)))

    assert "- x (1111111) by Ada Lovelace" in text
    assert "](" not in text


def test_a_first_release_says_so_and_has_no_comparison() -> None:
    notes = build_notes(release(commit(1, "initial"), previous=None))

    assert notes.compare_url is None
    assert "First release" in to_markdown(notes)


def test_notes_without_commits_say_nothing_was_recorded() -> None:
    text = to_markdown(build_notes(release()))

    assert "No changes recorded." in text
    assert "### Authors" not in text


def test_json_carries_sections_changes_and_authors() -> None:
    doc = to_json(build_notes(release(*MIXED), previous_commit=BASE))

    assert doc["version"] == "1.3.0"
    assert doc["previous_version"] == "1.2.0"
    assert doc["run"] == 7
    sections = doc["sections"]
    assert isinstance(sections, list)
    breaking = sections[0]["changes"][0]
    assert breaking == {
        "sha": "4" * 40,
        "short_sha": "4444444",
        "type": "feat",
        "scope": "api",
        "description": "drop v1",
        "breaking": "clients must move to /v2",
        "author": "Ada Lovelace",
        "email": "ada@example.com",
        "url": "https://github.com/acme/shop/commit/" + "4" * 40,
    }


def test_a_changelog_lists_each_release_under_one_title() -> None:
    newer = build_notes(release(commit(2, "feat: b")))
    older = build_notes(release(commit(1, "initial"), version="1.2.0", previous=None))

    text = changelog_markdown("payments-api", [newer, older])

    assert text.startswith("# Changelog of payments-api\n")
    assert text.index("## payments-api 1.3.0") < text.index("## payments-api 1.2.0")
