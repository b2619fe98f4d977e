"""The `delivery:` section: environments, gates, windows and freezes, each error located."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime

import pytest

from conveyor.core.errors import SpecError
from conveyor.spec import serialize
from conveyor.spec.delivery import ROLES
from conveyor.spec.delivery_model import Role
from conveyor.spec.loader import json_schema, parse_pipeline

HEAD = """\
version: 1
jobs:
  build: {run: make, outputs: [dist/*.whl]}
delivery:
  service: payments-api
  artifacts: [dist/*.whl]
  run: python -m payments.app --port $PORT
"""

GOOD = (
    HEAD
    + """\
  health: {http: /healthz, timeout: 2s, within: 20s}
  environments:
    - name: dev
      auto: true
    - name: staging
      instances: 2
      requires: {after: dev, soak: 10m}
    - name: prod
      change_record: true
      requires:
        after: staging
        approvals: {count: 2, roles: [approver, release-manager]}
        window: ["Mon-Thu 08:00-17:00 Europe/Berlin", "Fri 08:00-12:00 Europe/Berlin"]
        freeze: [{from: 2026-12-20, until: 2027-01-04, reason: year-end freeze}]
        policies: [no-friday-prod, tests-green]
"""
)


def issues(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_pipeline(textwrap.dedent(text))
    return [issue.render() for issue in caught.value.issues]


def only(text: str) -> str:
    found = issues(text)
    assert len(found) == 1, found
    return found[0]


def test_a_full_delivery_section_becomes_ordered_environments_with_their_gates() -> None:
    delivery = parse_pipeline(GOOD).delivery
    assert delivery is not None
    assert delivery.service == "payments-api"
    assert delivery.names == ("dev", "staging", "prod")
    assert delivery.health.within_s == 20.0
    dev, staging, prod = delivery.environments
    assert dev.auto and dev.requires.after is None
    assert (staging.instances, staging.requires.after, staging.requires.soak_s) == (2, "dev", 600.0)
    assert prod.change_record
    assert prod.requires.approvals is not None
    assert prod.requires.approvals.count == 2
    assert [w.text for w in prod.requires.windows] == [
        "Mon-Thu 08:00-17:00 Europe/Berlin",
        "Fri 08:00-12:00 Europe/Berlin",
    ]
    (freeze,) = prod.requires.freezes
    assert freeze.start == datetime(2026, 12, 20, tzinfo=UTC)
    assert freeze.covers(datetime(2026, 12, 24, 12, tzinfo=UTC))
    assert not freeze.covers(datetime(2027, 1, 4, tzinfo=UTC))
    assert prod.requires.policies == ("no-friday-prod", "tests-green")
    assert prod.location.line == 15


def test_a_pipeline_without_delivery_has_none() -> None:
    assert parse_pipeline("version: 1\njobs:\n  a: {run: x}\n").delivery is None


def test_defaults_are_one_rolling_instance_checked_on_healthz_and_approvers_may_approve() -> None:
    delivery = parse_pipeline(
        HEAD + "  environments:\n    - name: prod\n      requires: {approvals: {}}\n"
    ).delivery
    assert delivery is not None
    (prod,) = delivery.environments
    assert (prod.instances, prod.strategy, prod.auto) == (1, "rolling", False)
    assert delivery.health.http == "/healthz"
    assert prod.requires.approvals is not None
    assert prod.requires.approvals.roles == ("approver", "release-manager")
    assert prod.requires.signed


def test_an_after_naming_a_later_or_unknown_environment_is_located_with_a_suggestion() -> None:
    found = issues(
        HEAD
        + """\
  environments:
    - name: dev
    - name: staging
      requires: {after: dve}
    - name: prod
      requires: {after: qa}
"""
    )
    assert found == [
        "conveyor.yaml:11:25: environment 'staging' comes after 'dve', which is not an earlier "
        "environment\n  hint: did you mean 'dev'?",
        "conveyor.yaml:13:25: environment 'prod' comes after 'qa', which is not an earlier "
        "environment\n  hint: the earlier environments are 'dev' or 'staging'",
    ]


def test_the_first_environment_cannot_come_after_another() -> None:
    text = (
        HEAD + "  environments:\n    - name: dev\n      requires: {after: prod}\n    - name: prod\n"
    )
    assert only(text) == (
        "conveyor.yaml:10:25: environment 'dev' comes after 'prod', which is not an earlier "
        "environment\n  hint: the first environment cannot come after another"
    )


def test_an_environment_listed_twice_names_the_first() -> None:
    text = HEAD + "  environments:\n    - name: dev\n    - name: dev\n"
    assert only(text) == (
        "conveyor.yaml:10:13: environment 'dev' is listed twice\n"
        "  hint: the first is environments[0]; rename or remove one"
    )


def test_a_soak_without_after_is_refused() -> None:
    text = HEAD + "  environments:\n    - name: dev\n      requires: {soak: 5m}\n"
    assert "has a soak but no 'after'" in only(text)


def test_a_bad_window_says_the_expected_form() -> None:
    text = HEAD + "  environments:\n    - name: prod\n      requires: {window: 'Mon-Thu 8-17'}\n"
    assert only(text) == (
        "conveyor.yaml:10:26: 'Mon-Thu 8-17' is not a window; write days, hours and a time "
        "zone, like 'Mon-Thu 08:00-17:00 Europe/Berlin'"
    )


def test_an_unknown_time_zone_is_named() -> None:
    text = HEAD + (
        "  environments:\n    - name: prod\n      requires: {window: 'Mon 08:00-17:00 Mars/Base'}\n"
    )
    assert "'Mars/Base' is not a time zone" in only(text)


def test_a_freeze_that_ends_before_it_starts_is_refused() -> None:
    text = HEAD + (
        "  environments:\n    - name: prod\n      requires:\n"
        "        freeze: [{from: 2027-01-04, until: 2026-12-20, reason: x}]\n"
    )
    assert "a freeze must end after it starts" in only(text)


def test_a_freeze_without_a_reason_asks_for_one() -> None:
    text = HEAD + (
        "  environments:\n    - name: prod\n      requires:\n"
        "        freeze: [{from: 2026-12-20, until: 2027-01-04}]\n"
    )
    assert "has no 'reason'" in only(text)


def test_a_misspelled_role_suggests_the_right_one() -> None:
    text = HEAD + (
        "  environments:\n    - name: prod\n      requires: {approvals: {roles: [approvers]}}\n"
    )
    assert only(text).endswith("found the text 'approvers'\n  hint: did you mean 'approver'?")


def test_bad_names_counts_and_paths_are_each_reported_at_once() -> None:
    found = issues(
        """\
version: 1
jobs:
  build: {run: make}
delivery:
  service: Payments API
  artifacts: []
  run: serve
  health: {htp: /healthz}
  environments:
    - name: prod
      instances: 0
      requires: {approvals: {count: 0}}
"""
    )
    assert found == [
        "conveyor.yaml:5:12: 'Payments API' may only use lowercase letters, digits and '-' "
        "(at most 63)\n  hint: try 'payments-api'",
        "conveyor.yaml:6:14: 'delivery.artifacts' is empty; write a glob or a list of globs",
        "conveyor.yaml:8:12: unknown key 'htp' in 'delivery.health'\n  hint: did you mean 'http'?",
        "conveyor.yaml:11:18: 0 instances; write a whole number from 1 to 20",
        "conveyor.yaml:12:37: 0 approvals; write at least 1, or leave out 'approvals'",
    ]


def test_missing_required_delivery_keys_say_what_to_add() -> None:
    found = issues("version: 1\njobs:\n  a: {run: x}\ndelivery:\n  service: api\n")
    assert any("has no 'artifacts'" in f and "dist/*.whl" in f for f in found)
    assert any("has no 'run'" in f and "$PORT" in f for f in found)
    assert any("has no 'environments'" in f for f in found)


def test_a_pipeline_with_delivery_survives_the_parse_cache_round_trip() -> None:
    pipeline = parse_pipeline(GOOD)
    again = serialize.from_dict(json.loads(json.dumps(serialize.to_dict(pipeline))))
    assert again == pipeline


def test_the_json_schema_describes_delivery() -> None:
    schema = json.dumps(json_schema())
    assert "Delivery" in schema
    assert "Environment" in schema
    assert "Mon-Thu 08:00-17:00 Europe/Berlin" in schema


def test_the_roles_of_the_format_are_the_roles_of_the_product() -> None:
    assert tuple(Role.__args__) == ROLES  # type: ignore[attr-defined]
