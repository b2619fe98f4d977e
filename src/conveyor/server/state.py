"""What one server process holds: its open database and the services over it.

Nothing here is the only copy of anything: every fact lives in the database,
so any number of server processes can serve the same PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from conveyor.artifacts.cas import ContentStore
from conveyor.core.clock import Clock, SystemClock
from conveyor.core.errors import Conflict, StoreError
from conveyor.core.secrets import KEY_VARIABLE
from conveyor.core.values import frozen
from conveyor.engine.dispatch import DispatchService
from conveyor.engine.dispatch_secrets import stored_secrets
from conveyor.engine.git_fetch import GitMirror
from conveyor.engine.history import History
from conveyor.engine.projects import ProjectService
from conveyor.engine.remote_runs import RemoteRunService
from conveyor.engine.secrets import SecretService
from conveyor.engine.tokens import TokenService
from conveyor.engine.webhooks import ACTOR as WEBHOOK_ACTOR
from conveyor.engine.webhooks import WebhookService
from conveyor.engine.workspace import SPEC_FILE, Workspace
from conveyor.executors.local import LocalExecutor
from conveyor.server.delivery import ServerDelivery, open_delivery
from conveyor.server.metrics import Metrics
from conveyor.server.settings import Settings
from conveyor.store import migrate
from conveyor.store.db import Database, open_database, redact_url
from conveyor.store.tallies import status_counts
from conveyor.triggers.model import Trigger


class RunStarter(Protocol):
    """Starts a Run of a project's repository at the commit a webhook names."""

    def start(self, trigger: Trigger) -> int:
        """The id of the Run started for `trigger`; a ConveyorError saying why none could start."""
        ...


@frozen
class CommitRuns:
    """The server's RunStarter: a Run of the trigger's commit, fetched with git by runners.

    When it cannot start one (the commit is not in the repository, its
    pipeline file is bad, the repository cannot be reached), the webhook
    service records the delivery as failed, so it is accepted when sent again.
    """

    remote_runs: RemoteRunService

    def start(self, trigger: Trigger) -> int:
        return self.remote_runs.submit_commit(
            trigger.project,
            trigger.commit,
            branch=trigger.branch,
            event=trigger.event,
            actor=WEBHOOK_ACTOR,
        )


@frozen
class ServerState:
    """The open database and the services every request uses."""

    settings: Settings
    db: Database
    clock: Clock
    tokens: TokenService
    history: History
    cas: ContentStore
    metrics: Metrics
    projects: ProjectService
    secrets: SecretService
    webhooks: WebhookService
    remote_runs: RemoteRunService
    environ: Mapping[str, str]
    dispatch: DispatchService
    delivery: ServerDelivery

    def require_secret_key(self, what: str) -> None:
        """Conflict (409) naming CONVEYOR_SECRET_KEY unless the server was started with it.

        The request is well-formed and its sender cannot fix this; retrying is
        pointless until an operator sets the key, which a 5xx would not say.
        """
        if not self.environ.get(KEY_VARIABLE, "").strip():
            raise Conflict(
                f"this server cannot {what}: {KEY_VARIABLE} is not set where it runs. The "
                f"server's operator must set {KEY_VARIABLE} (`conveyor secret keygen` makes "
                "one) and restart the server"
            )

    def close(self) -> None:
        self.metrics.status_counts.attach(None)
        self.metrics.agents_connected.set_function(lambda: 0)
        self.delivery.close()
        self.db.close()


def require_migrated(db: Database) -> None:
    """StoreError telling to run `conveyor db upgrade` unless `db` is at the head revision."""
    found = migrate.current_revision(db)
    if found == migrate.HEAD_REVISION:
        return
    state = "has no Conveyor schema" if found is None else f"is at schema revision {found}"
    raise StoreError(
        f"the database {redact_url(db.url)} {state}; this server needs revision "
        f"{migrate.HEAD_REVISION}. Run `conveyor db upgrade` with the same "
        "CONVEYOR_DATABASE_URL, then start the server again"
    )


def open_state(
    settings: Settings,
    *,
    metrics: Metrics,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    run_starter: RunStarter | None = None,
) -> ServerState:
    """Open the database, refuse an unmigrated one, and build the services."""
    db = open_database(settings.db_url)
    try:
        require_migrated(db)
    except BaseException:
        db.close()
        raise
    clock = clock or SystemClock()
    environ = os.environ if environ is None else environ
    workspace = _workspace(settings)
    cas = ContentStore(workspace.cas_dir)
    history = History(workspace, db=db, cas=cas, executor=LocalExecutor(), clock=clock)
    projects = ProjectService(db=db, clock=clock, environ=environ)
    metrics.status_counts.attach(lambda: status_counts(db))
    dispatch = DispatchService(
        db=db, clock=clock, lease_s=settings.lease_s, secrets=stored_secrets(db, environ), cas=cas
    )
    remote_runs = RemoteRunService(
        db=db,
        clock=clock,
        cas=cas,
        dispatch=dispatch,
        projects=projects,
        mirror=GitMirror(settings.state_dir / "git"),
        scratch_dir=settings.state_dir,
    )
    starter = run_starter or CommitRuns(remote_runs)
    # An agent is connected while it calls at least once per lease (long polls, heartbeats).
    metrics.agents_connected.set_function(
        lambda: len(dispatch.connected_agents(within_s=max(settings.lease_s, 30.0)))
    )
    return ServerState(
        settings=settings,
        db=db,
        clock=clock,
        tokens=TokenService(db=db, clock=clock),
        history=history,
        cas=cas,
        metrics=metrics,
        projects=projects,
        secrets=SecretService(db=db, clock=clock, environ=environ),
        webhooks=WebhookService(
            db=db,
            clock=clock,
            environ=environ,
            projects=projects,
            start_run=lambda trigger: str(starter.start(trigger)),
        ),
        environ=environ,
        dispatch=dispatch,
        remote_runs=remote_runs,
        delivery=open_delivery(
            workspace, db=db, cas=cas, history=history, clock=clock, environ=environ
        ),
    )


def _workspace(settings: Settings) -> Workspace:
    """The server's state directory seen as a workspace: artifacts, logs, locks live there."""
    root = settings.state_dir.parent
    return Workspace(
        root=root,
        spec_path=root / SPEC_FILE,
        state_dir=settings.state_dir,
        database_url=settings.db_url,
        project=Path(root).name or "default",
    )
