"""The decision input: read from plain values with neutral defaults, written back, documented."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.policy.decision_input import (
    EPOCH,
    WEEKDAYS,
    Approval,
    Artifact,
    DecisionInput,
    EnvironmentFacts,
    PastDeployment,
    ReleaseChange,
    ReleaseFacts,
    ReleaseTests,
    Requester,
    time_facts,
)
from conveyor.policy.reading import InputError, InputProblem, read_input, to_plain
from conveyor.policy.schema import json_schema, markdown_table

DOCS = Path(__file__).resolve().parents[3] / "docs"


def problems(data: dict[str, object]) -> list[InputProblem]:
    with pytest.raises(InputError) as caught:
        read_input(data)
    return caught.value.problems


def only(data: dict[str, object]) -> InputProblem:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


def test_an_empty_input_is_neutral() -> None:
    facts = read_input({})
    assert facts == DecisionInput()
    assert facts.release.tests.failed == 0
    assert facts.environment.previous is None
    assert facts.time == EPOCH
    assert (facts.time.weekday, facts.time.hour, facts.time.zone) == ("Thu", 0, "UTC")


def test_a_partial_input_keeps_the_defaults_of_what_it_leaves_out() -> None:
    facts = read_input({"release": {"tests": {"failed": 2}}, "environment": {"name": "prod"}})
    assert facts.release.tests == ReleaseTests(failed=2)
    assert facts.release.version == ""
    assert facts.environment == EnvironmentFacts("prod", None)


def test_time_follows_from_the_instant_and_its_zone() -> None:
    facts = read_input({"time": {"iso": "2026-11-27T13:00:00+01:00", "zone": "Europe/Berlin"}})
    assert facts.time.iso == "2026-11-27T13:00:00+01:00"
    assert (facts.time.weekday, facts.time.hour, facts.time.minute) == ("Fri", 13, 0)
    assert facts.time.date == "2026-11-27"


def test_time_is_described_in_utc_unless_a_zone_is_given() -> None:
    facts = read_input({"time": {"iso": "2026-11-27T00:30:00+01:00"}})
    assert (facts.time.weekday, facts.time.hour, facts.time.date) == ("Thu", 23, "2026-11-26")


def test_derived_time_fields_that_disagree_with_the_instant_are_refused() -> None:
    problem = only({"time": {"iso": "2026-11-27T13:00:00Z", "weekday": "Mon"}})
    assert problem.path == ("time", "weekday")
    assert problem.message == "time.weekday is 'Mon', but time.iso gives 'Fri' in UTC"


def test_time_without_an_instant_says_what_to_write() -> None:
    problem = only({"time": {"hour": 13}})
    assert problem.message == "time needs 'iso'"


def test_an_instant_without_an_offset_is_refused() -> None:
    problem = only({"time": {"iso": "2026-11-27T13:00:00"}})
    assert problem.path == ("time", "iso")
    assert problem.hint == "like 2026-11-27T13:00:00+01:00, with an offset or Z"


def test_a_timestamp_read_by_yaml_is_taken_as_an_instant() -> None:
    instant = datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC)
    facts = read_input({"approvals": [{"by": "a", "role": "approver", "at": instant}]})
    assert facts.approvals == (Approval("a", "approver", "2026-11-27T12:00:00+00:00"),)


def test_an_unknown_field_is_reported_on_its_key_with_a_suggestion() -> None:
    problem = only({"release": {"tests": {"faild": 1}}})
    assert (problem.path, problem.on_key) == (("release", "tests", "faild"), True)
    assert problem.message == "release.tests has no field 'faild'"
    assert problem.hint == "did you mean 'failed'?"


def test_an_unknown_top_level_field_is_reported() -> None:
    problem = only({"envronment": {"name": "prod"}})
    assert problem.message == "the input has no field 'envronment'"
    assert problem.hint == "did you mean 'environment'?"


def test_every_value_that_does_not_fit_is_reported_at_once() -> None:
    found = problems(
        {
            "release": {"tests": {"failed": -1, "passed": True}, "artifacts": {"path": "x"}},
            "requester": {"roles": "admin"},
            "previous_deployments": [{"outcome": "rolledback"}],
            "version": 2,
        }
    )
    assert [(p.path, p.hint) for p in found] == [
        (("version",), "write 1"),
        (("release", "tests", "failed"), None),
        (("release", "tests", "passed"), None),
        (("release", "artifacts"), None),
        (("requester", "roles"), None),
        (("previous_deployments", 0, "outcome"), "did you mean 'rolled_back'?"),
    ]


def test_a_number_where_text_belongs_suggests_quotes() -> None:
    problem = only({"release": {"version": 1.2}})
    assert problem.message == "release.version must be text, found the number 1.2"
    assert problem.hint == "put it in quotes to make it text"


def test_an_unknown_zone_is_refused_with_a_suggestion() -> None:
    problem = only({"time": {"iso": "2026-11-27T13:00:00Z", "zone": "europe/berlin"}})
    assert problem.hint == "did you mean 'Europe/Berlin'?"


def test_the_plain_form_carries_the_format_version_first() -> None:
    plain = to_plain(read_input({"requester": {"roles": ["admin"]}}))
    assert next(iter(plain)) == "version"
    assert plain["version"] == 1
    assert plain["requester"] == {"name": "", "roles": ["admin"]}


def test_the_docs_show_the_table_of_the_input_as_the_classes_define_it() -> None:
    assert markdown_table() in (DOCS / "policy.md").read_text()


def test_the_published_json_schema_is_the_one_the_classes_define() -> None:
    published = json.loads((DOCS / "policy-input.schema.json").read_text())
    assert published == json_schema()
    jsonschema.Draft202012Validator.check_schema(published)


TEXT = st.text(max_size=8)
COUNT = st.integers(min_value=0, max_value=10**6)
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
INSTANTS = st.datetimes(
    min_value=datetime.datetime(1971, 1, 1),
    max_value=datetime.datetime(2100, 1, 1),
    timezones=st.just(datetime.UTC),
).map(lambda instant: instant.replace(microsecond=0))
RFC3339 = INSTANTS.map(lambda instant: instant.isoformat())
INPUTS = st.builds(
    DecisionInput,
    release=st.builds(
        ReleaseFacts,
        service=TEXT,
        version=TEXT,
        commit=TEXT,
        artifacts=st.lists(st.builds(Artifact, path=TEXT, digest=TEXT), max_size=2).map(tuple),
        tests=st.builds(ReleaseTests, passed=COUNT, failed=COUNT, skipped=COUNT),
        change=st.builds(
            ReleaseChange, files=COUNT, lines_added=COUNT, lines_removed=COUNT, commits=COUNT
        ),
    ),
    environment=st.builds(EnvironmentFacts, name=TEXT, previous=st.none() | TEXT),
    requester=st.builds(Requester, name=TEXT, roles=st.lists(TEXT, max_size=3).map(tuple)),
    approvals=st.lists(st.builds(Approval, by=TEXT, role=TEXT, at=RFC3339), max_size=2).map(tuple),
    time=st.builds(time_facts, INSTANTS, ZONES),
    previous_deployments=st.lists(
        st.builds(
            PastDeployment,
            environment=TEXT,
            version=TEXT,
            outcome=st.sampled_from(["succeeded", "failed", "rolled_back"]),
            at=RFC3339,
        ),
        max_size=2,
    ).map(tuple),
)


@given(INPUTS)
def test_any_input_survives_a_round_trip_through_its_plain_form(facts: DecisionInput) -> None:
    plain = json.loads(json.dumps(to_plain(facts)))
    jsonschema.validate(plain, json_schema())
    assert read_input(plain) == facts


@given(INSTANTS, ZONES)
def test_time_facts_agree_with_the_local_clock(instant: datetime.datetime, zone: str) -> None:
    facts = time_facts(instant, zone)
    local = instant.astimezone(ZoneInfo(zone))
    assert facts.weekday == WEEKDAYS[local.weekday()]
    assert (facts.hour, facts.minute, facts.date) == (local.hour, local.minute, str(local.date()))
    assert facts.instant == instant
    assert facts.in_zone("UTC").in_zone(zone) == facts
