"""Reading a pipeline file's bytes, with the same answer wherever it is read."""

from __future__ import annotations

from pathlib import Path

from conveyor.core.errors import Location, SpecError, SpecIssue


def read_spec(file: str) -> bytes:
    """The bytes of the pipeline file `file` (as shown in errors); SpecError when unreadable."""
    try:
        return Path(file).read_bytes()
    except FileNotFoundError:
        hint = "create one with 'version: 1' and 'jobs:', or pass -f with the path of yours"
        issue = SpecIssue(Location(file, 1, 1), f"'{file}' does not exist", hint)
    except IsADirectoryError:
        issue = SpecIssue(Location(file, 1, 1), f"'{file}' is a directory, not a pipeline file")
    except OSError as exc:
        issue = SpecIssue(Location(file, 1, 1), f"cannot read '{file}': {exc.strerror or exc}")
    raise SpecError([issue])
