"""Stored secrets on SQLite and PostgreSQL: sealed at rest, bound to their name, rotatable."""

from __future__ import annotations

import pytest

from conveyor.core.clock import FrozenClock
from conveyor.core.errors import IntegrityError, NotFound, UsageError
from conveyor.core.secrets import format_key, key_id
from conveyor.engine.secrets import SecretService, StoredSecrets
from conveyor.store import events as event_log
from conveyor.store.db import Database
from conveyor.store.schema import metadata

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
VALUE = "hunter2-very-secret-value"


def environ(current: bytes | None = OLD_KEY, previous: bytes | None = None) -> dict[str, str]:
    env = {}
    if current is not None:
        env["CONVEYOR_SECRET_KEY"] = format_key(current)
    if previous is not None:
        env["CONVEYOR_SECRET_KEY_PREVIOUS"] = format_key(previous)
    return env


def service(db: Database, env: dict[str, str] | None = None) -> SecretService:
    return SecretService(db=db, clock=FrozenClock(), environ=environ() if env is None else env)


def resolve(
    db: Database, names: list[str], *, project: str = "shop", **keys: bytes
) -> dict[str, str]:
    env = environ(keys.get("current", OLD_KEY), keys.get("previous"))
    return StoredSecrets(lambda: db, project=project, environ=env)(names)


def every_stored_value(db: Database) -> list[str]:
    """Every value of every column of every table, as text."""
    found: list[str] = []
    with db.read() as tx:
        for table in metadata.sorted_tables:
            for row in tx.execute(f"SELECT * FROM {table.name}"):
                found.extend(str(value) for value in row)
    return found


def test_the_plaintext_is_stored_nowhere_and_the_secret_reads_back(db: Database) -> None:
    info = service(db).set("DEPLOY_TOKEN", VALUE, actor="ada@example.com")

    assert not [value for value in every_stored_value(db) if VALUE in value]
    assert info.key_id == key_id(OLD_KEY)
    assert resolve(db, ["DEPLOY_TOKEN"]) == {"DEPLOY_TOKEN": VALUE}


def test_setting_records_an_event_with_name_project_and_actor_but_no_value(db: Database) -> None:
    svc = service(db)
    svc.set("DEPLOY_TOKEN", VALUE, actor="ada@example.com", project="shop")
    svc.set("DEPLOY_TOKEN", VALUE + "2", actor="bob@example.com", project="shop")
    svc.delete("DEPLOY_TOKEN", actor="bob@example.com", project="shop")

    events = event_log.for_subject(db, "project/shop/secret/DEPLOY_TOKEN")
    assert [(e.kind, e.actor) for e in events] == [
        ("secret.set", "ada@example.com"),
        ("secret.set", "bob@example.com"),
        ("secret.deleted", "bob@example.com"),
    ]
    assert events[0].data == {
        "name": "DEPLOY_TOKEN",
        "project": "shop",
        "key_id": key_id(OLD_KEY),
        "replaced": False,
    }
    assert events[1].data["replaced"] is True
    logged = " ".join(e.data_json for e in event_log.iter_all(db))
    assert VALUE not in logged
    assert "v1:" not in logged  # no ciphertext either


def test_a_replaced_secret_keeps_its_creation_time_and_records_who_replaced_it(
    db: Database,
) -> None:
    clock = FrozenClock()
    svc = SecretService(db=db, clock=clock, environ=environ())
    first = svc.set("TOKEN", "one-value", actor="ada")
    clock.advance(60)
    second = svc.set("TOKEN", "two-value", actor="bob")

    assert (second.created_at, second.updated_at, second.updated_by) == (
        first.created_at,
        first.created_at + 60,
        "bob",
    )
    assert resolve(db, ["TOKEN"]) == {"TOKEN": "two-value"}


def test_listing_shows_names_and_who_set_them_never_values(db: Database) -> None:
    svc = service(db)
    svc.set("TOKEN", VALUE, actor="ada")
    svc.set("TOKEN", VALUE, actor="ada", project="shop")
    svc.set("OTHER", VALUE, actor="ada", project="blog")

    everything = svc.list_secrets()
    for_shop = svc.list_secrets(project="shop")

    assert [(s.project, s.name) for s in everything] == [
        ("", "TOKEN"),
        ("blog", "OTHER"),
        ("shop", "TOKEN"),
    ]
    assert [(s.project, s.name) for s in for_shop] == [("", "TOKEN"), ("shop", "TOKEN")]
    assert VALUE not in repr(everything)


