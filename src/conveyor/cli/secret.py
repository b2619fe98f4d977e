"""`conveyor secret`: values jobs need, stored encrypted; never on the command line, never shown."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.pipeline import FileOption, JsonOption
from conveyor.cli.remote_http import remote as remote_api
from conveyor.cli.remote_http import segment

if TYPE_CHECKING:
    from pathlib import Path

    from conveyor.engine.secrets import SecretInfo, SecretService

app = typer.Typer(
    help=(
        "Secrets a pipeline declares under `secrets:` in conveyor.yaml, stored encrypted "
        "(AES-256-GCM) in the store. A job gets a declared secret as an environment "
        "variable: from the caller's environment when it is set there, else the stored "
        "secret of the project, else the global one. Values are masked as *** in every "
        "log, Event and error.\n\n"
        "The key comes from CONVEYOR_SECRET_KEY (32 random bytes in URL-safe base64; "
        "`conveyor secret keygen` makes one). To change keys, set the new key in "
        "CONVEYOR_SECRET_KEY and the old one in CONVEYOR_SECRET_KEY_PREVIOUS, run "
        "`conveyor secret rotate`, then drop the old key.\n\n"
        "With CONVEYOR_SERVER and CONVEYOR_TOKEN set, `set`, `list` and `rm` go through "
        "that server's API (the server holds the key); otherwise they work on this "
        "workspace's store."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="secret")


NameArgument = Annotated[
    str,
    typer.Argument(
        help="The environment variable the job sees, such as DEPLOY_TOKEN "
        "(capitals, digits and underscores).",
        show_default=False,
    ),
]
ProjectOption = Annotated[
    str,
    typer.Option(
        "--project",
        "-p",
        help="Only for Runs of this project (default: every project).",
        show_default=False,
    ),
]


@contextmanager
def _service(file: Path | None) -> Iterator[tuple[SecretService, str]]:
    import os

    from conveyor.core.clock import SystemClock
    from conveyor.engine.secrets import SecretService
    from conveyor.engine.service import actor_name, open_store
    from conveyor.engine.workspace import discover

    workspace = discover(file)
    db = open_store(workspace)
    try:
        service = SecretService(db=db, clock=SystemClock(), environ=os.environ)
        yield service, actor_name(workspace.root, os.environ)
    finally:
        db.close()


def _emit(as_json: bool, data: dict[str, object], text: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    else:
        typer.echo(text)


def read_value(name: str) -> str:
    """The value from stdin when it is piped, else typed at a prompt that does not echo."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"Value of {name} (not shown): ")
    value = sys.stdin.read()
    # `echo value | conveyor secret set` adds one newline that is not part of the value.
    return value.removesuffix("\n").removesuffix("\r")


@app.command("set")
def set_secret(
    name: NameArgument,
    project: ProjectOption = "",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Store a secret's value, encrypted; replaces the value stored under that name.

    The value is read from stdin when it is piped (`printf %s "$TOKEN" | conveyor
    secret set DEPLOY_TOKEN`) and from a prompt that does not echo on a terminal;
    never from the command line, where the shell history and `ps` would keep it.
    An empty value is refused (exit 2).
    """
    from conveyor.core.secrets import check_secret_name

    check_secret_name(name)
    value = read_value(name)
    remote = remote_api()
    if remote is not None:
        doc = remote.call(
            "PUT", f"/api/v1/secrets/{segment(name)}", {"value": value}, params=_scope(project)
        )
        doc["project"] = doc.get("project") or ""
    else:
        with _service(file) as (service, actor):
            doc = _info_json(service.set(name, value, project=project, actor=actor))
    scope = f"project {project}" if project else "every project"
    _emit(json_output, doc, f"stored {name} for {scope} (key {doc['key_id']})")


@app.command("list")
def list_secrets(
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            help="Only this project's secrets and the global ones.",
            show_default=False,
        ),
    ] = None,
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """List stored secrets: name, project, when and by whom set. Never their values."""
    remote = remote_api()
    if remote is not None:
        listing = remote.call("GET", "/api/v1/secrets", params=_scope(project))["secrets"]
        assert isinstance(listing, list), "the server answers a list of secrets"
        rows: list[dict[str, object]] = [{**r, "project": r["project"] or ""} for r in listing]
    else:
        with _service(file) as (service, _actor):
            rows = [_info_json(info) for info in service.list_secrets(project=project)]
    lines = [
        f"{r['name']:<32} {r['project'] or '(every project)':<20} {r['updated_at']}  "
        f"{r['updated_by']}"
        for r in rows
    ]
    _emit(json_output, {"secrets": rows}, "\n".join(lines) or "no stored secrets")


@app.command("rm")
def remove(
    name: NameArgument,
    project: ProjectOption = "",
    file: FileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a stored secret. Jobs that declare it then see it unset (exit 2 if none)."""
    remote = remote_api()
    if remote is not None:
        remote.call("DELETE", f"/api/v1/secrets/{segment(name)}", params=_scope(project))
    else:
        with _service(file) as (service, actor):
            service.delete(name, project=project, actor=actor)
    _emit(json_output, {"deleted": name, "project": project}, f"deleted {name}")


@app.command()
def keygen(json_output: JsonOption = False) -> None:
    """Print a new random key for CONVEYOR_SECRET_KEY (32 bytes, URL-safe base64).

    Keep it where the store's operators keep credentials: whoever holds the key
    and the database can read every secret, and without it none can be read.
    """
    from conveyor.core.secrets import key_id, parse_key
    from conveyor.engine.secrets import new_key

    key = new_key()
    _emit(json_output, {"key": key, "key_id": key_id(parse_key(key))}, key)


@app.command()
def rotate(file: FileOption = None, json_output: JsonOption = False) -> None:
    """Re-encrypt every stored secret (and webhook secret) under CONVEYOR_SECRET_KEY.

    Values sealed under CONVEYOR_SECRET_KEY_PREVIOUS are opened with it and sealed
    again under the current key; afterwards the previous key is no longer needed.
    """
    with _service(file) as (service, actor):
        done = service.rotate(actor=actor)
    data = {"key_id": done.key_id, "secrets": done.secrets, "webhook_secrets": done.webhook_secrets}
    text = (
        f"re-encrypted {done.secrets} secrets and {done.webhook_secrets} webhook secrets "
        f"under key {done.key_id}"
    )
    _emit(json_output, data, text)


def _scope(project: str | None) -> dict[str, str]:
    """The `?project=` of an API call (none: every project)."""
    return {"project": project} if project else {}


def _info_json(info: SecretInfo) -> dict[str, object]:
    from conveyor.core.clock import iso

    return {
        "name": info.name,
        "project": info.project,
        "key_id": info.key_id,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "updated_by": info.updated_by,
    }
