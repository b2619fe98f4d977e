"""The app factory: `create_app(settings)` builds one server; nothing lives at module level.

The database opens in the app's lifespan (refusing an unmigrated one) and
closes when the server shuts down, after uvicorn has drained requests on SIGTERM.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from conveyor import __version__
from conveyor.core.clock import Clock
from conveyor.server import errors, routes
from conveyor.server.agent_work import WorkSignal, sweep_leases
from conveyor.server.delivery_loop import reconcile_deliveries
from conveyor.server.metrics import create_metrics
from conveyor.server.middleware import RequestContext
from conveyor.server.settings import Settings
from conveyor.server.state import RunStarter, open_state

# How long shutdown waits for a background pass in progress before closing the database.
STOP_WAIT_S = 30.0

DESCRIPTION = (
    "The shared control plane of Conveyor. Every endpoint under /api/v1 needs "
    "`Authorization: Bearer <token>` (`conveyor token create`), except the two webhook "
    "receivers, which check GitHub's signature or GitLab's token against the project's "
    "webhook secret instead; errors are `application/problem+json`."
)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    run_starter: RunStarter | None = None,
) -> FastAPI:
    """A new server app for `settings`; its database opens when the app starts.

    `environ` holds CONVEYOR_SECRET_KEY (default: the process environment);
    `run_starter` starts the Runs webhooks ask for.
    """
    metrics = create_metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(
            settings, metrics=metrics, clock=clock, environ=environ, run_starter=run_starter
        )
        app.state.conveyor = state
        signal = WorkSignal(state)
        app.state.work_signal = signal
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(signal.run(stop)),
            asyncio.create_task(sweep_leases(state, stop)),
            asyncio.create_task(reconcile_deliveries(state, stop)),
        ]
        try:
            yield
        finally:
            # Each loop ends after the pass it is in, so no thread uses the database
            # once it is closed; a pass that hangs is abandoned after a while.
            stop.set()
            _, hanging = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
            for task in hanging:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            state.close()

    app = FastAPI(
        title="Conveyor",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(RequestContext, metrics=metrics, max_upload_bytes=settings.max_upload_bytes)
    app.include_router(routes.probes())
    app.include_router(routes.api_v1())
    return app
