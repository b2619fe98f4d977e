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
        elif char == "[" and (cls := _char_class(pat, i)) is not None:
            regex, i = cls
            out.append(regex)
        else:
            out.append(re.escape(char))
            i += 1
    # A pattern also matches everything below what it names (a directory).
    return re.compile("".join(out) + r"(?:/.*)?\Z", re.DOTALL)


def _char_class(pat: str, start: int) -> tuple[str, int] | None:
    """`[...]` at `start` as a regex and the index after it; None when it does not close.

    As in shells, `!` first negates and a `]` right after `[` or `[!` is a
    literal. A class never matches `/`, like the other wildcards.
    """
    i = start + 1
    negate = i < len(pat) and pat[i] == "!"
    i += negate
    first = i
    while i < len(pat) and (pat[i] != "]" or i == first):
        i += 1
    if i >= len(pat):
        return None
    members = "".join("\\" + c if c in "\\^[]-" else c for c in pat[first:i])
    # Keep ranges working: re-allow '-' between two members.
    members = re.sub(r"(?<=[^\\])\\-(?=.)", "-", members)
    regex = f"[^/{members}]" if negate else f"(?!/)[{members}]"
    try:
        re.compile(regex)
    except re.error:  # a reversed range such as [z-a] names nothing: read '[' literally
        return None
    return regex, i + 1


def matches(pattern: str, path: str) -> bool:
    """Whether the posix relative `path` is named by `pattern`."""
    return compile_glob(pattern).match(path) is not None


def is_static(pattern: str) -> bool:
    """Whether `pattern` has no wildcard, i.e. names one path."""
    return not any(c in pattern for c in "*?[")
