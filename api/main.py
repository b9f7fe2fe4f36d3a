"""The FastAPI application: `create_app()` with a lifespan that loads models and index once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.config import Settings
from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.routes import documents, health, predict, traces, verify, viewer
from api.security import SecurityHeadersMiddleware
from api.services import AppServices
from graph.services import LoadedServices, package_version

logger = logging.getLogger(__name__)


def mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from local files (the fastapi-swagger package's Swagger UI 5): works offline.

    Swagger UI 5 renders the OpenAPI 3.1 documents FastAPI writes; only its static files are used.
    """
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = files("fastapi_swagger") / "resources"
    app.mount("/docs-static", StaticFiles(directory=str(assets)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="verifact API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )


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
        docs_url=None,  # served below from local files: the default page loads Swagger from a CDN
        redoc_url=None,
    )
    app.state.services = app_services
    install_error_handlers(app)

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: 413s get the headers too

    for module in (verify, predict, traces, documents, health, viewer):
        app.include_router(module.router)
    viewer.mount_static(app)
    mount_docs(app)
    return app
