"""The `delivery:` section as JSON values: in the parse cache, and as a Release records it.

Kept apart from `serialize` so that a run of a pipeline without a delivery
section never imports the delivery model (its dataclasses, zoneinfo).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from conveyor.core.errors import Location
from conveyor.spec.delivery import (
    Approvals,
    Delivery,
    Environment,
    Freeze,
    Health,
    Requirements,
)
from conveyor.spec.serialize import from_location, location_list
from conveyor.spec.windows import parse_window

# Where the values of a delivery config read back from a Release come from.
RECORDED = Location("recorded release config", 1, 1)


def delivery_to_dict(delivery: Delivery) -> dict[str, object]:
    health = delivery.health
    return {
        "service": delivery.service,
        "artifacts": list(delivery.artifacts),
        "run": delivery.run,
        "location": location_list(delivery.location),
        "health": [health.http, health.timeout_s, health.within_s],
        "environments": [_environment_to_dict(env) for env in delivery.environments],
    }


def delivery_config(delivery: Delivery) -> dict[str, object]:
    """The delivery section as JSON values without source positions: what a Release records."""
    doc = delivery_to_dict(delivery)
    del doc["location"]
    doc["environments"] = [
        {key: value for key, value in _environment_to_dict(env).items() if key != "location"}
        for env in delivery.environments
    ]
    return doc


def delivery_from_config(doc: Mapping[str, object]) -> Delivery:
    """Read back what `delivery_config` wrote (a Release's record); ValueError when damaged.

    The source positions are gone from a recorded config; every value points
    at `RECORDED` instead.
    """
    where = location_list(RECORDED)
    try:
        environments = [
            {**cast(dict[str, object], env), "location": where}
            for env in cast(list[object], doc["environments"])
        ]
        delivery = delivery_from_dict({**doc, "location": where, "environments": environments})
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(f"not a recorded delivery config: {err!r}") from err
    if delivery is None:
        raise ValueError("not a recorded delivery config: it is empty")
    return delivery


def _environment_to_dict(env: Environment) -> dict[str, object]:
    req = env.requires
    return {
        "name": env.name,
        "location": location_list(env.location),
        "auto": env.auto,
        "instances": env.instances,
        "strategy": env.strategy,
        "change_record": env.change_record,
        "after": req.after,
        "soak_s": req.soak_s,
        "approvals": None
        if req.approvals is None
        else [req.approvals.count, list(req.approvals.roles)],
        "windows": [window.text for window in req.windows],
        "freezes": [[f.start.isoformat(), f.end.isoformat(), f.reason] for f in req.freezes],
        "policies": list(req.policies),
        "signed": req.signed,
    }


def delivery_from_dict(value: object) -> Delivery | None:
    if value is None:
        return None
    doc = cast(dict[str, object], value)
    location = from_location(doc["location"])
    if location is None:
        raise ValueError("a delivery without a location")
    http, timeout_s, within_s = cast(list[object], doc["health"])
    return Delivery(
        service=str(doc["service"]),
        artifacts=tuple(cast(list[str], doc["artifacts"])),
        run=str(doc["run"]),
        environments=tuple(
            _environment_from_dict(cast(dict[str, object], env))
            for env in cast(list[object], doc["environments"])
        ),
        location=location,
        health=Health(str(http), float(cast(float, timeout_s)), float(cast(float, within_s))),
    )


def _environment_from_dict(doc: dict[str, object]) -> Environment:
    location = from_location(doc["location"])
    if location is None:
        raise ValueError("an environment without a location")
    approvals = cast(list[object] | None, doc["approvals"])
    soak = doc["soak_s"]
    return Environment(
        name=str(doc["name"]),
        location=location,
        auto=bool(doc["auto"]),
        instances=int(cast(int, doc["instances"])),
        strategy=str(doc["strategy"]),
        change_record=bool(doc["change_record"]),
        requires=Requirements(
            after=None if doc["after"] is None else str(doc["after"]),
            soak_s=None if soak is None else float(cast(float, soak)),
            approvals=None
            if approvals is None
            else Approvals(int(cast(int, approvals[0])), tuple(cast(list[str], approvals[1]))),
            windows=tuple(parse_window(text) for text in cast(list[str], doc["windows"])),
            freezes=tuple(
                Freeze(datetime.fromisoformat(a), datetime.fromisoformat(b), reason)
                for a, b, reason in cast(list[tuple[str, str, str]], doc["freezes"])
            ),
            policies=tuple(cast(list[str], doc["policies"])),
            signed=bool(doc["signed"]),
        ),
    )
