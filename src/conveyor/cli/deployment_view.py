"""Deployments and environments as people and programs read them: text and JSON."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.core.clock import iso
from conveyor.engine.environments import EnvironmentView, InstanceView
from conveyor.rollout.deployment import Deployment
from conveyor.rollout.status import InstanceStatus


def deployment_json(deployment: Deployment) -> dict[str, object]:
    """One Deployment as every deployment command's `--json` prints it."""
    status = deployment.status
    return {
        "id": int(deployment.id),
        "project": deployment.project,
        "service": deployment.service,
        "environment": deployment.environment,
        "version": deployment.version,
        "promotion": deployment.promotion_id,
        "phase": deployment.phase,
        "step": deployment.step,
        "active": deployment.active,
        "message": deployment.message,
        "created_at": iso(deployment.created_at),
        "updated_at": iso(deployment.updated_at),
        "instances": [_instance_json(instance) for instance in status.new],
        "previous": [_instance_json(instance) for instance in status.previous],
        "conditions": [
            {"type": c.type, "reason": c.reason, "message": c.message, "since": iso(c.since)}
            for c in status.conditions
        ],
    }


def _instance_json(instance: InstanceStatus) -> dict[str, object]:
    return {
        "id": instance.id,
        "version": instance.version,
        "state": instance.state,
        "port": instance.port,
        "detail": instance.detail,
    }


def deployment_line(deployment: Deployment) -> str:
    """`deployment 3: shop 1.2.0 -> prod: progressing (await-health): why`."""
    head = (
        f"deployment {deployment.id}: {deployment.service} {deployment.version} -> "
        f"{deployment.environment}: {deployment.phase} ({deployment.step})"
    )
    return f"{head}: {deployment.message}" if deployment.message else head


def deployments_table(deployments: Sequence[Deployment]) -> str:
    """One line per Deployment, newest first."""
    from conveyor.cli.render import table

    rows = [("ID", "SERVICE", "VERSION", "ENV", "PHASE", "STEP", "PROMOTION", "UPDATED")]
    for d in deployments:
        rows.append(
            (
                str(d.id),
                d.service,
                d.version,
                d.environment,
                d.phase,
                d.step,
                str(d.promotion_id),
                iso(d.updated_at) or "",
            )
        )
    return table(rows)


def status_json(service: str, views: Sequence[EnvironmentView]) -> dict[str, object]:
    """`conveyor status --json`: every environment, in promotion order."""
    return {"service": service, "environments": [_environment_json(view) for view in views]}


def _environment_json(view: EnvironmentView) -> dict[str, object]:
    deployed = view.deployed
    return {
        "name": view.name,
        "release": None
        if deployed is None
        else {
            "version": deployed.version,
            "deployed_at": iso(deployed.deployed_at),
            "healthy_since": iso(deployed.healthy_since),
        },
        "deployment": None if view.deployment is None else deployment_json(view.deployment),
        "queued": view.queued,
        "instances": [_live_json(instance) for instance in view.instances],
    }


def _live_json(instance: InstanceView) -> dict[str, object]:
    return {
        "id": instance.id,
        "version": instance.version,
        "address": instance.address,
        "health": instance.health,
        "detail": instance.detail,
    }


def status_text(service: str, views: Sequence[EnvironmentView]) -> str:
    """Each environment: its release, its Deployment, and its instances with their health."""
    lines: list[str] = []
    for view in views:
        deployed = view.deployed
        if deployed is None:
            lines.append(f"{view.name}: nothing deployed")
        else:
            lines.append(
                f"{view.name}: {service} {deployed.version} (deployed {iso(deployed.deployed_at)})"
            )
        if view.deployment is not None:
            lines.append(f"  {deployment_line(view.deployment)}")
        if view.queued:
            lines.append(f"  {view.queued} more deployment(s) queued")
        for instance in view.instances:
            health = f"{instance.health}: {instance.detail}" if instance.detail else instance.health
            lines.append(f"  {instance.id}  {instance.version}  {instance.address}  {health}")
    return "\n".join(lines)
