"""What the delivery endpoints carry: Releases, Promotions, Deployments, environments, Waivers.

The server writes these values and the remote control plane reads them back
into the records the embedded control plane returns, so a command prints the
same against a server as on its own workspace. Both sides use these
functions, so the two cannot drift apart. Every reader raises ValueError on a
document that is not one of its values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from conveyor.engine.environments import EnvironmentView, InstanceView
from conveyor.engine.releases import ReleaseOutcome
from conveyor.engine.waivers import WaiverStatus
from conveyor.policy.waiver import Waiver, WaiverState
from conveyor.promotion.codec import basis_from_json, basis_json, report_from_json, report_json
from conveyor.promotion.model import Approval, EnvironmentState, Promotion, PromotionState
from conveyor.release.model import Commit, Release, ReleaseArtifact
from conveyor.rollout import status as rollout_status
from conveyor.rollout.deployment import Deployment, DeploymentId

Doc = dict[str, object]
_T = TypeVar("_T")


def _flat(cls: type[_T], doc: object) -> _T:
    """A dataclass of plain fields from the document `dataclasses.asdict` made of one."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"not a {cls.__name__}: {type(doc).__name__}")  # noqa: TRY004
    names = {f.name for f in dataclasses.fields(cast(Any, cls))}
    try:
        return cls(**{k: v for k, v in doc.items() if k in names})
    except TypeError as exc:
        raise ValueError(f"not a {cls.__name__}: {exc}") from None


def _mapping(doc: object) -> Mapping[str, object]:
    if not isinstance(doc, Mapping):
        raise ValueError(f"expected an object, found {type(doc).__name__}")  # noqa: TRY004
    return cast(Mapping[str, object], doc)


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, found {type(value).__name__}")  # noqa: TRY004
    return value


# --- releases ------------------------------------------------------------------


def release_to_json(release: Release) -> Doc:
    return dataclasses.asdict(release)


def release_from_json(doc: object) -> Release:
    data = dict(_mapping(doc))
    data["artifacts"] = tuple(_flat(ReleaseArtifact, a) for a in _list(data.get("artifacts")))
    data["commits"] = tuple(_flat(Commit, c) for c in _list(data.get("commits", [])))
    return _flat(Release, data)


def outcome_to_json(outcome: ReleaseOutcome) -> Doc:
    return {
        "release": release_to_json(outcome.release),
        "created": outcome.created,
        "reasons": list(outcome.reasons),
    }


def outcome_from_json(doc: object) -> ReleaseOutcome:
    data = _mapping(doc)
    reasons = tuple(str(r) for r in _list(data.get("reasons", [])))
    return ReleaseOutcome(release_from_json(data.get("release")), bool(data["created"]), reasons)


# --- promotions ----------------------------------------------------------------


def promotion_to_json(promotion: Promotion) -> Doc:
    doc = {f.name: getattr(promotion, f.name) for f in dataclasses.fields(promotion)}
    doc["basis"] = basis_json(promotion.basis)
    doc["report"] = None if promotion.report is None else report_json(promotion.report)
    doc["approvals"] = [dataclasses.asdict(a) for a in promotion.approvals]
    return doc


def promotion_from_json(doc: object) -> Promotion:
    data = dict(_mapping(doc))
    data["basis"] = basis_from_json(data.get("basis"))
    report = data.get("report")
    data["report"] = None if report is None else report_from_json(report)
    data["approvals"] = tuple(_flat(Approval, a) for a in _list(data.get("approvals", [])))
    promotion = _flat(Promotion, data)
    if promotion.state not in ("pending", "blocked", "approved", "deployed", *_CLOSED):
        raise ValueError(f"not a promotion state: {promotion.state!r}")
    return promotion


_CLOSED: tuple[PromotionState, ...] = ("rejected", "superseded", "failed")


# --- deployments and environments ----------------------------------------------


def deployment_to_json(deployment: Deployment) -> Doc:
    doc = {f.name: getattr(deployment, f.name) for f in dataclasses.fields(deployment)}
    doc["status"] = rollout_status.to_json(deployment.status)
    return doc


def deployment_from_json(doc: object) -> Deployment:
    data = dict(_mapping(doc))
    data["status"] = rollout_status.from_json(_mapping(data.get("status")))
    data["id"] = DeploymentId(int(cast(int, data["id"])))
    return _flat(Deployment, data)


def environment_to_json(view: EnvironmentView) -> Doc:
    return {
        "name": view.name,
        "deployed": None if view.deployed is None else dataclasses.asdict(view.deployed),
        "deployment": None if view.deployment is None else deployment_to_json(view.deployment),
        "queued": view.queued,
        "instances": [dataclasses.asdict(i) for i in view.instances],
    }


def environment_from_json(doc: object) -> EnvironmentView:
    data = _mapping(doc)
    deployed, deployment = data.get("deployed"), data.get("deployment")
    return EnvironmentView(
        name=str(data["name"]),
        deployed=None if deployed is None else _flat(EnvironmentState, deployed),
        deployment=None if deployment is None else deployment_from_json(deployment),
        queued=int(cast(int, data["queued"])),
        instances=tuple(_flat(InstanceView, i) for i in _list(data.get("instances", []))),
    )


# --- waivers ---------------------------------------------------------------------


def waiver_to_json(status: WaiverStatus) -> Doc:
    return {"waiver": dataclasses.asdict(status.waiver), "state": status.state, "at": status.at}


def waiver_from_json(doc: object) -> WaiverStatus:
    data = _mapping(doc)
    state = str(data["state"])
    if state not in ("pending", "active", "rejected", "revoked", "expired"):
        raise ValueError(f"not a waiver state: {state!r}")
    at = float(cast(float, data["at"]))
    return WaiverStatus(_flat(Waiver, data.get("waiver")), cast(WaiverState, state), at)
