"""Where a pipeline lives and where Conveyor keeps its state for it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from conveyor.core.errors import StoreError, UsageError
from conveyor.core.values import frozen
from conveyor.spec.paths import STATE_DIR_NAME
from conveyor.spec.reading import read_spec

SPEC_FILE = "conveyor.yaml"


@frozen
class Workspace:
    """A checkout with a conveyor.yaml, and the state directory that serves it."""

    root: Path
    spec_path: Path
    state_dir: Path
    database_url: str
    project: str

    @property
    def cas_dir(self) -> Path:
        return self.state_dir / "cas"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"

    def relative_spec(self) -> str:
        try:
            return self.spec_path.relative_to(self.root).as_posix()
        except ValueError:
            return str(self.spec_path)

    def state_inside(self) -> str | None:
        """The state directory from the workspace's root when CONVEYOR_HOME puts it inside
        the workspace under another name than `.conveyor` (refused in any pipeline already)."""
        try:
            inside = self.state_dir.relative_to(self.root).as_posix()
        except ValueError:
            return None
        return None if inside in (STATE_DIR_NAME, ".") else inside

    def ensure_state_dir(self) -> None:
        """Create the state directory with a .gitignore that keeps it out of git."""
        if (self.state_dir / ".gitignore").exists():
            return
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / ".gitignore").write_text("# Conveyor's local state\n*\n")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreError(
                f"cannot make the state directory {self.state_dir}: {reason} (it is "
                "CONVEYOR_HOME when set, else .conveyor/ beside conveyor.yaml)"
            ) from None


def discover(
    spec: str | Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    must_exist: bool = True,
) -> Workspace:
    """Find the workspace: `spec` if given, else conveyor.yaml here or in a parent.

    A `spec` given that is no file is said as `conveyor run` says it (SpecError), unless
    `must_exist` is false: a command must not make a workspace beside a mistyped path.
    """
    env = os.environ if environ is None else environ
    here = (cwd or Path.cwd()).resolve()
    if spec is not None:
        spec_path = (here / spec).resolve()
        shown = str(spec)
        if spec_path.is_dir():
            spec_path, shown = spec_path / SPEC_FILE, str(Path(spec) / SPEC_FILE)
        if must_exist and not spec_path.is_file():
            read_spec(shown)  # raises, saying why
    else:
        spec_path = _search(here)
    root = spec_path.parent
    state_dir = (
        Path(env["CONVEYOR_HOME"]).resolve() if env.get("CONVEYOR_HOME") else root / STATE_DIR_NAME
    )
    url = env.get("CONVEYOR_DATABASE_URL") or f"sqlite:///{state_dir / 'conveyor.db'}"
    project = env.get("CONVEYOR_PROJECT") or root.name or "default"
    return Workspace(root, spec_path, state_dir, url, project)


def _search(start: Path) -> Path:
    for directory in (start, *start.parents):
        candidate = directory / SPEC_FILE
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"no {SPEC_FILE} in {start} or any parent directory; "
        f"create one (see `conveyor schema`) or pass its path with -f"
    )
