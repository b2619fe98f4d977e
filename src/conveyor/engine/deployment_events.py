"""The Events a Deployment's changes are recorded as, each saved with the status that caused it.

Subjects sit below the Release's (`release/<service>/<version>/deployment/<id>`),
so a Release's Events include its Deployments. The rollout's own events are
named for people reading the log:

| rollout event          | recorded as                                              |
| ---------------------- | -------------------------------------------------------- |
| `deployment.started`   | `deployment.started`: new instances asked for            |
| `deployment.step`      | `deployment.progressing`: every new instance is healthy  |
| `deployment.failed`    | `deployment.failed`: why; rolling back begins            |
| `deployment.finished`  | `deployment.succeeded`, or `deployment.rolled_back` once |
|                        | the new instances are stopped after a failure or abort   |

`deployment.queued` is recorded when a Promotion's Deployment is queued;
`deployment.aborted`, `deployment.abort_ignored` and `instance.started`,
`instance.healthy`, `instance.exited`, `instance.stopped` keep their names.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.audit.chain import NewEvent
from conveyor.rollout.deployment import Deployment
from conveyor.rollout.model import EventValue, RolloutEvent


def queued(deployment: Deployment, actor: str) -> NewEvent:
    """`deployment.queued`: an approved Promotion waits for its environment's turn."""
    return NewEvent(
        "deployment.queued", deployment.subject, actor, deployment.created_at, _base(deployment)
    )


def recorded(
    deployment: Deployment, events: Iterable[RolloutEvent], actor: str, now: float
) -> list[NewEvent]:
    """The rollout's events of one pass, as Events of `deployment`."""
    return [
        NewEvent(
            _kind(event),
            deployment.subject,
            actor,
            now,
            {**_base(deployment), **{key: _json(value) for key, value in event.data.items()}},
        )
        for event in events
    ]


def _kind(event: RolloutEvent) -> str:
    if event.kind == "deployment.step":
        return "deployment.progressing"
    if event.kind == "deployment.finished":
        succeeded = event.data.get("phase") == "succeeded"
        return "deployment.succeeded" if succeeded else "deployment.rolled_back"
    return event.kind


def _base(deployment: Deployment) -> dict[str, object]:
    return {
        "deployment": int(deployment.id),
        "promotion": deployment.promotion_id,
        "environment": deployment.environment,
        "version": deployment.version,
    }


def _json(value: EventValue) -> object:
    return list(value) if isinstance(value, tuple) else value
