"""The FastAPI application: `create_app()` with a lifespan that loads models and index once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.config import Settings
from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.routes import documents, health, predict, traces, verify
from api.services import AppServices
from graph.services import LoadedServices, package_version

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, services: LoadedServices | None = None) -> FastAPI:
    """Build the app.

    Args:
        settings: The server's settings; None reads ``VERIFACT_*`` from the environment.
        services: Already loaded services (tests, embedding); None loads them from ``settings`` in
            the background at start, answering 503 until they are ready.
    """
    settings = settings or Settings()
    app_services = AppServices(settings, services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await app_services.start()
        try:
            yield
        finally:
            await app_services.stop()

    app = FastAPI(
        title="verifact",
        version=package_version(),
        summary="Find the check-worthy claims in a text, check them against your documents, and show why.",
        lifespan=lifespan,
    )
    app.state.services = app_services
    install_error_handlers(app)

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    for module in (verify, predict, traces, documents, health):
        app.include_router(module.router)
    return app
