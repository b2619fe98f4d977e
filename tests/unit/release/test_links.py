"""Repository links from git remote URLs: GitHub and GitLab, https and ssh, no credentials."""

from __future__ import annotations

import pytest

from conveyor.release.links import Repository, repository_from_remote


@pytest.mark.parametrize(
    ("remote", "forge", "url"),
    [
        ("https://github.com/acme/shop.git", "github", "https://github.com/acme/shop"),
        ("https://github.com/acme/shop", "github", "https://github.com/acme/shop"),
        ("https://github.com/acme/shop/", "github", "https://github.com/acme/shop"),
        ("git@github.com:acme/shop.git", "github", "https://github.com/acme/shop"),
        ("ssh://git@github.com/acme/shop.git", "github", "https://github.com/acme/shop"),
        ("ssh://git@github.com:22/acme/shop.git", "github", "https://github.com/acme/shop"),
        ("https://gitlab.com/group/sub/shop.git", "gitlab", "https://gitlab.com/group/sub/shop"),
        ("git@gitlab.com:group/sub/shop.git", "gitlab", "https://gitlab.com/group/sub/shop"),
        ("https://gitlab.acme.io/team/shop.git", "gitlab", "https://gitlab.acme.io/team/shop"),
        ("http://gitlab.internal/team/shop", "gitlab", "http://gitlab.internal/team/shop"),
        ("https://GitHub.com/acme/shop.git", "github", "https://github.com/acme/shop"),
    ],
)
def test_https_ssh_and_scp_like_remotes_become_web_addresses(
    remote: str, forge: str, url: str
) -> None:
    assert repository_from_remote(remote) == Repository(forge, url)  # type: ignore[arg-type]


def test_credentials_in_a_remote_never_reach_the_web_address() -> None:
    found = repository_from_remote("https://ada:s3cret-token@github.com/acme/shop.git")

    assert found == Repository("github", "https://github.com/acme/shop")


@pytest.mark.parametrize(
    "remote",
    [
        "https://bitbucket.org/acme/shop.git",
        "/srv/git/shop.git",
        "file:///srv/git/shop.git",
        "../shop",
        "https://github.com/acme",
        "https://github.com//shop",
        "",
    ],
)
def test_other_hosts_and_local_paths_give_no_links(remote: str) -> None:
    assert repository_from_remote(remote) is None


def test_github_and_gitlab_commit_and_compare_links_differ_by_the_dash() -> None:
    github = Repository("github", "https://github.com/acme/shop")
    gitlab = Repository("gitlab", "https://gitlab.com/acme/shop")

    assert github.commit_url("abc") == "https://github.com/acme/shop/commit/abc"
    assert github.compare_url("a", "b") == "https://github.com/acme/shop/compare/a...b"
    assert gitlab.commit_url("abc") == "https://gitlab.com/acme/shop/-/commit/abc"
    assert gitlab.compare_url("a", "b") == "https://gitlab.com/acme/shop/-/compare/a...b"
