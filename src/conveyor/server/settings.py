"""How `conveyor server` is configured: flags first, then `CONVEYOR_*` variables, then defaults."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from conveyor.core.durations import parse_duration, parse_size
from conveyor.core.errors import UsageError
from conveyor.core.values import frozen, replace

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_MAX_UPLOAD = 512 * 1024 * 1024
DEFAULT_LEASE_S = 30.0


@frozen
class Settings:
    """Everything a server process needs to know; nothing it learns at run time."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    log_level: str = "info"
    # How long a job handed to an agent stays held without a heartbeat.
    lease_s: float = DEFAULT_LEASE_S

    @property
    def db_url(self) -> str:
        """The database: CONVEYOR_DATABASE_URL, else SQLite in the state directory."""
        return self.database_url or f"sqlite:///{self.state_dir / 'conveyor.db'}"


def from_environ(environ: Mapping[str, str], *, cwd: Path, **flags: str | int | None) -> Settings:
    """Settings from `flags` (None means not given), then the environment, then defaults."""
    env = {k: v for k, v in environ.items() if k.startswith("CONVEYOR_") and v}
    home = env.get("CONVEYOR_HOME")
    settings = Settings(state_dir=(cwd / home).resolve() if home else cwd / ".conveyor")
    values: dict[str, object] = {}
    for field, variable in (
        ("host", "CONVEYOR_HOST"),
        ("port", "CONVEYOR_PORT"),
        ("database_url", "CONVEYOR_DATABASE_URL"),
        ("max_upload_bytes", "CONVEYOR_MAX_UPLOAD"),
        ("log_level", "CONVEYOR_LOG_LEVEL"),
        ("lease_s", "CONVEYOR_LEASE"),
    ):
        given = flags.get(field)
        if given is not None:
            values[field] = _parse(field, str(given), f"--{field.replace('_', '-')}")
        elif variable in env:
            values[field] = _parse(field, env[variable], variable)
    return replace(settings, **values)  # type: ignore[arg-type]


def _parse(field: str, text: str, where: str) -> object:
    if field == "port":
        if not text.isdigit() or not 0 <= int(text) <= 65535:
            raise UsageError(f"{where}: '{text}' is not a TCP port; use a number 0-65535")
        return int(text)
    if field == "max_upload_bytes":
        try:
            return parse_size(text)
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
    if field == "lease_s":
        return _lease(text, where)
    if field == "log_level" and text.lower() not in LOG_LEVELS:
        raise UsageError(
            f"{where}: '{text}' is not a log level; use one of {', '.join(LOG_LEVELS)}"
        )
    return text.lower() if field == "log_level" else text


def _lease(text: str, where: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if seconds < 1:
        raise UsageError(f"{where}: '{text}' is too short for a lease; give at least 1s")
    return seconds
