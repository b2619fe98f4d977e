"""The roles map (conveyor-roles.yaml): who holds which roles, and every mistake located."""

from __future__ import annotations

import pytest

from conveyor.core.errors import SpecError
from conveyor.promotion.roles import read_roles

FILE = "conveyor-roles.yaml"


def issues(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        read_roles(text.encode(), FILE)
    return [issue.render() for issue in caught.value.issues]


def test_people_get_their_roles_and_names_compare_without_case() -> None:
    text = (
        "version: 1\n"
        "roles:\n"
        "  Lead@Example.com: [approver, release-manager]\n"
        "  ops@example.com: admin\n"
    )
    roles = read_roles(text.encode(), FILE)

    assert roles.of("lead@example.com") == ("approver", "release-manager")
    assert roles.of(" OPS@example.com") == ("admin",)
    assert roles.of("stranger@example.com") == ()


def test_an_unknown_role_is_located_with_a_did_you_mean() -> None:
    found = issues("version: 1\nroles:\n  lead@example.com: [aprover]\n")

    assert found == [
        "conveyor-roles.yaml:3:22: 'aprover' is not a role\n  hint: did you mean 'approver'?"
    ]


def test_every_problem_in_the_file_is_reported_at_once() -> None:
    found = issues("version: 2\npeople:\n  a@example.com: [approver]\n")

    assert any(f.startswith(f"{FILE}:1:10: unsupported version") for f in found)
    assert any("unknown key 'people'" in f and "did you mean 'roles'?" in f for f in found)


def test_a_person_listed_twice_under_different_case_is_an_error() -> None:
    found = issues("version: 1\nroles:\n  a@example.com: approver\n  A@example.com: admin\n")

    assert len(found) == 1
    assert found[0].startswith("conveyor-roles.yaml:4:3: 'A@example.com' is listed twice")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("version: 1\n", "the file has no 'roles'"),
        ("version: 1\nroles: [a]\n", "'roles' must be a mapping of people to roles"),
        ("version: 1\nroles:\n  a@example.com: {x: 1}\n", "roles must be a role or a list"),
        ("version: 1\nroles:\n  a@example.com: [7]\n", "the number 7 is not a role"),
        ("roles: {}\n", "the file has no 'version'"),
    ],
)
def test_a_file_of_the_wrong_shape_says_what_is_expected(text: str, words: str) -> None:
    assert any(words in issue for issue in issues(text))
