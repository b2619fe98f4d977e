"""`GET /api/v1/events`: the event log in order, filtered by subject, a page at a time.

A token limited to a project sees only that project's Events (`store/scoping.py`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from conveyor.server.api.runs import parse_cursor
from conveyor.server.auth import Caller, State
from conveyor.store import events as event_store

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", name="list_events", summary="List Events, oldest first.")
def list_events(
    *,
    caller: Caller,
    state: State,
    subject: Annotated[
        str | None,
        Query(description="Only Events at or below this subject, e.g. `run/3` or `token`."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before.")] = None,
) -> dict[str, object]:
    found = event_store.page(
        state.db,
        prefix=subject,
        after=parse_cursor(cursor) or 0,
        limit=limit,
        project=caller.project,
    )
    return {
        "events": [
            {
                "seq": e.seq,
                "ts": e.ts,
                "kind": e.kind,
                "subject": e.subject,
                "actor": e.actor,
                "data": dict(e.data),
                "hash": e.hash,
            }
            for e in found
        ],
        "next_cursor": str(found[-1].seq) if len(found) == limit else None,
    }
