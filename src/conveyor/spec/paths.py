"""Workspace-relative paths of the globs jobs declare."""

from __future__ import annotations

import re

# The directory below a workspace's root that holds Conveyor's own state (unless
# CONVEYOR_HOME names another): the store, the cache, the keys.
STATE_DIR_NAME = ".conveyor"


def rooted_glob(workdir: str, pattern: str) -> str | None:
    """`pattern` (relative to `workdir`) relative to the workspace root; None when it leaves it."""
    joined = pattern if workdir in ("", ".") else f"{workdir}/{pattern}"
    parts: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or "."


def names_state(rooted: str, state: str = STATE_DIR_NAME) -> bool:
    """Whether a root-relative glob names files in Conveyor's own state directory (`state`,
    from the workspace root: `.conveyor`, or a CONVEYOR_HOME inside the workspace)."""
    return rooted == state or rooted.startswith(state + "/")


# What makes a pattern a glob (`glob.glob`'s wildcards), and a wildcard escaped by
# `glob.escape` (`[*]`), as a matrix value put into a glob is.
_WILDCARD = re.compile(r"[*?\[]")
_ESCAPED = re.compile(r"\[([*?\[])\]")


def named_file(workdir: str, pattern: str) -> str | None:
    """The file `pattern` names from the workspace root when it is no glob, else None."""
    rooted = rooted_glob(workdir, pattern)
    if rooted is None:
        return None
    plain = _ESCAPED.sub(r"\1", rooted)
    return None if _WILDCARD.search(_ESCAPED.sub("", rooted)) else plain


def shared_in_matrix(path: str, first: str, then: str, base: str, axis: str) -> tuple[str, str]:
    """What to say, and what to do, when expansions `first` and `then` of matrix job `base`
    both name the output file `path`, though their values of `axis` differ."""
    return (
        f"expansions '{first}' and '{then}' of matrix job '{base}' both declare output "
        f"{path}: a file has one producer",
        f"name the matrix's values in the path, like ${{{axis}}}",
    )
