"""Deployments on the local target end to end: real instances of a tiny HTTP service.

Each test's workspace builds the service of `instances.py` as its release's
artifact; `conveyor promote` deploys it with the rolling strategy onto local
processes. The workspace fixture kills every instance when the test ends.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from .instances import get, running_instances, server, spec
from .support import Result, Workspace, WorkspaceFactory, assert_chain_intact, wait_for

pytestmark = pytest.mark.timeout(120)


def deployable(workspace: WorkspaceFactory, *, within: str = "10s") -> Workspace:
    """A workspace with release 1.0.0 of `hello`, not yet promoted anywhere."""
    ws = workspace(spec(within=within), files={"app/server.py": server()})
    release(ws, "1.0.0")
    return ws


def release(ws: Workspace, version: str, *, health: int = 200, delay_s: float = 0.0) -> None:
    """Build the service (its /healthz answering `health`) and release it as `version`."""
    ws.write("app/server.py", server(health=health, delay_s=delay_s) + f"# {version}\n")
    ran = ws.run()
    assert ran.code == 0, ran.err
    made = ws.cli("release", "create", "--run", "latest", "--version", version)
    assert made.code == 0, made.err


def promote(ws: Workspace, version: str, env: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = ws.cli("promote", "hello", version, "--to", env, "--json", *args)
    assert result.out.strip(), result.err
    doc: dict[str, Any] = result.json()
    return result.code, doc


def environments(ws: Workspace) -> dict[str, dict[str, Any]]:
    result = ws.cli("status", "--json")
    assert result.code == 0, result.err
    return {env["name"]: env for env in result.json()["environments"]}


def addresses(env: dict[str, Any]) -> list[str]:
    return [instance["address"] for instance in env["instances"]]


def events_of(ws: Workspace, deployment: int) -> list[tuple[str, dict[str, Any]]]:
    suffix = f"/deployment/{deployment}"
    found = [e for e in ws.events() if e["subject"].endswith(suffix)]
    return [(e["kind"], json.loads(e["data"])) for e in found]


def test_a_release_promoted_to_dev_then_staging_serves_from_real_instances(
    workspace: WorkspaceFactory,
) -> None:
    ws = deployable(workspace)

    too_early, blocked = promote(ws, "1.0.0", "staging", "--timeout", "1s")
    dev_code, dev = promote(ws, "1.0.0", "dev")
    staging_code, staging = promote(ws, "1.0.0", "staging")
    envs = environments(ws)

    assert (too_early, blocked["state"]) == (1, "blocked")
    assert (dev_code, dev["state"], dev["deployment"]["phase"]) == (0, "deployed", "succeeded")
    assert (staging_code, staging["state"]) == (0, "deployed")
    for name in ("dev", "staging"):
        assert envs[name]["release"]["version"] == "1.0.0"
        assert envs[name]["deployment"]["phase"] == "succeeded"
        assert [i["health"] for i in envs[name]["instances"]] == ["healthy"]
        assert get(addresses(envs[name])[0]) == (200, "1.0.0")
        assert get(addresses(envs[name])[0], "/healthz")[0] == 200
    assert addresses(envs["dev"]) != addresses(envs["staging"])
    assert_chain_intact(ws.events())


def test_a_second_release_replaces_the_first_by_rolling(workspace: WorkspaceFactory) -> None:
    ws = deployable(workspace)
    promote(ws, "1.0.0", "dev")
    (old,) = addresses(environments(ws)["dev"])
    release(ws, "2.0.0")

    code, doc = promote(ws, "2.0.0", "dev")
    dev = environments(ws)["dev"]

    assert (code, doc["state"]) == (0, "deployed")
    assert dev["release"]["version"] == "2.0.0"
    assert [(i["id"], i["health"]) for i in dev["instances"]] == [("hello.dev.2.1", "healthy")]
    assert get(addresses(dev)[0]) == (200, "2.0.0")
    with pytest.raises(ConnectionRefusedError):
        get(old)
    assert running_instances(ws.instances_root) == ["hello.dev.2.1"]
    kinds = [(kind, data.get("instance")) for kind, data in events_of(ws, 2)]
    # The new instance is healthy before the previous one is stopped.
    assert kinds.index(("instance.healthy", "hello.dev.2.1")) < kinds.index(
        ("instance.stopped", "hello.dev.1.1")
    )
    assert kinds[-1] == ("deployment.succeeded", None)


def test_a_release_that_fails_its_health_check_leaves_the_previous_release_serving(
    workspace: WorkspaceFactory,
) -> None:
    ws = deployable(workspace, within="2s")
    promote(ws, "1.0.0", "dev")
    release(ws, "2.0.0", health=500)

    code, doc = promote(ws, "2.0.0", "dev")
    text = ws.cli("promote", "hello", "2.0.0", "--to", "dev")
    dev = environments(ws)["dev"]

    assert (code, doc["state"], doc["deployment"]["phase"]) == (1, "failed", "failed")
    assert "/healthz answered HTTP 500" in doc["deployment"]["message"]
    assert text.code == 1
    assert "failed to deploy" in text.out
    assert dev["release"]["version"] == "1.0.0"
    assert [i["version"] for i in dev["instances"]] == ["1.0.0"]
    assert get(addresses(dev)[0]) == (200, "1.0.0")
    assert running_instances(ws.instances_root) == ["hello.dev.1.1"]
    kinds = [kind for kind, _ in events_of(ws, 2)]
    assert kinds[-3:] == ["deployment.failed", "instance.stopped", "deployment.rolled_back"]
    promoted = [e["kind"] for e in ws.events() if e["subject"].endswith("/promotion/2")]
    assert promoted[-1] == "promotion.failed"


def test_a_controller_killed_while_new_instances_start_is_taken_over_without_duplicates(
    workspace: WorkspaceFactory,
) -> None:
    ws = deployable(workspace)
    promote(ws, "1.0.0", "dev")
    release(ws, "2.0.0", delay_s=2.0)
    record = ws.instances_root / "hello.dev.2.1" / "instance.json"

    killed = ws.start("promote", "hello", "2.0.0", "--to", "dev")
    wait_for(record.exists, timeout=30, what="the new instance to be started")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    starting = running_instances(ws.instances_root)
    resumed = ws.cli("reconcile")
    dev = environments(ws)["dev"]

    assert killed.returncode == -signal.SIGKILL
    assert starting == ["hello.dev.1.1", "hello.dev.2.1"]
    assert resumed.code == 0, resumed.text
    assert "deployment 2: hello 2.0.0 -> dev: succeeded" in resumed.out
    assert dev["release"]["version"] == "2.0.0"
    assert running_instances(ws.instances_root) == ["hello.dev.2.1"]
    assert get(addresses(dev)[0]) == (200, "2.0.0")
    started = [d["instance"] for kind, d in events_of(ws, 2) if kind == "instance.started"]
    assert started == ["hello.dev.2.1"]
    assert ws.cli("why", "hello", "2.0.0", "--env", "dev", "--json").json()["state"] == "deployed"
    assert_chain_intact(ws.events())


def test_two_promotions_into_one_environment_at_once_are_deployed_one_after_the_other(
    workspace: WorkspaceFactory,
) -> None:
    ws = deployable(workspace)
    release(ws, "2.0.0")

    procs = [ws.start("promote", "hello", v, "--to", "dev", "--json") for v in ("1.0.0", "2.0.0")]
    results: list[Result] = []
    for proc in procs:
        proc.wait(timeout=90)
        results.append(ws.output_of(proc))
    listed = ws.cli("deployments", "--json").json()["deployments"]
    first, second = sorted(listed, key=lambda d: d["id"])
    log = [(e["kind"], e["subject"]) for e in ws.events()]

    assert [r.code for r in results] == [0, 0], [r.err for r in results]
    assert [d["phase"] for d in (first, second)] == ["succeeded", "succeeded"]
    first_subject = f"release/hello/{first['version']}/deployment/{first['id']}"
    second_subject = f"release/hello/{second['version']}/deployment/{second['id']}"
    assert log.index(("deployment.succeeded", first_subject)) < log.index(
        ("deployment.started", second_subject)
    )
    assert second["previous"][0]["id"] == first["instances"][0]["id"]
    dev = environments(ws)["dev"]
    assert dev["release"]["version"] == second["version"]
    assert [i["id"] for i in dev["instances"]] == [second["instances"][0]["id"]]


def test_instances_outlive_the_conveyor_process_and_a_new_one_adopts_them(
    workspace: WorkspaceFactory,
) -> None:
    ws = deployable(workspace)
    promote(ws, "1.0.0", "dev")
    release(ws, "2.0.0")

    (address,) = addresses(environments(ws)["dev"])
    served = get(address)
    listed = ws.cli("status")
    code, _ = promote(ws, "2.0.0", "dev")

    assert served == (200, "1.0.0")
    assert "hello.dev.1.1  1.0.0  http://127.0.0.1:" in listed.out
    assert "healthy" in listed.out
    assert code == 0
    started = next(data for kind, data in events_of(ws, 2) if kind == "deployment.started")
    assert started["previous"] == ["hello.dev.1.1"]
    assert running_instances(ws.instances_root) == ["hello.dev.2.1"]
