"""The local target with real processes: start, health, re-adoption, stop, and whole rollouts."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts.cas import ContentStore
from conveyor.release.model import Release, ReleaseArtifact
from conveyor.rollout.model import RollingSpec
from conveyor.rollout.rolling import decide
from conveyor.rollout.status import DeploymentStatus
from conveyor.targets import local, procfs
from conveyor.targets.base import HealthResult, Instance, InstanceSpec
from conveyor.targets.driver import Workload, observe, perform
from conveyor.targets.local import LocalTarget

from .harness import COMMAND, HEALTH, PLACEMENT, MakeRelease, dedent, release_of, wait_until

pytestmark = pytest.mark.timeout(60)

Launch = Callable[[Release, str], InstanceSpec]


def get(instance: Instance, path: str = "/") -> str:
    connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def test_two_instances_answer_their_health_checks_on_ports_of_their_own(
    target: LocalTarget, make_release: MakeRelease, launch: Launch
) -> None:
    v1 = make_release("1.0.0")

    one = target.start(launch(v1, "hello.prod.1.1"))
    two = target.start(launch(v1, "hello.prod.1.2"))

    assert one.port != two.port
    assert wait_until(lambda: target.health(one).healthy and target.health(two).healthy)
    assert get(one) == get(two) == "1.0.0"
    assert [i.id for i in target.list_instances(PLACEMENT)] == ["hello.prod.1.1", "hello.prod.1.2"]


def test_a_restarted_controller_re_adopts_the_running_instances(
    target: LocalTarget,
    target_root: Path,
    cas: ContentStore,
    make_release: MakeRelease,
    launch: Launch,
) -> None:
    v1 = make_release("1.0.0")
    started = [target.start(launch(v1, f"hello.prod.1.{n}")) for n in (1, 2)]

    restarted = LocalTarget(target_root, cas)

    assert restarted.list_instances(PLACEMENT) == started
    assert wait_until(lambda: all(restarted.health(i).healthy for i in started))


def test_starting_an_instance_that_already_runs_returns_it_without_a_second_process(
    target: LocalTarget, make_release: MakeRelease, launch: Launch
) -> None:
    spec = launch(make_release("1.0.0"), "hello.prod.1.1")

    first = target.start(spec)
    again = target.start(spec)

    assert again == first


def test_stopping_an_instance_ends_its_whole_process_group(
    target: LocalTarget, target_root: Path, make_release: MakeRelease, launch: Launch
) -> None:
    instance = target.start(launch(make_release("1.0.0", child=True), "hello.prod.1.1"))
    pgid = json.loads((target_root / instance.id / "instance.json").read_text())["pgid"]
    assert wait_until(lambda: len(procfs.group_members(pgid)) == 2)

    target.stop(instance)

    assert procfs.group_members(pgid) == []
    assert target.list_instances(PLACEMENT) == []
    assert target.health(instance).state == "exited"
    assert not (target_root / instance.id / "release").exists()
    assert "serving 1.0.0" in target.log_path(instance.id).read_text()
    target.stop(instance)  # stopping it again does nothing


def test_an_instance_whose_health_endpoint_answers_500_is_unhealthy(
    target: LocalTarget, make_release: MakeRelease, launch: Launch
) -> None:
    instance = target.start(launch(make_release("1.0.0", health=500), "hello.prod.1.1"))

    assert wait_until(
        lambda: target.health(instance).detail != f"nothing listens on port {instance.port}"
    )
    assert target.health(instance) == HealthResult("unhealthy", "/healthz answered HTTP 500")


def test_an_instance_that_exits_is_seen_as_exited_with_its_last_words_and_dropped(
    target: LocalTarget, target_root: Path, make_release: MakeRelease, launch: Launch
) -> None:
    instance = target.start(launch(make_release("1.0.0", exit_after_s=0.2), "hello.prod.1.1"))

    assert wait_until(lambda: target.health(instance).state == "exited")
    assert target.health(instance).detail == (
        "it is no longer running; its last output: leaving with code 3"
    )
    assert target.list_instances(PLACEMENT) == []
    assert not (target_root / instance.id / "instance.json").exists()


def test_instances_outlive_the_process_that_started_them(
    target: LocalTarget,
    target_root: Path,
    cas: ContentStore,
    make_release: MakeRelease,
    launch: Launch,
) -> None:
    spec = launch(make_release("1.0.0"), "hello.prod.1.1")
    script = dedent(
        """
        import sys
        from pathlib import Path
        from conveyor.artifacts.cas import ContentStore
        from conveyor.targets.base import HealthCheck, InstanceDir, InstanceSpec, Placement
        from conveyor.targets.local import LocalTarget

        root, cas, cwd, site, command = sys.argv[1:]
        directory = InstanceDir("hello.prod.1.1", Path(cwd), (Path(site),))
        spec = InstanceSpec(directory, Placement("hello", "prod"), "1.0.0", command, HealthCheck())
        print(LocalTarget(Path(root), ContentStore(Path(cas))).start(spec).port)
        """
    )
    argv = [str(target_root), str(cas.root), str(spec.directory.cwd)]
    argv += [str(spec.directory.python_path[0]), COMMAND]

    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True
    )

    [instance] = target.list_instances(PLACEMENT)
    assert instance.port == int(done.stdout)
    assert wait_until(lambda: target.health(instance).healthy)


def test_an_instance_whose_port_was_taken_is_started_again_on_another_port(
    target: LocalTarget, make_release: MakeRelease, launch: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(local, "free_port", lambda: next(ports, 0) or _free())

        instance = target.start(launch(make_release("1.0.0"), "hello.prod.1.1"))

        assert instance.port != taken
        assert wait_until(lambda: target.health(instance).healthy)
        assert target.list_instances(PLACEMENT) == [instance]


def _free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_process_that_reuses_a_recorded_pid_is_not_taken_for_the_instance(
    target: LocalTarget, target_root: Path, make_release: MakeRelease, launch: Launch
) -> None:
    instance = target.start(launch(make_release("1.0.0"), "hello.prod.1.1"))
    target.stop(instance)
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        record = target_root / instance.id / "instance.json"
        doc = {**_record_of(instance), "pid": stranger.pid, "pgid": stranger.pid}
        record.write_text(json.dumps(doc))

        assert target.list_instances(PLACEMENT) == []
        target.stop(instance)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def _record_of(instance: Instance) -> dict[str, object]:
    return {
        "format": 1,
        "id": instance.id,
        "service": instance.placement.service,
        "environment": instance.placement.environment,
        "version": instance.version,
        "host": instance.host,
        "port": instance.port,
        "started_at": instance.started_at,
        "health": {"path": instance.health.path, "timeout_s": instance.health.timeout_s},
    }


def test_an_instance_sees_its_port_its_identity_and_nothing_else_of_the_starters_environment(
    target: LocalTarget, cas: ContentStore, launch: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = dedent(
        """
        import json, os
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(dict(os.environ)).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
        """
    )
    blob = cas.put_bytes(source.encode())
    release = release_of("1.0.0", (ReleaseArtifact("service.py", blob.digest, blob.size),))
    monkeypatch.setenv("CONVEYOR_AUDIT_KEY", "secret")

    instance = target.start(launch(release, "hello.prod.1.1"))

    assert wait_until(lambda: target.health(instance).healthy)
    env = json.loads(get(instance))
    assert env["PORT"] == str(instance.port)
    assert env["CONVEYOR_INSTANCE"] == "hello.prod.1.1"
    assert (env["CONVEYOR_SERVICE"], env["CONVEYOR_ENVIRONMENT"]) == ("hello", "prod")
    assert env["CONVEYOR_RELEASE"] == "1.0.0"
    assert "CONVEYOR_AUDIT_KEY" not in env


def roll_out(spec: RollingSpec, target: LocalTarget, workload: Workload) -> DeploymentStatus:
    """Loop decide -> perform on real time until the Deployment settles."""
    status = DeploymentStatus(spec.deployment, spec.version)
    observed = observe(target, workload)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        decision = decide(spec, status, observed, time.time())
        status = decision.status
        if status.settled:
            return status
        observed = perform(decision.actions, target, workload)
        time.sleep(0.05)
    raise AssertionError(f"the deployment did not settle: {status}")


def deploy(
    target: LocalTarget, releases: list[Release], deployment: int, *, within_s: float = 10.0
) -> DeploymentStatus:
    version = releases[-1].version
    spec = RollingSpec(deployment, "hello", "prod", version, instances=2, within_s=within_s)
    workload = Workload(PLACEMENT, COMMAND, HEALTH, {r.version: r for r in releases})
    return roll_out(spec, target, workload)


def test_a_rolling_deployment_from_v1_to_v2_leaves_only_v2_serving(
    target: LocalTarget, make_release: MakeRelease
) -> None:
    v1, v2 = make_release("1.0.0"), make_release("2.0.0")
    assert deploy(target, [v1], 1).phase == "succeeded"
    before = target.list_instances(PLACEMENT)

    status = deploy(target, [v1, v2], 2)

    assert status.phase == "succeeded"
    serving = target.list_instances(PLACEMENT)
    assert [i.id for i in serving] == ["hello.prod.2.1", "hello.prod.2.2"]
    assert [get(i) for i in serving] == ["2.0.0", "2.0.0"]
    assert all(not procfs.is_running(_pid(target, i)) for i in before)


def _pid(target: LocalTarget, instance: Instance) -> int:
    path = target.root / instance.id / "instance.json"
    return int(json.loads(path.read_text())["pid"]) if path.exists() else -1


def test_a_v2_that_answers_500_leaves_v1_serving(
    target: LocalTarget, make_release: MakeRelease
) -> None:
    v1, v2 = make_release("1.0.0"), make_release("2.0.0", health=500)
    deploy(target, [v1], 1)

    status = deploy(target, [v1, v2], 2, within_s=1.5)

    assert status.phase == "failed"
    failed = status.condition("Failed")
    assert failed is not None
    assert failed.message.endswith("was not healthy within 1.5s: /healthz answered HTTP 500")
    serving = target.list_instances(PLACEMENT)
    assert [i.id for i in serving] == ["hello.prod.1.1", "hello.prod.1.2"]
    assert [get(i) for i in serving] == ["1.0.0", "1.0.0"]


def test_a_v2_that_crashes_on_start_leaves_v1_serving_and_says_why(
    target: LocalTarget, make_release: MakeRelease
) -> None:
    v1, v2 = make_release("1.0.0"), make_release("2.0.0", health=503, exit_after_s=0.0)
    deploy(target, [v1], 1)

    status = deploy(target, [v1, v2], 2)

    assert status.phase == "failed"
    failed = status.condition("Failed")
    assert failed is not None
    assert failed.reason == "InstanceExited"
    assert "leaving with code 3" in failed.message
    assert [get(i) for i in target.list_instances(PLACEMENT)] == ["1.0.0", "1.0.0"]


def test_an_instance_of_another_target_with_the_same_id_is_neither_adopted_nor_stopped(
    target: LocalTarget,
    cas: ContentStore,
    tmp_path: Path,
    make_release: MakeRelease,
    launch: Launch,
) -> None:
    instance = target.start(launch(make_release("1.0.0"), "hello.prod.1.1"))
    other = LocalTarget(tmp_path / "other-target", cas)
    (other.root / instance.id).mkdir(parents=True)
    record = (target.root / instance.id / "instance.json").read_text()
    (other.root / instance.id / "instance.json").write_text(record)

    assert other.list_instances(PLACEMENT) == []
    other.stop(instance)
    assert target.list_instances(PLACEMENT) == [instance]
