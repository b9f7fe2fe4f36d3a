"""GET /healthz (the process answers) and GET /readyz (models and index are loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import Health
from api.services import AppServices

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(services: ServicesDep) -> Health:
    """Liveness: the server is up (it may still be loading)."""
    return Health(
        status="ok",
        ready=services.state == "ready",
        reason=services.reason,
        trace_store_failures=_store_failures(services),
    )


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Readiness: 200 once models and index are loaded, else 503 with the reason."""
    ready = services.state == "ready" and services.pipeline is not None
    versions = dict(services.pipeline.context.versions) if services.pipeline else {}
    body = Health(
        status=services.state,
        ready=ready,
        reason=services.reason,
        versions=versions,
        trace_store_failures=_store_failures(services),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


def _store_failures(services: AppServices) -> int:
    # Counted, not raised: a run whose trace cannot be stored still answers (README, "Faults").
    return services.pipeline.trace_store_failures if services.pipeline else 0
