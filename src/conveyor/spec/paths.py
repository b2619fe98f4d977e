"""Workspace-relative paths of the globs jobs declare."""

from __future__ import annotations

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


def names_state(rooted: str) -> bool:
    """Whether a root-relative glob names files in Conveyor's own state directory."""
    return rooted.split("/", 1)[0] == STATE_DIR_NAME
