"""Promotions and Waivers of the server's workspace: request, decide, explain, list.

Who acts is the token's owner, in the token's role. The promotion and waiver
services enforce every rule (segregation of duties included) exactly as they
do embedded: a refused decision is a 403 problem naming the rule, and only
the refusal's Event is recorded. The server's reconcile loop re-evaluates
open promotions and carries out approved ones, so nobody has to wait here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from conveyor.control.delivery_wire import promotion_to_json, waiver_to_json
from conveyor.policy.waiver import WaiverState
from conveyor.release.change_record import to_json as record_json
from conveyor.release.change_record import to_markdown as record_markdown
from conveyor.server.api.delivery import ProjectDelivery, change_records_of
from conveyor.server.auth import Caller
from conveyor.server.delivery import actor_of

router = APIRouter(tags=["promotions"])

Doc = dict[str, object]


class PromotionRequest(BaseModel):
    """A release to promote into an environment of the workspace's `delivery:` section."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=200, examples=["payments-api"])
    version: str = Field(min_length=1, max_length=100, examples=["1.4.0", "latest"])
    environment: str = Field(min_length=1, max_length=200, examples=["prod"])


class Decision(BaseModel):
    """Why, recorded with the decision."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class WaiverRequest(BaseModel):
    """An exception to one policy rule in one environment, until it expires."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(min_length=1, max_length=200, examples=["no-critical-cves"])
    environment: str = Field(min_length=1, max_length=200, examples=["prod"])
    expires_s: float = Field(gt=0, description="How long it lasts, in seconds (at most 30 days).")
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/promotions", name="request_promotion", summary="Promote a release.")
def request_promotion(
    body: PromotionRequest, caller: Caller, delivery: ProjectDelivery, response: Response
) -> Doc:
    promotion = delivery.promotions.promote(
        delivery.pipeline(), body.service, body.version, body.environment, actor_of(caller)
    )
    response.status_code = 201
    return promotion_to_json(promotion)


@router.get("/promotions", name="list_promotions", summary="List promotions, newest first.")
def list_promotions(
    *,
    delivery: ProjectDelivery,
    service: Annotated[str | None, Query(max_length=200)] = None,
    environment: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Doc:
    found = delivery.promotions.list_promotions(
        service=service, environment=environment, limit=limit
    )
    return {"promotions": [promotion_to_json(p) for p in found]}


@router.get("/promotions/{promotion_id}", name="get_promotion", summary="One promotion.")
def get_promotion(promotion_id: int, delivery: ProjectDelivery) -> Doc:
    return promotion_to_json(delivery.promotions.get(promotion_id))


@router.get(
    "/promotions/{promotion_id}/change-record",
    name="get_change_record",
    summary="A promotion's change record as it stands now: JSON (as its webhook gets) or Markdown.",
    responses={200: {"content": {"text/markdown": {}}}},
)
def get_change_record(
    promotion_id: int,
    delivery: ProjectDelivery,
    as_: Annotated[Literal["json", "markdown"], Query(alias="format")] = "json",
) -> Response:
    # 404 when the promotion's environment keeps no change record, as `change-record` exits 2.
    record = change_records_of(delivery).get(delivery.promotions.get(promotion_id))
    if as_ == "markdown":
        return PlainTextResponse(record_markdown(record), media_type="text/markdown")
    return JSONResponse(record_json(record))


@router.post(
    "/promotions/{promotion_id}/approve",
    name="approve_promotion",
    summary="Approve a promotion as the token's owner.",
)
def approve_promotion(
    promotion_id: int, body: Decision, caller: Caller, delivery: ProjectDelivery
) -> Doc:
    approved = delivery.promotions.approve(promotion_id, actor_of(caller), comment=body.comment)
    return promotion_to_json(approved)


@router.post(
    "/promotions/{promotion_id}/reject",
    name="reject_promotion",
    summary="Reject a promotion (or withdraw your own).",
)
def reject_promotion(
    promotion_id: int, body: Decision, caller: Caller, delivery: ProjectDelivery
) -> Doc:
    rejected = delivery.promotions.reject(promotion_id, actor_of(caller), comment=body.comment)
    return promotion_to_json(rejected)


@router.get(
    "/why",
    name="why_promotion",
    summary="The latest promotion of a release into an environment: every gate and why.",
)
def why_promotion(
    *,
    delivery: ProjectDelivery,
    service: Annotated[str, Query(min_length=1, max_length=200)],
    version: Annotated[str, Query(min_length=1, max_length=100)],
    environment: Annotated[str, Query(min_length=1, max_length=200)],
) -> Doc:
    return promotion_to_json(delivery.promotions.why(service, version, environment))


# --- waivers -------------------------------------------------------------------


@router.post("/waivers", name="request_waiver", summary="Ask for a waiver of one policy rule.")
def request_waiver(
    body: WaiverRequest, caller: Caller, delivery: ProjectDelivery, response: Response
) -> Doc:
    created = delivery.waivers.create(
        delivery.pipeline(),
        rule=body.rule,
        environment=body.environment,
        expires_s=body.expires_s,
        reason=body.reason,
        requester=actor_of(caller),
    )
    response.status_code = 201
    return waiver_to_json(created)


@router.post("/waivers/{waiver_id}/approve", name="approve_waiver", summary="Approve a waiver.")
def approve_waiver(
    waiver_id: int, body: Decision, caller: Caller, delivery: ProjectDelivery
) -> Doc:
    approved = delivery.waivers.approve(waiver_id, actor_of(caller), comment=body.comment)
    # A promotion blocked by the rule it waives proceeds now, as embedded.
    delivery.promotions.reevaluate_open()
    return waiver_to_json(approved)


@router.post("/waivers/{waiver_id}/reject", name="reject_waiver", summary="Reject a waiver.")
def reject_waiver(waiver_id: int, body: Decision, caller: Caller, delivery: ProjectDelivery) -> Doc:
    rejected = delivery.waivers.reject(waiver_id, actor_of(caller), comment=body.comment)
    return waiver_to_json(rejected)


@router.post("/waivers/{waiver_id}/revoke", name="revoke_waiver", summary="Revoke a waiver.")
def revoke_waiver(waiver_id: int, body: Decision, caller: Caller, delivery: ProjectDelivery) -> Doc:
    revoked = delivery.waivers.revoke(waiver_id, actor_of(caller), comment=body.comment)
    # A promotion the waiver excused is judged again.
    delivery.promotions.reevaluate_open()
    return waiver_to_json(revoked)


@router.get("/waivers", name="list_waivers", summary="List waivers, newest first.")
def list_waivers(
    *,
    delivery: ProjectDelivery,
    environment: Annotated[str | None, Query(max_length=200)] = None,
    rule: Annotated[str | None, Query(max_length=200)] = None,
    waiver_state: Annotated[WaiverState | None, Query(alias="state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Doc:
    found = delivery.waivers.list_waivers(
        environment=environment, rule=rule, state=waiver_state, limit=limit
    )
    return {"waivers": [waiver_to_json(w) for w in found]}


@router.get("/waivers/{waiver_id}", name="get_waiver", summary="One waiver.")
def get_waiver(waiver_id: int, delivery: ProjectDelivery) -> Doc:
    return waiver_to_json(delivery.waivers.get(waiver_id))
