"""The `delivery:` section of `conveyor.yaml` as pydantic models (shape and single values).

Checks across environments (unique names, `after` naming an earlier one) are
the loader's, in `conveyor.spec.delivery_check`.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from conveyor.spec import rules
from conveyor.spec.rules import RuleError
from conveyor.spec.windows import EXAMPLE, parse_window

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
MAX_INSTANCES = 20


def check_name(value: str) -> str:
    """A service or environment name: lowercase letters, digits and '-'."""
    if not NAME.fullmatch(value):
        fixed = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-") or "prod"
        raise RuleError(
            f"'{value}' may only use lowercase letters, digits and '-' (at most 63)",
            f"try '{fixed}'",
        )
    return value


def check_window(value: str) -> str:
    try:
        parse_window(value)
    except ValueError as exc:
        raise RuleError(str(exc)) from None
    return value


def check_http_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise RuleError(f"'{value}' is not an HTTP path", "write a path like /healthz")
    return value


def check_instances(value: int) -> int:
    if not 1 <= value <= MAX_INSTANCES:
        raise RuleError(f"{value} instances; write a whole number from 1 to {MAX_INSTANCES}")
    return value


def check_count(value: int) -> int:
    if value < 1:
        raise RuleError(f"{value} approvals; write at least 1, or leave out 'approvals'")
    return value


Name = Annotated[str, AfterValidator(check_name)]
Duration = Annotated[
    float,
    BeforeValidator(rules.to_seconds, json_schema_input_type=str),
    AfterValidator(rules.check_positive),
]
Role = Literal["viewer", "developer", "approver", "release-manager", "admin"]
Windows = Annotated[
    list[Annotated[str, AfterValidator(check_window)]],
    BeforeValidator(rules.listify, json_schema_input_type=str | list[str]),
]
Instant = datetime.datetime | datetime.date


def _default_roles() -> list[Role]:
    return ["approver", "release-manager"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class HealthModel(_Strict):
    """How an instance shows it is healthy."""

    model_config = ConfigDict(title="Health")

    http: Annotated[str, AfterValidator(check_http_path)] = Field(
        default="/healthz", description="A path on the instance that answers 2xx when healthy."
    )
    timeout: Duration = Field(default=2.0, description="How long one check may take, like '2s'.")
    within: Duration = Field(
        default=30.0, description="How long a new instance has to become healthy, like '30s'."
    )


class ApprovalsModel(_Strict):
    """People who must approve a Promotion; never its requester or an author of the release."""

    model_config = ConfigDict(title="Approvals")

    count: Annotated[int, AfterValidator(check_count)] = Field(
        default=1, description="How many different people must approve."
    )
    roles: list[Role] = Field(
        default_factory=_default_roles,
        min_length=1,
        description="Roles allowed to approve.",
    )


class FreezeModel(_Strict):
    """A period in which no Promotion into the environment starts."""

    model_config = ConfigDict(title="Freeze", populate_by_name=True)

    start: Instant = Field(alias="from", description="First day (or instant, with a zone).")
    until: Instant = Field(description="The day (or instant) the freeze ends.")
    reason: Annotated[str, AfterValidator(rules.check_text)] = Field(
        description="Why, shown to whoever is blocked."
    )


class RequirementsModel(_Strict):
    """The Gates a Release must pass to be promoted into this environment."""

    model_config = ConfigDict(title="Requirements")

    after: Name | None = Field(
        default=None, description="An earlier environment the release must be healthy in."
    )
    soak: Duration | None = Field(
        default=None, description="How long it must have been healthy there, like '10m'."
    )
    approvals: ApprovalsModel | None = None
    window: Windows = Field(
        default_factory=list,
        description=f"Hours in which a promotion may start, like {EXAMPLE}; one or a list.",
    )
    freeze: list[FreezeModel] = Field(default_factory=list)
    policies: list[Annotated[str, AfterValidator(rules.check_text)]] = Field(
        default_factory=list, description="Names of policy rules (policies/*.yaml) that apply."
    )
    signed: bool = Field(
        default=True, description="Check that the artifacts match the release's digests."
    )


class EnvironmentModel(_Strict):
    """One stage a Release moves through, in order."""

    model_config = ConfigDict(title="Environment")

    name: Name = Field(description="Lowercase letters, digits and '-', like 'staging'.")
    auto: bool = Field(
        default=False, description="Promote every successful run on the default branch."
    )
    instances: Annotated[int, AfterValidator(check_instances)] = Field(
        default=1, description=f"How many instances run, 1 to {MAX_INSTANCES}."
    )
    strategy: Literal["rolling"] = Field(default="rolling", description="How a release rolls out.")
    change_record: bool = Field(
        default=False, description="Produce a change record for every promotion."
    )
    requires: RequirementsModel = Field(default_factory=RequirementsModel)


class DeliveryModel(_Strict):
    """How this service's Releases are made, run and promoted."""

    model_config = ConfigDict(title="Delivery")

    service: Name = Field(description="The service's name, like 'payments-api'.")
    artifacts: Annotated[
        list[Annotated[str, AfterValidator(rules.check_glob)]],
        BeforeValidator(rules.listify, json_schema_input_type=str | list[str]),
    ] = Field(min_length=1, description="Globs over the run's outputs that make a Release.")
    run: Annotated[str, AfterValidator(rules.check_text)] = Field(
        description="How an instance starts; $PORT holds the port it must listen on."
    )
    health: HealthModel = Field(default_factory=HealthModel)
    environments: list[EnvironmentModel] = Field(
        min_length=1, description="The environments, in promotion order."
    )
