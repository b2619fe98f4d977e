"""A Promotion's basis and Gate reports as JSON values, for the store and for `--json` (pure).

Only values this module wrote are read back, so reading trusts their shape;
a damaged document raises ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from conveyor.core.errors import Location
from conveyor.policy.model import Effect, Rule
from conveyor.promotion.model import (
    GATES,
    Basis,
    GateOutcome,
    GateReport,
    GateResult,
)
from conveyor.spec.delivery import Approvals, Freeze, Requirements
from conveyor.spec.windows import parse_window

Json = dict[str, object]


def requirements_json(req: Requirements) -> Json:
    """The requirements as written in conveyor.yaml (durations in seconds, instants in UTC)."""
    return {
        "after": req.after,
        "soak_s": req.soak_s,
        "approvals": None
        if req.approvals is None
        else {"count": req.approvals.count, "roles": list(req.approvals.roles)},
        "windows": [window.text for window in req.windows],
        "freezes": [
            {"from": f.start.isoformat(), "until": f.end.isoformat(), "reason": f.reason}
            for f in req.freezes
        ],
        "policies": list(req.policies),
        "signed": req.signed,
    }


def _requirements(doc: Mapping[str, object]) -> Requirements:
    approvals = cast(Mapping[str, object] | None, doc["approvals"])
    soak = doc["soak_s"]
    return Requirements(
        after=None if doc["after"] is None else str(doc["after"]),
        soak_s=None if soak is None else float(cast(float, soak)),
        approvals=None
        if approvals is None
        else Approvals(
            int(cast(int, approvals["count"])), tuple(cast(list[str], approvals["roles"]))
        ),
        windows=tuple(parse_window(text) for text in cast(list[str], doc["windows"])),
        freezes=tuple(
            Freeze(
                datetime.fromisoformat(str(f["from"])),
                datetime.fromisoformat(str(f["until"])),
                str(f["reason"]),
            )
            for f in cast(list[Mapping[str, object]], doc["freezes"])
        ),
        policies=tuple(cast(list[str], doc["policies"])),
        signed=bool(doc["signed"]),
    )


def _rule_json(rule: Rule) -> Json:
    where = rule.location
    return {
        "name": rule.name,
        "effect": rule.effect,
        "expression": rule.expression,
        "message": rule.message,
        "location": [where.file, where.line, where.column],
        "description": rule.description,
        "when": rule.when,
        "zone": rule.zone,
    }


def _rule(doc: Mapping[str, object]) -> Rule:
    file, line, column = cast(list[object], doc["location"])
    effect = str(doc["effect"])
    if effect not in ("warn", "deny"):
        raise ValueError(f"a rule whose effect is {effect!r}")
    return Rule(
        name=str(doc["name"]),
        effect=cast(Effect, effect),
        expression=str(doc["expression"]),
        message=str(doc["message"]),
        location=Location(str(file), int(cast(int, line)), int(cast(int, column))),
        description=str(doc["description"]),
        when=None if doc["when"] is None else str(doc["when"]),
        zone=str(doc["zone"]),
    )


def basis_json(basis: Basis) -> Json:
    return {
        "requirements": requirements_json(basis.requirements),
        "rules": [_rule_json(rule) for rule in basis.rules],
        "requester_roles": list(basis.requester_roles),
    }


def basis_from_json(doc: object) -> Basis:
    """The Basis `basis_json` wrote; ValueError when `doc` is not one."""
    try:
        data = cast(Mapping[str, object], doc)
        return Basis(
            requirements=_requirements(cast(Mapping[str, object], data["requirements"])),
            rules=tuple(_rule(r) for r in cast(list[Mapping[str, object]], data["rules"])),
            requester_roles=tuple(cast(list[str], data["requester_roles"])),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a stored promotion basis: {exc}") from exc


def gate_json(gate: GateResult) -> Json:
    return {
        "gate": gate.gate,
        "outcome": gate.outcome,
        "reason": gate.reason,
        "retry_at": gate.retry_at,
        "final": gate.final,
        "notes": list(gate.notes),
        "waivers": list(gate.waivers),
    }


def report_json(report: GateReport) -> Json:
    return {
        "evaluated_at": report.evaluated_at,
        "state": report.state,
        "gates": [gate_json(gate) for gate in report.gates],
    }


def _gate(doc: Mapping[str, object]) -> GateResult:
    name, outcome = str(doc["gate"]), str(doc["outcome"])
    if name not in GATES or outcome not in ("passed", "waiting", "blocked"):
        raise ValueError(f"an unknown gate {name!r} or outcome {outcome!r}")
    retry_at = doc["retry_at"]
    return GateResult(
        gate=name,
        outcome=cast(GateOutcome, outcome),
        reason=str(doc["reason"]),
        retry_at=None if retry_at is None else float(cast(float, retry_at)),
        final=bool(doc["final"]),
        notes=tuple(cast(list[str], doc["notes"])),
        # Reports recorded before waivers existed have no `waivers`.
        waivers=tuple(int(w) for w in cast(list[int], doc.get("waivers", []))),
    )


def report_from_json(doc: object) -> GateReport:
    """The GateReport `report_json` wrote; ValueError when `doc` is not one."""
    try:
        data = cast(Mapping[str, object], doc)
        gates = tuple(_gate(g) for g in cast(list[Mapping[str, object]], data["gates"]))
        return GateReport(float(cast(float, data["evaluated_at"])), gates)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a stored gate report: {exc}") from exc
