"""Project names and repository identity: every URL form of one repository matches."""

from __future__ import annotations

import pytest

from conveyor.core.errors import UsageError
from conveyor.triggers.project import canonical_repository, check_project_name


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Octo-Org/Payments-API",
        "https://github.com/octo-org/payments-api.git",
        "https://github.com/octo-org/payments-api/",
        "git@github.com:Octo-Org/Payments-API.git",
        "ssh://git@github.com/octo-org/payments-api.git",
        "ssh://git@github.com:22/octo-org/payments-api",
        "https://user@github.com/octo-org/payments-api.git",
        "github.com/octo-org/payments-api",
    ],
)
def test_every_form_of_a_github_url_has_one_canonical_form(url: str) -> None:
    assert canonical_repository(url) == "github.com/octo-org/payments-api"


def test_gitlab_nested_groups_keep_every_level() -> None:
    assert (
        canonical_repository("git@gitlab.example.com:platform/payments/api.git")
        == canonical_repository("https://gitlab.example.com/platform/payments/api")
        == "gitlab.example.com/platform/payments/api"
    )


@pytest.mark.parametrize("url", ["", "payments-api", "https://github.com/only-owner", "a b"])
def test_a_url_that_names_no_repository_is_refused_with_the_forms_accepted(url: str) -> None:
    with pytest.raises(UsageError, match=r"is not a repository URL: write https://HOST/OWNER/REPO"):
        canonical_repository(url)


@pytest.mark.parametrize("name", ["payments", "payments-api", "a", "svc.v2_x", "0day"])
def test_lower_case_project_names_are_accepted(name: str) -> None:
    assert check_project_name(name) == name


@pytest.mark.parametrize("name", ["Payments", "-api", "", "a" * 64, "my service", "x/y"])
def test_other_project_names_are_refused_with_the_rule_and_a_suggestion(name: str) -> None:
    with pytest.raises(UsageError, match=r"use 1 to 63 lower-case letters.*for example"):
        check_project_name(name)
