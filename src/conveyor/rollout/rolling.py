"""The rolling strategy as a pure state machine: `decide(spec, status, observed, now)`.

One call is one pass of a controller: it reads the persisted status and a
fresh observation of the target, and returns the next status, the actions
to perform and the events to record. It does no I/O and reads no clock;
`now` is the time of the pass, and timers are timestamps compared with it.

Steps (`status.step`):

0. start-new (phase pending): the instances running in the environment are
   adopted as the previous release's; the start of `spec.instances` new ones
   is asked for, and their health checked.
1. await-health: each new instance is followed: its port once it runs, its
   health when checked. When all are healthy, go to stop-previous. When one
   exits, or is not healthy `spec.within_s` after its start was first asked
   for, the Deployment fails (condition `Failed`, with a reason).
2. stop-previous: every previous instance is asked to stop until none runs.
3. complete (phase succeeded).

On failure, and on an abort intent, every new instance is stopped and the
previous ones are left alone, so the previous release keeps serving; the
phase is `failed` or `rolled_back`. An abort is honoured only before the
previous instances are asked to stop: after that it is too late, and it is
ignored with a condition and an event (roll back with a new Deployment).

Actions carry idempotency keys and are asked for again on every pass until
the observation shows their effect, so a pass that is repeated, or whose
actions were lost in a crash, converges to the same place.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.core.values import replace
from conveyor.rollout.model import (
    Action,
    CheckHealth,
    Decision,
    Observed,
    ObservedInstance,
    RollingSpec,
    RolloutEvent,
    StartInstance,
    StopInstance,
)
from conveyor.rollout.status import (
    ABORT_IGNORED,
    ABORTED,
    AWAIT_HEALTH,
    COMPLETE,
    FAILED,
    PROGRESSING,
    START,
    STOP_PREVIOUS,
    Condition,
    DeploymentStatus,
    InstanceStatus,
)


def decide(spec: RollingSpec, status: DeploymentStatus, observed: Observed, now: float) -> Decision:
    """One pass of the rolling strategy; see the module's docstring."""
    if status.settled:
        return Decision(status)
    status, events = _interpret_intents(status, now)
    if status.rolling_back:
        decision = _roll_back(spec, status, observed, now)
    elif status.step == START:
        decision = _start(spec, status, observed, now)
    elif status.step == AWAIT_HEALTH:
        decision = _await_health(spec, status, observed, now)
    else:
        decision = _stop_previous(spec, status, observed, now)
    return _prefixed(events, decision)


def _interpret_intents(
    status: DeploymentStatus, now: float
) -> tuple[DeploymentStatus, tuple[RolloutEvent, ...]]:
    intents = status.intents
    if intents.abort_requested_at is None or status.rolling_back:
        return status, ()
    by = intents.abort_requested_by or "someone"
    if status.step <= AWAIT_HEALTH:
        aborted = Condition(ABORTED, "AbortRequested", f"abort requested by {by}", now)
        return status.with_condition(aborted), (RolloutEvent("deployment.aborted", {"by": by}),)
    if status.condition(ABORT_IGNORED) is not None:
        return status, ()
    message = (
        "the previous release's instances are already being stopped;"
        " roll back with a new deployment"
    )
    ignored = Condition(ABORT_IGNORED, "TooLate", message, now)
    event = RolloutEvent("deployment.abort_ignored", {"by": by, "reason": message})
    return status.with_condition(ignored), (event,)


def _start(spec: RollingSpec, status: DeploymentStatus, observed: Observed, now: float) -> Decision:
    ids = [spec.instance_id(ordinal) for ordinal in range(1, spec.instances + 1)]
    previous = tuple(
        InstanceStatus(seen.id, seen.version, "serving", now, port=seen.port)
        for seen in observed.instances
        if seen.id not in ids and seen.health != "exited"
    )
    new = tuple(InstanceStatus(i, spec.version, "starting", now, requested_at=now) for i in ids)
    progressing = Condition(
        PROGRESSING, "AwaitingHealth", f"starting {len(new)} instance(s) of {spec.version}", now
    )
    status = replace(status, step=AWAIT_HEALTH, new=new, previous=previous)
    started = RolloutEvent(
        "deployment.started",
        {
            "version": spec.version,
            "instances": tuple(ids),
            "previous": tuple(p.id for p in previous),
        },
    )
    actions: list[Action] = [StartInstance(spec.key("start", i), i, spec.version) for i in ids]
    actions += [CheckHealth(spec.key("check", i), i) for i in ids]
    return Decision(status.with_condition(progressing), tuple(actions), (started,))


def _await_health(
    spec: RollingSpec, status: DeploymentStatus, observed: Observed, now: float
) -> Decision:
    followed = [_follow(spec, i, observed.get(i.id), now) for i in status.new]
    status = replace(status, new=tuple(instance for instance, _, _ in followed))
    events = tuple(event for _, found, _ in followed for event in found)
    failure = _failure(spec, status.new, now)
    if failure is not None:
        status = status.with_condition(failure)
        failed = RolloutEvent(
            "deployment.failed", {"reason": failure.reason, "message": failure.message}
        )
        return _prefixed((*events, failed), _roll_back(spec, status, observed, now))
    if all(instance.state == "healthy" for instance in status.new):
        stopping = Condition(PROGRESSING, "StoppingPrevious", "every new instance is healthy", now)
        status = replace(status, step=STOP_PREVIOUS).with_condition(stopping)
        step = RolloutEvent("deployment.step", {"step": STOP_PREVIOUS, "name": "stop-previous"})
        return _prefixed((*events, step), _stop_previous(spec, status, observed, now))
    actions = tuple(action for _, _, wanted in followed for action in wanted)
    return Decision(status, actions, events)


