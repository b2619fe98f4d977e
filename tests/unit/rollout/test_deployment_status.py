"""The persisted Deployment status: a computed phase, intents, conditions, and JSON round-trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.rollout.status import (
    ABORTED,
    AWAIT_HEALTH,
    COMPLETE,
    FAILED,
    PROGRESSING,
    STOP_PREVIOUS,
    Condition,
    DeploymentStatus,
    InstanceStatus,
    Intents,
    StatusFormatError,
    from_json,
    request_abort,
    to_json,
)

T0 = 1_767_225_600.0


def instance(state: str = "healthy") -> InstanceStatus:
    return InstanceStatus("svc.prod.3.1", "2.0.0", state, T0, port=8001)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        (DeploymentStatus(3, "2.0.0"), "pending"),
        (DeploymentStatus(3, "2.0.0", step=AWAIT_HEALTH), "progressing"),
        (DeploymentStatus(3, "2.0.0", step=STOP_PREVIOUS), "progressing"),
        (DeploymentStatus(3, "2.0.0", step=COMPLETE), "succeeded"),
        (
            DeploymentStatus(
                3, "2.0.0", step=AWAIT_HEALTH, conditions=(Condition(FAILED, "X", "", T0),)
            ),
            "failed",
        ),
        (
            DeploymentStatus(
                3, "2.0.0", conditions=(Condition(ABORTED, "AbortRequested", "", T0),)
            ),
            "rolled_back",
        ),
    ],
)
def test_the_phase_is_computed_from_the_step_and_the_conditions(
    status: DeploymentStatus, phase: str
) -> None:
    assert status.phase == phase


def test_a_failed_deployment_is_settled_only_once_its_new_instances_are_gone() -> None:
    failed = (Condition(FAILED, "InstanceExited", "", T0),)
    stopping = DeploymentStatus(3, "2.0.0", step=1, new=(instance("stopping"),), conditions=failed)
    stopped = DeploymentStatus(3, "2.0.0", step=1, new=(instance("stopped"),), conditions=failed)

    assert not stopping.settled
    assert stopped.settled


def test_the_first_abort_request_wins() -> None:
    first = request_abort(DeploymentStatus(3, "2.0.0"), by="ada", now=T0)

    second = request_abort(first, by="bob", now=T0 + 5)

    assert second.intents == Intents(abort_requested_at=T0, abort_requested_by="ada")


def test_a_condition_set_again_with_the_same_reason_keeps_the_time_it_became_true() -> None:
    status = DeploymentStatus(3, "2.0.0").with_condition(Condition(PROGRESSING, "A", "one", T0))

    same = status.with_condition(Condition(PROGRESSING, "A", "two", T0 + 9))
    other = status.with_condition(Condition(PROGRESSING, "B", "three", T0 + 9))

    assert same.conditions == (Condition(PROGRESSING, "A", "two", T0),)
    assert other.conditions == (Condition(PROGRESSING, "B", "three", T0 + 9),)


times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
names = st.text(st.characters(codec="utf-8"), max_size=12)
instances = st.builds(
    InstanceStatus,
    id=names,
    version=names,
    state=st.sampled_from(["starting", "unhealthy", "healthy", "exited", "serving", "stopped"]),
    since=times,
    port=st.none() | st.integers(1, 65535),
    requested_at=st.none() | times,
    detail=names,
)
statuses = st.builds(
    DeploymentStatus,
    deployment=st.integers(1, 10**9),
    version=names,
    step=st.integers(0, COMPLETE),
    new=st.lists(instances, max_size=3).map(tuple),
    previous=st.lists(instances, max_size=3).map(tuple),
    intents=st.builds(Intents, st.none() | times, st.none() | names),
    conditions=st.lists(st.builds(Condition, names, names, names, times), max_size=3).map(tuple),
)


@given(statuses)
def test_a_status_reads_back_equal_after_a_trip_through_json_text(
    status: DeploymentStatus,
) -> None:
    assert from_json(json.loads(json.dumps(to_json(status)))) == status


def test_a_status_of_another_format_is_refused() -> None:
    data = to_json(DeploymentStatus(3, "2.0.0")) | {"format": 99}

    with pytest.raises(StatusFormatError, match="format 99"):
        from_json(data)


def test_a_status_missing_a_field_or_with_a_wrong_type_is_refused() -> None:
    data = to_json(DeploymentStatus(3, "2.0.0", new=(instance(),)))
    del data["step"]
    with pytest.raises(StatusFormatError, match="no field 'step'"):
        from_json(data)

    wrong = to_json(DeploymentStatus(3, "2.0.0")) | {"deployment": "3"}
    with pytest.raises(StatusFormatError, match="expected an integer"):
        from_json(wrong)
