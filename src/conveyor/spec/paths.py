"""Workspace-relative paths of the globs jobs declare."""

from __future__ import annotations


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
