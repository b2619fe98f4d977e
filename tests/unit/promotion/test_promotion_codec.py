"""A Promotion's basis and Gate reports survive the store's JSON unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from conveyor.core.errors import Location
from conveyor.policy.model import Rule
from conveyor.promotion.codec import (
    basis_from_json,
    basis_json,
    report_from_json,
    report_json,
)
from conveyor.promotion.model import Basis, GateReport, GateResult
from conveyor.spec.delivery import Approvals, Freeze, Requirements
from conveyor.spec.windows import parse_window

REQUIREMENTS = Requirements(
    after="staging",
    soak_s=600.0,
    approvals=Approvals(2, ("approver", "release-manager")),
    windows=(parse_window("Mon-Thu 08:00-17:00 Europe/Berlin"),),
    freezes=(
        Freeze(
            datetime(2026, 12, 20, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC), "year-end freeze"
        ),
    ),
    policies=("no-friday-prod",),
    signed=False,
)
RULE = Rule(
    "no-friday-prod",
    "deny",
    "time.weekday == 'Fri'",
    "not on Fridays",
    Location("policies/release.yaml", 4, 5),
    description="Fridays are for fixing",
    when="environment.name == 'prod'",
    zone="Europe/Berlin",
)


def round_trip(doc: object) -> object:
    return json.loads(json.dumps(doc))


def test_a_basis_reads_back_equal() -> None:
    basis = Basis(REQUIREMENTS, (RULE,), ("developer",))

    assert basis_from_json(round_trip(basis_json(basis))) == basis
    assert basis_from_json(round_trip(basis_json(Basis(Requirements())))) == Basis(Requirements())


def test_a_report_reads_back_equal() -> None:
    report = GateReport(
        1_767_225_600.5,
        (
            GateResult("after", "passed", "fine"),
            GateResult("window", "waiting", "later", retry_at=1_767_300_000.0),
            GateResult("policies", "blocked", "denied", final=True, notes=("a", "b")),
        ),
    )

    assert report_from_json(round_trip(report_json(report))) == report


@pytest.mark.parametrize(
    "doc",
    [
        {"evaluated_at": 1.0},
        {"evaluated_at": 1.0, "gates": [{"gate": "moon", "outcome": "passed"}]},
        [],
    ],
)
def test_a_damaged_report_is_a_value_error(doc: object) -> None:
    with pytest.raises(ValueError):
        report_from_json(doc)
