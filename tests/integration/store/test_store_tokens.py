"""API tokens in the store: looked up by hash, revoked once, each change an Event."""

from __future__ import annotations

import pytest

from conveyor.access.errors import Unauthenticated
from conveyor.core.clock import FrozenClock
from conveyor.core.errors import NotFound
from conveyor.engine.tokens import TokenService
from conveyor.store import events
from conveyor.store.db import Database


def test_a_created_token_authenticates_until_it_is_revoked(db: Database) -> None:
    service = TokenService(db=db, clock=FrozenClock())
    issued = service.create(role="developer", actor="root", name="ci", project="shop")
    principal = service.authenticate(issued.token)
    assert (principal.name, principal.role, principal.project) == ("ci", "developer", "shop")
    service.revoke(issued.record.id, actor="root")
    with pytest.raises(Unauthenticated) as refused:
        service.authenticate(issued.token)
    assert refused.value.reason == "revoked"


def test_an_expired_token_is_refused_after_its_lifetime(db: Database) -> None:
    clock = FrozenClock()
    service = TokenService(db=db, clock=clock)
    issued = service.create(role="viewer", actor="root", expires="1h")
    service.authenticate(issued.token)
    clock.advance(3600)
    with pytest.raises(Unauthenticated) as refused:
        service.authenticate(issued.token)
    assert refused.value.reason == "expired"


def test_revoking_twice_records_one_event_and_unknown_ids_are_not_found(db: Database) -> None:
    service = TokenService(db=db, clock=FrozenClock())
    issued = service.create(role="viewer", actor="root")
    service.revoke(issued.record.id, actor="root")
    service.revoke(issued.record.id, actor="root")
    kinds = [e.kind for e in events.for_subject(db, f"token/{issued.record.id}")]
    assert kinds == ["token.created", "token.revoked"]
    with pytest.raises(NotFound):
        service.revoke(999, actor="root")


def test_the_database_holds_only_the_hash_and_a_short_prefix(db: Database) -> None:
    service = TokenService(db=db, clock=FrozenClock())
    issued = service.create(role="admin", actor="root")
    with db.read() as tx:
        rows = tx.execute("SELECT * FROM api_tokens")
    assert issued.token not in str(rows)
    assert issued.record.prefix == issued.token[:10]


def test_last_use_is_recorded_at_most_once_a_minute(db: Database) -> None:
    clock = FrozenClock()
    service = TokenService(db=db, clock=clock)
    issued = service.create(role="viewer", actor="root")
    service.authenticate(issued.token)
    first = service.get(issued.record.id).last_used_at
    clock.advance(30)
    service.authenticate(issued.token)
    assert service.get(issued.record.id).last_used_at == first
    clock.advance(31)
    service.authenticate(issued.token)
    assert service.get(issued.record.id).last_used_at == first + 61  # type: ignore[operator]