def _follow(
    spec: RollingSpec, instance: InstanceStatus, seen: ObservedInstance | None, now: float
) -> tuple[InstanceStatus, tuple[RolloutEvent, ...], tuple[Action, ...]]:
    """What the observation says about one new instance, and what it still needs."""
    if instance.state == "exited":
        return instance, (), ()
    if seen is None and instance.port is None:
        # Never seen running: its start may have been lost in a crash; ask again.
        start = StartInstance(spec.key("start", instance.id), instance.id, spec.version)
        return instance, (), (start,)
    if seen is None or seen.health == "exited":
        detail = seen.detail if seen is not None and seen.detail else "it is no longer running"
        exited = replace(instance, state="exited", since=now, detail=detail)
        return exited, (_instance_event("instance.exited", exited, detail=detail),), ()
    events: list[RolloutEvent] = []
    if instance.port is None:
        instance = replace(instance, port=seen.port)
        events.append(_instance_event("instance.started", instance, port=seen.port))
    if seen.health == "healthy" and instance.state != "healthy":
        instance = replace(instance, state="healthy", since=now, detail="")
        events.append(_instance_event("instance.healthy", instance))
    elif seen.health == "unhealthy":
        since = instance.since if instance.state == "unhealthy" else now
        instance = replace(instance, state="unhealthy", since=since, detail=seen.detail)
    if instance.state == "healthy":
        return instance, tuple(events), ()
    return instance, tuple(events), (CheckHealth(spec.key("check", instance.id), instance.id),)


def _failure(spec: RollingSpec, new: Iterable[InstanceStatus], now: float) -> Condition | None:
    """The first reason the new instances cannot all become healthy in time, if any."""
    for instance in new:
        if instance.state == "exited":
            message = f"instance {instance.id} exited before it was healthy: {instance.detail}"
            return Condition(FAILED, "InstanceExited", message, now)
        asked = instance.since if instance.requested_at is None else instance.requested_at
        deadline = asked + spec.within_s
        if instance.state != "healthy" and now >= deadline:
            if instance.port is None:
                message = f"instance {instance.id} did not start within {spec.within_s:g}s"
                return Condition(FAILED, "StartTimeout", message, now)
            message = (
                f"instance {instance.id} was not healthy within {spec.within_s:g}s: "
                f"{instance.detail or 'no answer'}"
            )
            return Condition(FAILED, "HealthTimeout", message, now)
    return None


def _stop_previous(
    spec: RollingSpec, status: DeploymentStatus, observed: Observed, now: float
) -> Decision:
    previous, events, actions = _stop_all(spec, status.previous, observed, now)
    status = replace(status, previous=previous)
    if actions:
        return Decision(status, actions, events)
    done = Condition(PROGRESSING, "Completed", f"{spec.version} serves alone", now)
    status = replace(status, step=COMPLETE).with_condition(done)
    finished = RolloutEvent("deployment.finished", {"phase": status.phase})
    return Decision(status, (), (*events, finished))


def _roll_back(
    spec: RollingSpec, status: DeploymentStatus, observed: Observed, now: float
) -> Decision:
    # A pass that started instances may have been lost before its status was
    # saved: stop whatever runs under this Deployment's ids, known or not.
    known = status.new or tuple(
        InstanceStatus(spec.instance_id(n), spec.version, "starting", now)
        for n in range(1, spec.instances + 1)
    )
    new, events, actions = _stop_all(spec, known, observed, now)
    status = replace(status, new=new)
    if actions:
        return Decision(status, actions, events)
    message = "the new instances are stopped"
    if status.previous:
        message += "; the previous release serves"
    status = status.with_condition(Condition(PROGRESSING, "RolledBack", message, now))
    finished = RolloutEvent("deployment.finished", {"phase": status.phase})
    return Decision(status, (), (*events, finished))


def _stop_all(
    spec: RollingSpec, instances: tuple[InstanceStatus, ...], observed: Observed, now: float
) -> tuple[tuple[InstanceStatus, ...], tuple[RolloutEvent, ...], tuple[Action, ...]]:
    """Ask every instance still running to stop; mark those no longer running as stopped."""
    out: list[InstanceStatus] = []
    events: list[RolloutEvent] = []
    actions: list[Action] = []
    for instance in instances:
        if instance.gone:
            out.append(instance)
        elif observed.get(instance.id) is None:
            stopped = replace(instance, state="stopped", since=now)
            out.append(stopped)
            if instance.port is not None:  # one never seen running has no stop to record
                events.append(_instance_event("instance.stopped", stopped))
        else:
            stopping = instance
            if instance.state != "stopping":
                stopping = replace(instance, state="stopping", since=now)
            out.append(stopping)
            actions.append(StopInstance(spec.key("stop", instance.id), instance.id))
    return tuple(out), tuple(events), tuple(actions)


def _instance_event(kind: str, instance: InstanceStatus, **extra: str | int | None) -> RolloutEvent:
    return RolloutEvent(kind, {"instance": instance.id, "version": instance.version, **extra})


def _prefixed(events: tuple[RolloutEvent, ...], decision: Decision) -> Decision:
    if not events:
        return decision
    return replace(decision, events=(*events, *decision.events))
