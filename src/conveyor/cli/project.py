"""`conveyor project`: the repositories a `conveyor server` builds when they push.

With CONVEYOR_SERVER and CONVEYOR_TOKEN the commands go through the server's
API; without, straight to this host's database, as `conveyor token` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.pipeline import JsonOption
from conveyor.cli.remote_http import actor, host_database, segment
from conveyor.cli.remote_http import remote as remote_api

if TYPE_CHECKING:
    from conveyor.engine.projects import ProjectService
    from conveyor.triggers.project import Project

app = typer.Typer(
    help=(
        "Projects of `conveyor server`: a repository and where its conveyor.yaml is. "
        "A push to GitHub or GitLab starts a Run of the project whose repository it names, "
        "when the delivery is signed with the project's webhook secret "
        "(see `conveyor project create --help`)."
    ),
    no_args_is_help=True,
)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="project")


NameArgument = Annotated[
    str,
    typer.Argument(
        help="The project's name: lower-case letters, digits, '.', '_' or '-', e.g. payments.",
        show_default=False,
    ),
]


@app.command()
def create(
    name: NameArgument,
    repository: Annotated[
        str,
        typer.Option(
            help="Its repository, as cloned or browsed: https://github.com/OWNER/REPO or "
            "git@HOST:GROUP/REPO.git.",
            show_default=False,
        ),
    ],
    spec_path: Annotated[
        str,
        typer.Option(
            help="Where conveyor.yaml is inside the repository; its jobs run in its directory."
        ),
    ] = "conveyor.yaml",
    default_branch: Annotated[str, typer.Option(help="The branch releases come from.")] = "main",
    webhook_secret: Annotated[
        bool,
        typer.Option(
            "--webhook-secret",
            help="Read the webhook secret (16+ characters) from stdin, or a prompt that does "
            "not echo; give the same value to GitHub's or GitLab's webhook settings.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a project; webhooks from its repository start Runs of it.

    Example: openssl rand -hex 32 | tee hook.txt | conveyor project create payments
    --repository https://github.com/acme/payments --webhook-secret
    """
    from conveyor.cli.secret import read_value

    secret = read_value("the webhook secret") if webhook_secret else None
    body = {
        "name": name,
        "repository": repository,
        "spec_path": spec_path,
        "default_branch": default_branch,
        "webhook_secret": secret,
    }
    remote = remote_api()
    if remote is not None:
        doc = remote.call("POST", "/api/v1/projects", body)
    else:
        with _service() as service:
            made = service.create(
                name,
                repository,
                actor=actor(),
                spec_path=spec_path,
                default_branch=default_branch,
                webhook_secret=secret,
            )
        doc = _doc(made)
    _emit(json_output, doc, f"created project {name} ({doc['repository']})")


@app.command(name="list")
def list_projects(json_output: JsonOption = False) -> None:
    """List projects: name, repository, spec path, branch, whether a webhook secret is set."""
    remote = remote_api()
    if remote is not None:
        listing = remote.call("GET", "/api/v1/projects")["projects"]
        assert isinstance(listing, list), "the server answers a list of projects"
        found: list[dict[str, object]] = listing
    else:
        with _service() as service:
            found = [_doc(p) for p in service.list_projects()]
    if json_output:
        typer.echo(_dumps({"projects": found}))
        return
    from conveyor.cli.render import table

    rows: list[tuple[str, ...]] = [("NAME", "REPOSITORY", "SPEC", "BRANCH", "WEBHOOK SECRET")]
    keys = ("name", "repository", "spec_path", "default_branch", "webhook_secret")
    rows += [tuple(str(p.get(k) or "-") for k in keys) for p in found]
    typer.echo(table(rows) if found else "no projects; `conveyor project create` makes one")


@app.command()
def show(name: NameArgument, json_output: JsonOption = False) -> None:
    """Show one project (never its webhook secret, only whether one is set)."""
    remote = remote_api()
    if remote is not None:
        doc = remote.call("GET", f"/api/v1/projects/{segment(name)}")
    else:
        with _service() as service:
            doc = _doc(service.get(name))
    text = "\n".join(f"{key}: {value if value is not None else '-'}" for key, value in doc.items())
    _emit(json_output, doc, text)


@app.command("rm")
def remove(name: NameArgument, json_output: JsonOption = False) -> None:
    """Delete a project; its Runs and Events stay. Webhooks for it are refused afterwards."""
    remote = remote_api()
    if remote is not None:
        remote.call("DELETE", f"/api/v1/projects/{segment(name)}")
    else:
        with _service() as service:
            service.delete(name, actor=actor())
    _emit(json_output, {"deleted": name}, f"deleted project {name}")


@contextmanager
def _service() -> Iterator[ProjectService]:
    """The ProjectService on this host's database, refusing one that is not migrated."""
    from conveyor.core.clock import SystemClock
    from conveyor.engine.projects import ProjectService

    with host_database() as db:
        yield ProjectService(db=db, clock=SystemClock(), environ=os.environ)


def _doc(project: Project) -> dict[str, object]:
    """A project in the same form the API answers."""
    from conveyor.server.api.projects import Project as ProjectJson

    return ProjectJson.of(project).model_dump()


def _dumps(value: object) -> str:
    from conveyor.cli.render import dumps

    return dumps(value)


def _emit(as_json: bool, doc: dict[str, object], text: str) -> None:
    typer.echo(_dumps(doc) if as_json else text)
