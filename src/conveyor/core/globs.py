"""Glob patterns over workspace paths, with `**` for any number of directories.

Patterns are posix, relative, and match whole paths: `src/*.py` matches
`src/app.py` but not `src/pkg/app.py`; `src/**` matches everything below
`src`; `**/*.py` matches every Python file. A pattern naming a directory
matches everything below it.
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression that matches exactly the paths `pattern` names."""
    pat = pattern.strip().removeprefix("./").rstrip("/")
    out: list[str] = []
    i = 0
    while i < len(pat):
        char = pat[i]
        if pat.startswith("**/", i):
            out.append(r"(?:[^/]+/)*")
            i += 3
        elif pat.startswith("**", i):
            out.append(r".*")
            i += 2
        elif char == "*":
            out.append(r"[^/]*")
            i += 1
        elif char == "?":
            out.append(r"[^/]")
            i += 1
        elif char == "[":
            end = pat.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                body = pat[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    # A pattern also matches everything below what it names (a directory).
    return re.compile("".join(out) + r"(?:/.*)?\Z", re.DOTALL)


def matches(pattern: str, path: str) -> bool:
    """Whether the posix relative `path` is named by `pattern`."""
    return compile_glob(pattern).match(path) is not None


def is_static(pattern: str) -> bool:
    """Whether `pattern` has no wildcard, i.e. names one path."""
    return not any(c in pattern for c in "*?[")
