"""The FastAPI application: `create_app()` with a lifespan that loads models and index once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from api.access import KeyRing
from api.config import Settings
from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware, ConcurrencyLimiter
from api.routes import documents, health, predict, traces, verify, viewer
from api.security import SecurityHeadersMiddleware
from api.services import AppServices
from graph.services import LoadedServices, package_version

if TYPE_CHECKING:
    import uvicorn

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


class _App(FastAPI):
    """FastAPI with the security headers outside even Starlette's error middleware, so 500s get them."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack (its error middleware outermost), wrapped in the security headers."""
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def create_app(settings: Settings | None = None, *, services: LoadedServices | None = None) -> FastAPI:
    """Build the app.

    Args:
        settings: The server's settings; None reads ``VERIFACT_*`` from the environment.
        services: Already loaded services (tests, embedding); None loads them from ``settings`` in
            the background at start, answering 503 until they are ready.

    Raises:
        AccessConfigError: the API key settings cannot be used.
    """
    settings = settings or Settings()
    keyring = KeyRing.from_settings(settings)  # first: a bad key setting stops the start, not a request
    app_services = AppServices(settings, services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await app_services.start()
        try:
            yield
        finally:
            await app_services.stop()

    app = _App(
        title="verifact",
        version=package_version(),
        summary="Find the check-worthy claims in a text, check them against your documents, and show why.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: the default page loads Swagger from a CDN
        redoc_url=None,
    )
    app.state.services = app_services
    app.state.keyring = keyring
    app.state.limiter = ConcurrencyLimiter(settings.max_concurrent_per_key)
    install_error_handlers(app)

    # The last added runs first: CORS headers on 413s too. The security headers wrap them all (`_App`).
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if origins := settings.cors_origin_list():  # closed unless configured: no CORS headers at all
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    for module in (verify, predict, traces, documents, health, viewer):
        app.include_router(module.router)
    viewer.mount_static(app)
    mount_docs(app)
    return app


def uvicorn_config(app: ASGIApp, settings: Settings, log_level: str = "info") -> uvicorn.Config:
    """How ``verifact serve`` runs ``app`` under uvicorn.

    A SIGTERM lets running requests finish for ``shutdown_timeout_s``; uvicorn then cancels them (each
    stores its partial trace as cancelled) and the server exits, where a plain ``uvicorn.run`` would
    wait on a slow LLM for as long as it takes.
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
    )
