"""`conveyor server`: the shared control plane over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command(name="server")(server)


def server(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (env CONVEYOR_HOST; default 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="TCP port (env CONVEYOR_PORT; default 8080)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="e.g. postgresql://user@db/conveyor (env CONVEYOR_DATABASE_URL; "
            "default SQLite in .conveyor/ or CONVEYOR_HOME).",
        ),
    ] = None,
    max_upload: Annotated[
        str | None,
        typer.Option(
            help="Largest request body, e.g. 512MB (env CONVEYOR_MAX_UPLOAD; default 512MiB)."
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="debug, info, warning or error (env CONVEYOR_LOG_LEVEL; default info)."),
    ] = None,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json), /healthz, /readyz, /metrics.

    The database must be migrated first: run `conveyor db upgrade` with the same
    CONVEYOR_DATABASE_URL (an unmigrated database is refused, exit 3). Several
    servers may share one PostgreSQL. Make the first admin token on this host with
    `conveyor token create --role admin`. Logs are JSON lines on stderr. SIGTERM or
    Ctrl-C stops accepting requests, lets those in flight finish, then exits.
    """
    import os
    from pathlib import Path

    import uvicorn

    from conveyor.server.app import create_app
    from conveyor.server.logs import logging_config
    from conveyor.server.settings import from_environ
    from conveyor.server.state import require_migrated
    from conveyor.store.db import open_database

    settings = from_environ(
        os.environ,
        cwd=Path.cwd(),
        host=host,
        port=port,
        database_url=database_url,
        max_upload_bytes=max_upload,
        log_level=log_level,
    )
    # Refuse before listening, so a load balancer never sees a server that cannot work.
    db = open_database(settings.db_url)
    try:
        require_migrated(db)
    finally:
        db.close()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=logging_config(settings.log_level),
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )
