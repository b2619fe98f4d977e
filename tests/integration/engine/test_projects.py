"""The Project service on SQLite and PostgreSQL: names, repositories, sealed webhook secrets."""

from __future__ import annotations

import pytest

from conveyor.core.clock import FrozenClock
from conveyor.core.errors import Conflict, NotFound, UsageError
from conveyor.core.secrets import format_key
from conveyor.engine.projects import ProjectService
from conveyor.store import events as event_log
from conveyor.store.db import Database
from conveyor.store.schema import metadata

from .store_backends import backend_db

__all__ = ["backend_db"]

KEY = {"CONVEYOR_SECRET_KEY": format_key(bytes(range(32)))}
HOOK_SECRET = "0123456789abcdef-webhook-secret"
REPO = "https://github.com/octo-org/payments-api"


def projects(db: Database, environ: dict[str, str] | None = None) -> ProjectService:
    return ProjectService(db=db, clock=FrozenClock(), environ=KEY if environ is None else environ)


def stored_text(db: Database) -> str:
    with db.read() as tx:
        return " ".join(
            str(value)
            for table in metadata.sorted_tables
            for row in tx.execute(f"SELECT * FROM {table.name}")
            for value in row
        )


def test_a_project_is_created_with_defaults_and_recorded_with_its_actor(
    backend_db: Database,
) -> None:
    created = projects(backend_db).create("payments", REPO, actor="ada@example.com")

    assert projects(backend_db).get("payments") == created
    assert (created.spec_path, created.default_branch, created.has_webhook_secret) == (
        "conveyor.yaml",
        "main",
        False,
    )
    [event] = event_log.for_subject(backend_db, "project/payments")
    assert (event.kind, event.actor) == ("project.created", "ada@example.com")
    assert event.data == {
        "name": "payments",
        "repository": "github.com/octo-org/payments-api",
        "spec_path": "conveyor.yaml",
        "default_branch": "main",
        "webhook_secret": False,
    }


def test_the_webhook_secret_is_stored_sealed_never_in_clear(backend_db: Database) -> None:
    created = projects(backend_db).create("payments", REPO, actor="ada", webhook_secret=HOOK_SECRET)

    assert created.has_webhook_secret
    assert HOOK_SECRET not in stored_text(backend_db)


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:Octo-Org/Payments-API.git",
        "https://github.com/octo-org/payments-api.git",
        "ssh://git@github.com/octo-org/payments-api",
    ],
)
def test_a_project_is_found_by_any_form_of_its_repository_url(
    backend_db: Database, url: str
) -> None:
    projects(backend_db).create("payments", REPO, actor="ada")
    projects(backend_db).create("blog", "https://gitlab.com/octo/blog", actor="ada")

    found = projects(backend_db).find_by_repository(url)

    assert found is not None
    assert found.name == "payments"
    assert projects(backend_db).find_by_repository("https://github.com/octo-org/other") is None


def test_a_second_project_of_the_same_name_or_repository_is_a_conflict(
    backend_db: Database,
) -> None:
    service = projects(backend_db)
    service.create("payments", REPO, actor="ada")

    with pytest.raises(Conflict, match="project payments already exists"):
        service.create("payments", "https://github.com/octo-org/other", actor="ada")
    with pytest.raises(Conflict, match="already belongs to project payments"):
        service.create("payments-2", "git@github.com:octo-org/payments-api.git", actor="ada")
    assert [p.name for p in service.list_projects()] == ["payments"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Payments"}, "project name 'Payments' is not allowed: use 1 to 63 lower-case"),
        ({"repository": "payments-api"}, "is not a repository URL"),
        ({"spec_path": "../conveyor.yaml"}, "must be a path inside the repository"),
        ({"spec_path": "/etc/conveyor.yaml"}, "must be a path inside the repository"),
        ({"default_branch": "two words"}, "is not a branch name"),
        ({"webhook_secret": "short"}, "shorter than 16 characters"),
    ],
)
def test_bad_input_is_refused_with_the_fix_and_nothing_is_stored(
    backend_db: Database, kwargs: dict[str, str], message: str
) -> None:
    args = {"name": "payments", "repository": REPO} | kwargs
    name, repository = args.pop("name"), args.pop("repository")

    with pytest.raises(UsageError, match=message):
        projects(backend_db).create(name, repository, actor="ada", **args)

    assert projects(backend_db).list_projects() == []
    assert list(event_log.iter_all(backend_db)) == []


def test_a_webhook_secret_without_a_key_says_which_variable_to_set(backend_db: Database) -> None:
    with pytest.raises(UsageError, match="CONVEYOR_SECRET_KEY is not set, and storing the webhook"):
        projects(backend_db, {}).create("payments", REPO, actor="ada", webhook_secret=HOOK_SECRET)

    assert projects(backend_db).list_projects() == []


def test_deleting_a_project_records_it_and_a_missing_one_is_not_found(
    backend_db: Database,
) -> None:
    service = projects(backend_db)
    service.create("payments", REPO, actor="ada")
    service.delete("payments", actor="bob")

    with pytest.raises(NotFound, match="there is no project payments"):
        service.get("payments")
    with pytest.raises(NotFound):
        service.delete("payments", actor="bob")
    kinds = [(e.kind, e.actor) for e in event_log.for_subject(backend_db, "project/payments")]
    assert kinds == [("project.created", "ada"), ("project.deleted", "bob")]
