"""A Project as values: the rule for its name and the identity of its repository."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from conveyor.core.errors import UsageError
from conveyor.core.values import frozen

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^\s]+)$")


@frozen
class Project:
    """A repository and where its conveyor.yaml is; webhooks find it by repository."""

    id: int
    name: str
    repository: str
    spec_path: str
    default_branch: str
    has_webhook_secret: bool
    created_by: str
    created_at: float

    @property
    def subject(self) -> str:
        return f"project/{self.name}"


def check_project_name(name: str) -> str:
    """`name` when it follows the rule; else a UsageError that states the rule."""
    if not _NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:63] or "my-service"
        raise UsageError(
            f"project name '{name}' is not allowed: use 1 to 63 lower-case letters, digits, "
            f"'.', '_' or '-', starting with a letter or digit (for example {suggestion})"
        )
    return name


def canonical_repository(url: str) -> str:
    """`host/owner/repo` for any of the forms a repository is cloned or browsed by.

    `https://github.com/o/r(.git)`, `git@github.com:o/r.git` and
    `ssh://git@github.com:22/o/r.git` all give `github.com/o/r`; GitLab's
    nested groups keep every level. Case is folded, as both hosts ignore it.
    A repository on the server's own disk, `file:///srv/git/shop.git`, gives
    `file:///srv/git/shop` (case kept, as file systems keep it).
    """
    text = url.strip()
    if text.lower().startswith("file://"):
        return _file_repository(url, urlsplit(text).path)
    if "://" in text:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
    elif match := _SCP_LIKE.match(text):
        host, path = match["host"], match["path"]
    else:
        host, _, path = text.partition("/")
    path = path.strip("/").removesuffix(".git").strip("/")
    segments = [s for s in path.split("/") if s]
    if not host or len(segments) < 2 or any(s in {".", ".."} for s in segments):
        raise UsageError(
            f"'{url}' is not a repository URL: write https://HOST/OWNER/REPO, "
            "git@HOST:OWNER/REPO.git or ssh://git@HOST/OWNER/REPO.git"
        )
    return "/".join([host.lower(), *segments]).lower()


def _file_repository(url: str, path: str) -> str:
    segments = [s for s in path.strip("/").removesuffix(".git").split("/") if s]
    if not segments or any(s in {".", ".."} for s in segments):
        raise UsageError(
            f"'{url}' is not a repository URL: write file:///PATH/TO/REPO for a repository "
            "on the server's disk"
        )
    return "file:///" + "/".join(segments)
