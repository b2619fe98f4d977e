"""Checks across the `delivery:` section, and building the frozen `Delivery` from it."""

from __future__ import annotations

import datetime

from conveyor.core.errors import SpecIssue
from conveyor.core.values import field, mutable
from conveyor.spec.delivery import (
    Approvals,
    Delivery,
    Environment,
    Freeze,
    Health,
    Requirements,
)
from conveyor.spec.delivery_model import DeliveryModel, EnvironmentModel, FreezeModel
from conveyor.spec.source import NodePath, SourceMap
from conveyor.spec.suggest import did_you_mean, one_of
from conveyor.spec.windows import parse_window

ROOT: NodePath = ("delivery",)


@mutable
class DeliveryCheck:
    """Checks one `delivery:` section; `issues` holds every problem found."""

    positions: SourceMap
    issues: list[SpecIssue] = field(default_factory=list)

    def build(self, model: DeliveryModel) -> Delivery:
        """The Delivery; check `issues` afterwards, it is only usable when they are none."""
        seen: dict[str, int] = {}
        environments = []
        for index, env in enumerate(model.environments):
            at: NodePath = (*ROOT, "environments", index)
            if env.name in seen:
                self._add(
                    (*at, "name"),
                    f"environment '{env.name}' is listed twice",
                    f"the first is environments[{seen[env.name]}]; rename or remove one",
                )
            self._check_after(env, at, list(seen))
            seen.setdefault(env.name, index)
            environments.append(self._environment(env, at))
        health = model.health
        return Delivery(
            service=model.service,
            artifacts=tuple(model.artifacts),
            run=model.run,
            environments=tuple(environments),
            location=self.positions.key(ROOT),
            health=Health(health.http, health.timeout, health.within),
        )

    def _check_after(self, env: EnvironmentModel, at: NodePath, earlier: list[str]) -> None:
        after, requires = env.requires.after, (*at, "requires")
        if after is None:
            if env.requires.soak is not None:
                self._add(
                    (*requires, "soak"),
                    f"environment '{env.name}' has a soak but no 'after' to soak in",
                    "add 'after:' with the environment the release must soak in",
                )
            return
        if after == env.name:
            self._add((*requires, "after"), f"environment '{env.name}' comes after itself", None)
        elif after not in earlier:
            hint = did_you_mean(after, earlier) or (
                f"the earlier environments are {one_of(earlier)}"
                if earlier
                else "the first environment cannot come after another"
            )
            self._add(
                (*requires, "after"),
                f"environment '{env.name}' comes after '{after}', "
                "which is not an earlier environment",
                hint,
            )

    def _environment(self, env: EnvironmentModel, at: NodePath) -> Environment:
        req = env.requires
        approvals = None
        if req.approvals is not None:
            approvals = Approvals(req.approvals.count, tuple(req.approvals.roles))
        freezes = tuple(
            self._freeze(freeze, (*at, "requires", "freeze", i))
            for i, freeze in enumerate(req.freeze)
        )
        return Environment(
            name=env.name,
            location=self.positions.key(at),
            auto=env.auto,
            instances=env.instances,
            strategy=env.strategy,
            change_record=env.change_record,
            requires=Requirements(
                after=req.after,
                soak_s=req.soak,
                approvals=approvals,
                windows=tuple(parse_window(text) for text in req.window),
                freezes=freezes,
                policies=tuple(req.policies),
                signed=req.signed,
            ),
        )

    def _freeze(self, freeze: FreezeModel, at: NodePath) -> Freeze:
        start, end = _instant(freeze.start), _instant(freeze.until)
        if end <= start:
            self._add(
                (*at, "until"),
                "a freeze must end after it starts",
                f"it starts {start.isoformat()}; write a later 'until'",
            )
        return Freeze(start, end, freeze.reason)

    def _add(self, path: NodePath, message: str, hint: str | None) -> None:
        self.issues.append(SpecIssue(self.positions.value(path), message, hint))


def _instant(value: datetime.datetime | datetime.date) -> datetime.datetime:
    """A date is its midnight in UTC; a time without a zone is UTC."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return datetime.datetime.combine(value, datetime.time(), tzinfo=datetime.UTC)
