"""The Promotion service with change records observing it, on a released service."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from conveyor.engine.change_records import ChangeRecords
from conveyor.engine.promotion_facts import ContentCheck
from conveyor.engine.promotions import PromotionService, RecordAsDeployed
from conveyor.promotion.model import Promotion
from conveyor.store import events as event_log

from .harness import Harness, parse
from .promotion_world import REQUESTER, SPEC, World, make_world

KEEPS_RECORDS = "    - name: prod\n      change_record: true\n"


@dataclass
class Desk:
    """The Promotion service with change records observing it, and what it warned about."""

    world: World
    records: ChangeRecords
    service: PromotionService
    warnings: list[str] = field(default_factory=list)

    def to_prod(self) -> Promotion:
        return self.service.promote(self.world.pipeline, "payments-api", "0.1.0", "prod", REQUESTER)

    def kinds(self, promotion: Promotion) -> list[str]:
        return [e.kind for e in event_log.for_subject(self.world.runs.db, promotion.subject)]

    def event(self, promotion: Promotion, kind: str) -> dict[str, object]:
        found = event_log.for_subject(self.world.runs.db, promotion.subject)
        return dict(next(e for e in found if e.kind == kind).data)

    def whole_log(self) -> str:
        return "\n".join(
            f"{e.subject} {e.actor} {e.data_json}" for e in event_log.iter_all(self.world.runs.db)
        )


def desk(harness: Harness, environ: dict[str, str] | None = None, **options: object) -> Desk:
    world = make_world(harness, **options)  # type: ignore[arg-type]
    spec = SPEC.format(content="v1", count=1, extra=options.get("extra", ""))
    world = replace(world, pipeline=parse(spec.replace("    - name: prod\n", KEEPS_RECORDS)))
    warnings: list[str] = []
    records = ChangeRecords(
        db=world.runs.db,
        releases=world.releases,
        clock=world.clock,
        environ=environ or {},
        warn=warnings.append,
        timeout_s=0.5,
    )
    service = PromotionService(
        harness.workspace,
        db=world.runs.db,
        releases=world.releases,
        artifacts=ContentCheck(world.runs.cas),
        clock=world.clock,
        deployer=RecordAsDeployed(world.runs.db, world.clock, "conveyor"),
        observers=(records,),
    )
    return Desk(world, records, service, warnings)
