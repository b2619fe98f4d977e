"""The common forms of `conveyor run`, read without importing Typer.

Importing Typer and building the command from its signature costs `conveyor
run` about 12 ms before the first job can start, a cost every local Run and
every CI job pays. The forms users type (`conveyor run`, `conveyor run -q -j 4`,
`conveyor run test --explain --json`) are read here instead. Everything else
goes to Typer, which reads it and reports usage errors as for any command:
help, `--`, combined short flags (`-qk`), a value glued to a short option
(`-j4`), a value that looks like an option, a `--jobs` that is not a whole
number of at least 1, a `--file` that exists but cannot be read, an option
this table does not know, and `--remote`.

tests/unit/cli/test_quick.py keeps this table equal to the options of the
Typer command (`cli/pipeline.py`) and checks that both read the same words
into the same keyword arguments of `run_pipeline` (`cli/running.py`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Options without a value: each spelling, and the keyword argument it sets to True.
FLAGS: dict[str, str] = {
    "--keep-going": "keep_going",
    "-k": "keep_going",
    "--no-cache": "no_cache",
    "--explain": "explain",
    "--dry-run": "dry_run",
    "-n": "dry_run",
    "--json": "json_output",
    "--quiet": "quiet",
    "-q": "quiet",
    "--no-release": "no_release",
}
# Options with a value (`--jobs 4`, `-j 4`, `--jobs=4`): each spelling, and its argument.
VALUES: dict[str, str] = {
    "--file": "file",
    "-f": "file",
    "--jobs": "parallel",
    "-j": "parallel",
    "--event": "event",
    "--base": "base",
    "--branch": "branch",
}
# Options of `conveyor run` left to Typer whenever they appear.
TO_TYPER: frozenset[str] = frozenset({"-h", "--help", "--remote", "--no-wait"})
# Typer's shell completion answers through the command when this is set.
_COMPLETION = "_CONVEYOR_COMPLETE"


def read_run(argv: Sequence[str]) -> dict[str, Any] | None:
    """`run_pipeline`'s keyword arguments from argv (the words after `conveyor`), or None.

    None: argv is not `conveyor run` in a form read here; Typer reads it.
    """
    if not argv or argv[0] != "run" or _COMPLETION in os.environ:
        return None
    jobs: list[str] = []
    arguments: dict[str, Any] = {}  # each value checked by _convert
    words = iter(argv[1:])
    for word in words:
        if not word.startswith("-"):
            jobs.append(word)
            continue
        name, equals, value = word.partition("=")
        if name in FLAGS and not equals:
            arguments[FLAGS[name]] = True
            continue
        if name not in VALUES or (equals and not name.startswith("--")):
            return None
        if not equals:
            following = next(words, None)
            if following is None or following.startswith("-"):
                return None
            value = following
        converted = _convert(VALUES[name], value)
        if converted is None:
            return None
        arguments[VALUES[name]] = converted
    return {"jobs": tuple(jobs), **arguments}


def _convert(argument: str, value: str) -> object | None:
    """The value as the Typer command would pass it, or None where Typer would refuse it."""
    if argument == "file":
        # Typer's check of an existing file it cannot read, and its message, are Typer's.
        path = Path(value)
        return None if path.exists() and not os.access(path, os.R_OK) else path
    if argument == "parallel":
        try:
            number = int(value)
        except ValueError:
            return None
        return number if number >= 1 else None
    return value
