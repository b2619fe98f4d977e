"""The rolling strategy under any order of observations, health changes, crashes and aborts.

A controller pass is decide -> perform -> save; the machine also loses the
save (a crash after performing) or the performing (a crash after saving),
and kills instances behind the controller's back. Whatever happens:

- the same status and observation always give the same decision;
- a previous instance is only ever asked to stop when every new one is healthy;
- no more new instances run than the spec asks for;
- a settled rollback leaves no new instance running, a success leaves some serving;
- with time passing and passes repeated, the Deployment settles.
"""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conveyor.core.records import RunId
from conveyor.release.model import Release
from conveyor.rollout.model import Decision, Observed, RollingSpec, StopInstance
from conveyor.rollout.rolling import decide
from conveyor.rollout.status import DeploymentStatus, request_abort
from conveyor.targets.base import HealthCheck, HealthResult, Instance, Placement
from conveyor.targets.driver import Workload, observe, perform
from conveyor.targets.fake import FakeTarget

T0 = 1_767_225_600.0
PLACEMENT = Placement("payments-api", "prod")
SPEC = RollingSpec(3, "payments-api", "prod", "2.0.0", instances=2, within_s=30.0)
NEW = (SPEC.instance_id(1), SPEC.instance_id(2))
OLD = ("payments-api.prod.2.1", "payments-api.prod.2.2")


def release(version: str) -> Release:
    return Release(
        project="shop",
        service="payments-api",
        version=version,
        commit_sha=None,
        run_id=RunId(1),
        config_digest="sha256:" + "c" * 64,
        config="{}",
        artifacts=(),
        created_at=T0,
        created_by="ci",
        id=1,  # type: ignore[arg-type]
    )


WORKLOAD = Workload(PLACEMENT, "serve", HealthCheck(), {"2.0.0": release("2.0.0")})


class RollingDeployment(RuleBasedStateMachine):
    """One Deployment of 2.0.0 replacing two instances of 1.0.0, driven through a fake target."""

    def __init__(self) -> None:
        super().__init__()
        self.healthy: set[str] = set()
        self.target = FakeTarget(self._health)
        for instance_id in OLD:
            self.target.run(instance_id, PLACEMENT, "1.0.0")
        self.now = T0
        self.status = DeploymentStatus(SPEC.deployment, SPEC.version)
        self.observed = observe(self.target, WORKLOAD)

    def _health(self, instance: Instance, _check: int) -> HealthResult:
        if instance.id in self.healthy:
            return HealthResult("healthy")
        return HealthResult("unhealthy", "HTTP 503")

    def _decide(self) -> Decision:
        decision = decide(SPEC, self.status, self.observed, self.now)
        assert decide(SPEC, self.status, self.observed, self.now) == decision
        stopping_previous = any(
            isinstance(a, StopInstance) and a.instance in OLD for a in decision.actions
        )
        if stopping_previous:
            assert all(n.state == "healthy" for n in decision.status.new)
        return decision

    @rule()
    def a_pass_completes(self) -> None:
        decision = self._decide()
        self.observed = perform(decision.actions, self.target, WORKLOAD)
        self.status = decision.status

    @rule()
    def the_controller_dies_after_performing_before_saving(self) -> None:
        perform(self._decide().actions, self.target, WORKLOAD)
        self.observed = observe(self.target, WORKLOAD)

    @rule()
    def the_controller_dies_after_saving_before_performing(self) -> None:
        self.status = self._decide().status
        self.observed = observe(self.target, WORKLOAD)

    @rule(index=st.sampled_from([0, 1]))
    def a_new_instance_becomes_healthy(self, index: int) -> None:
        self.healthy.add(NEW[index])

    @rule(index=st.sampled_from([0, 1]))
    def a_new_instance_turns_unhealthy(self, index: int) -> None:
        self.healthy.discard(NEW[index])

    @rule(instance_id=st.sampled_from(NEW + OLD))
    def an_instance_dies(self, instance_id: str) -> None:
        self.target.crash(instance_id)

    @rule(seconds=st.floats(min_value=0, max_value=20))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def someone_asks_to_abort(self) -> None:
        self.status = request_abort(self.status, by="ada", now=self.now)

    @invariant()
    def no_more_new_instances_run_than_asked_for(self) -> None:
        running = [i for i in self.target.running.values() if i.version == SPEC.version]
        assert len(running) <= SPEC.instances

    @invariant()
    def a_settled_deployment_left_what_its_phase_says(self) -> None:
        if not self.status.settled:
            return
        if self.status.rolling_back:
            assert not set(NEW) & set(self.target.running)
        else:
            assert all(n.state == "healthy" for n in self.status.new)
            assert all(p.gone for p in self.status.previous)

    def teardown(self) -> None:
        for _ in range(10):
            self.now += SPEC.within_s + 1
            self.a_pass_completes()
        assert self.status.settled, self.status
        event(f"ended {self.status.phase}")


TestRollingDeployment = RollingDeployment.TestCase
TestRollingDeployment.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


def test_the_machine_starts_from_what_runs() -> None:
    machine = RollingDeployment()

    assert [i.id for i in machine.observed.instances] == list(OLD)
    assert machine.observed == Observed(machine.observed.instances)
