"""Did-you-mean suggestions for misspelled keys, job names and variables."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

# Words users bring from other CI systems, mapped to ours; difflib alone
# cannot see that `environment` means `env` or `depends_on` means `needs`.
KEY_SYNONYMS: Mapping[str, str] = {
    "environment": "env",
    "enviroment": "env",
    "environ": "env",
    "variables": "env",
    "vars": "env",
    "depends_on": "needs",
    "depends": "needs",
    "dependencies": "needs",
    "after": "needs",
    "requires": "needs",
    "script": "run",
    "scripts": "run",
    "command": "run",
    "commands": "run",
    "cmd": "run",
    "steps": "run",
    "working_directory": "workdir",
    "working-directory": "workdir",
    "working_dir": "workdir",
    "cwd": "workdir",
    "dir": "workdir",
    "directory": "workdir",
    "artifacts": "outputs",
    "outs": "outputs",
    "sources": "inputs",
    "when": "if",
    "condition": "if",
    "only": "if",
    "rules": "if",
    "retries": "retry",
    "timeout_minutes": "timeout",
    "timeout-minutes": "timeout",
    "continue-on-error": "allow_failure",
    "continue_on_error": "allow_failure",
    "allow-failure": "allow_failure",
    "parallel": "matrix",
    "strategy": "matrix",
    "stages": "jobs",
    "runs-on": "runs_on",
    "runson": "runs_on",
    "tags": "runs_on",
    "labels": "runs_on",
    "resource_group": "concurrency",
    "cancel-in-progress": "cancel_in_progress",
}


def closest(
    word: str, choices: Iterable[str], synonyms: Mapping[str, str] | None = None
) -> str | None:
    """The choice `word` most likely meant, or None when nothing is close."""
    options = list(dict.fromkeys(choices))
    if not options:
        return None
    lowered = {option.lower(): option for option in options}
    folded = word.lower()
    if folded in lowered:
        return lowered[folded]
    synonym = (synonyms or {}).get(folded)
    if synonym in options:
        return synonym
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    matches = difflib.get_close_matches(folded, list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


def did_you_mean(
    word: str, choices: Iterable[str], synonyms: Mapping[str, str] | None = None
) -> str | None:
    """A hint like `did you mean 'needs'?`, or None when nothing is close."""
    match = closest(word, choices, synonyms)
    return f"did you mean '{match}'?" if match is not None else None


def one_of(choices: Iterable[str], limit: int = 12) -> str:
    """`'a', 'b' or 'c'` for messages that list what is allowed; long lists are cut."""
    quoted = [f"'{choice}'" for choice in choices]
    if len(quoted) > limit:
        return ", ".join(quoted[:limit]) + f" and {len(quoted) - limit} more"
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
