"""`conveyor token`: API tokens for `conveyor server`.

Without CONVEYOR_SERVER the commands work straight on the database
(CONVEYOR_DATABASE_URL, or the workspace's): that is how the first admin token
is made on the server's host. With CONVEYOR_SERVER and CONVEYOR_TOKEN they go
through the server's API, as the token's holder.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.pipeline import JsonOption
from conveyor.cli.remote_http import actor, host_database
from conveyor.cli.remote_http import remote as remote_api

if TYPE_CHECKING:
    from conveyor.access.tokens import TokenRecord
    from conveyor.engine.tokens import TokenService

app = typer.Typer(
    help=(
        "API tokens for `conveyor server`, shown once and stored only as hashes. "
        "Roles: viewer, developer, approver, release-manager, admin; runner for agents."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="token")


@app.command()
def create(
    role: Annotated[
        str,
        typer.Option(
            help="viewer, developer, approver, release-manager, admin, or runner (agents only)."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Who holds it, e.g. ci@example.com.")] = None,
    project: Annotated[
        str | None, typer.Option(help="Limit the token to this project (default: all).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 30d or 12h (default: never).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a token and print it once; only its SHA-256 is kept.

    Example: conveyor token create --role developer --name ci --expires 90d
    """
    body = {"role": role, "name": name, "project": project, "expires": expires}
    remote = remote_api()
    if remote is not None:
        doc = remote.call("POST", "/api/v1/tokens", body)
    else:
        doc = _direct_create(role=role, name=name, project=project, expires=expires)
    if json_output:
        keys = ("token", "id", "name", "role", "kind", "project", "expires_at")
        typer.echo(_dumps({k: doc.get(k) for k in keys}))
        return
    typer.echo(doc["token"])
    sys.stderr.write(
        f"token {doc['id']} ({doc['role']}, {doc['name']}) expires "
        f"{doc['expires_at'] or 'never'}; it is shown only now, store it safely\n"
    )


@app.command(name="list")
def list_tokens(
    include_revoked: Annotated[
        bool, typer.Option("--all", help="Also list revoked tokens.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """List tokens: id, holder, role, project, expiry, last use (never the token)."""
    remote = remote_api()
    if remote is not None:
        query = "?include_revoked=true" if include_revoked else ""
        listing = remote.call("GET", f"/api/v1/tokens{query}")["tokens"]
        assert isinstance(listing, list), "the server answers a list of tokens"
        found: list[dict[str, object]] = listing
    else:
        with _service() as service:
            found = [_doc(t) for t in service.list_tokens(include_revoked=include_revoked)]
    if json_output:
        typer.echo(_dumps({"tokens": found}))
        return
    from conveyor.cli.render import table

    rows: list[tuple[str, ...]] = [
        ("ID", "NAME", "ROLE", "PROJECT", "PREFIX", "EXPIRES", "LAST USED", "REVOKED")
    ]
    for t in found:
        rows.append(
            tuple(
                str(t.get(k) or "-")
                for k in (
                    "id",
                    "name",
                    "role",
                    "project",
                    "prefix",
                    "expires_at",
                    "last_used_at",
                    "revoked_at",
                )
            )
        )
    typer.echo(table(rows))


@app.command()
def revoke(
    token_id: Annotated[int, typer.Argument(help="The id from `conveyor token list`.")],
    json_output: JsonOption = False,
) -> None:
    """Revoke a token for good; requests with it are refused from now on."""
    remote = remote_api()
    if remote is not None:
        doc = remote.call("DELETE", f"/api/v1/tokens/{token_id}")
    else:
        with _service() as service:
            doc = _doc(service.revoke(token_id, actor=actor()))
    if json_output:
        typer.echo(_dumps(doc))
        return
    typer.echo(f"revoked token {doc['id']} ({doc['name']})")


def _dumps(value: object) -> str:
    from conveyor.cli.render import dumps

    return dumps(value)


def _doc(record: TokenRecord) -> dict[str, object]:
    """A token record in the same form the API answers."""
    from conveyor.server.api.tokens import Token

    return Token.of(record).model_dump()


def _direct_create(
    *, role: str, name: str | None, project: str | None, expires: str | None
) -> dict[str, object]:
    with _service() as service:
        issued = service.create(
            role=role, actor=actor(), name=name, project=project, expires=expires
        )
    return {"token": issued.token, **_doc(issued.record)}


@contextmanager
def _service() -> Iterator[TokenService]:
    """The TokenService on this host's database, refusing one that is not migrated."""
    from conveyor.engine.tokens import TokenService

    with host_database() as db:
        yield TokenService(db=db)