def test_a_run_gets_its_projects_secret_before_the_global_one(db: Database) -> None:
    svc = service(db)
    svc.set("TOKEN", "global-value", actor="ada")
    svc.set("TOKEN", "shop-value", actor="ada", project="shop")
    svc.set("ONLY_GLOBAL", "g-value", actor="ada")

    assert resolve(db, ["TOKEN", "ONLY_GLOBAL", "MISSING"]) == {
        "TOKEN": "shop-value",
        "ONLY_GLOBAL": "g-value",
    }
    assert resolve(db, ["TOKEN"], project="blog") == {"TOKEN": "global-value"}


def test_a_run_needs_no_key_when_none_of_its_secrets_is_stored(db: Database) -> None:
    assert StoredSecrets(lambda: db, project="shop", environ={})(["TOKEN"]) == {}


def test_deleting_a_secret_that_does_not_exist_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="there is no stored secret TOKEN of project shop"):
        service(db).delete("TOKEN", actor="ada", project="shop")


def test_a_ciphertext_copied_under_another_name_does_not_decrypt(db: Database) -> None:
    svc = service(db)
    svc.set("PROD_TOKEN", "prod-value", actor="ada")
    svc.set("DEV_TOKEN", "dev-value", actor="ada")
    with db.write() as tx:
        tx.execute(
            "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE name = :p) "
            "WHERE name = :d",
            {"p": "PROD_TOKEN", "d": "DEV_TOKEN"},
        )

    with pytest.raises(IntegrityError) as caught:
        resolve(db, ["DEV_TOKEN"])

    assert str(caught.value) == (
        f"secret DEV_TOKEN does not decrypt with key {key_id(OLD_KEY)}: its stored ciphertext "
        "was altered or copied from another secret; set it again"
    )


def test_a_wrong_key_names_the_secret_and_the_key_it_was_sealed_with(db: Database) -> None:
    service(db).set("TOKEN", VALUE, actor="ada", project="shop")

    with pytest.raises(UsageError) as caught:
        resolve(db, ["TOKEN"], current=NEW_KEY)

    message = str(caught.value)
    assert message.startswith(
        f"secret TOKEN of project shop was encrypted with key {key_id(OLD_KEY)}, "
        f"but CONVEYOR_SECRET_KEY is key {key_id(NEW_KEY)}"
    )
    assert VALUE not in message


def test_a_missing_key_says_which_variable_to_set(db: Database) -> None:
    with pytest.raises(UsageError) as caught:
        service(db, {}).set("TOKEN", VALUE, actor="ada")

    assert str(caught.value).startswith(
        "CONVEYOR_SECRET_KEY is not set, and storing secret TOKEN needs it"
    )
    with db.read() as tx:
        assert tx.execute("SELECT count(*) FROM secrets") == [(0,)]


def test_rotation_reseals_under_the_new_key_so_the_old_one_can_go(db: Database) -> None:
    service(db).set("TOKEN", VALUE, actor="ada")
    service(db).set("OTHER", "other-value", actor="ada", project="shop")
    rotating = service(db, environ(NEW_KEY, previous=OLD_KEY))

    assert resolve(db, ["TOKEN"], current=NEW_KEY, previous=OLD_KEY) == {"TOKEN": VALUE}
    done = rotating.rotate(actor="ops")
    again = rotating.rotate(actor="ops")

    assert (done.key_id, done.secrets, again.secrets) == (key_id(NEW_KEY), 2, 0)
    assert {s.key_id for s in rotating.list_secrets()} == {key_id(NEW_KEY)}
    assert resolve(db, ["TOKEN", "OTHER"], current=NEW_KEY) == {
        "TOKEN": VALUE,
        "OTHER": "other-value",
    }
    assert [e.kind for e in event_log.for_subject(db, "secrets")] == ["secrets.rotated"] * 2


def test_rotation_without_the_previous_key_fails_and_changes_nothing(db: Database) -> None:
    service(db).set("TOKEN", VALUE, actor="ada")
    before = every_stored_value(db)

    with pytest.raises(UsageError, match=f"encrypted with key {key_id(OLD_KEY)}"):
        service(db, environ(NEW_KEY)).rotate(actor="ops")

    assert every_stored_value(db) == before


@pytest.mark.parametrize(
    ("name", "project", "expected"),
    [
        ("deploy-token", "", "is not an environment variable name"),
        ("TOKEN", "Shop", "project name 'Shop' is not allowed"),
    ],
)
def test_bad_names_are_refused_before_anything_is_stored(
    db: Database, name: str, project: str, expected: str
) -> None:
    with pytest.raises(UsageError, match=expected):
        service(db).set(name, VALUE, actor="ada", project=project)

    with db.read() as tx:
        assert tx.execute("SELECT count(*) FROM secrets") == [(0,)]
