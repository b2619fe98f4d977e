"""Links into a repository's web pages, from the URL of its git remote.

GitHub and GitLab (their public hosts, and self-hosted ones whose host name
says which they are) in the https, ssh and scp-like forms git accepts.
Credentials in a remote URL never reach a link.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from conveyor.core.values import frozen

Forge = Literal["github", "gitlab"]

_SCP_LIKE = re.compile(r"(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?!//)(?P<path>[^\s]+)")


@frozen
class Repository:
    """A repository's web address on a forge."""

    forge: Forge
    url: str

    def commit_url(self, sha: str) -> str:
        """The page of one commit."""
        return f"{self.url}{self._dash}/commit/{sha}"

    def compare_url(self, base: str, head: str) -> str:
        """The page comparing two commits."""
        return f"{self.url}{self._dash}/compare/{base}...{head}"

    @property
    def _dash(self) -> str:
        # GitLab puts project pages below `/-/`.
        return "/-" if self.forge == "gitlab" else ""


def forge_of(host: str) -> Forge | None:
    """Which forge a host name belongs to, if it says."""
    name = host.lower()
    if name == "github.com" or name.startswith("github.") or ".github." in name:
        return "github"
    if name == "gitlab.com" or name.startswith("gitlab.") or ".gitlab." in name:
        return "gitlab"
    return None


def repository_from_remote(remote: str) -> Repository | None:
    """The web address behind a git remote URL; None for hosts that are not GitHub or GitLab."""
    remote = remote.strip()
    scheme = "https"
    if "://" in remote:
        parts = urlsplit(remote)
        if parts.scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            return None
        host, path = parts.hostname or "", parts.path
        scheme = "http" if parts.scheme == "http" else "https"
    else:
        found = _SCP_LIKE.fullmatch(remote)
        if found is None:
            return None
        host, path = found.group("host"), found.group("path")
    path = path.strip("/").removesuffix(".git").strip("/")
    forge = forge_of(host)
    if forge is None or path.count("/") < 1 or any(not part for part in path.split("/")):
        return None
    return Repository(forge, f"{scheme}://{host.lower()}/{path}")


def parse_repository(url: str | None) -> Repository | None:
    """A Repository from the web address stored with a Release."""
    return None if url is None else repository_from_remote(url)
