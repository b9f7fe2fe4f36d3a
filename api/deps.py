"""FastAPI dependencies: the services and settings of the running app, the caller, and its slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.access import KeyRing, Principal
from api.config import Settings
from api.errors import APIError
from api.limits import ConcurrencyLimiter
from api.services import AppServices
from graph.pipeline import Pipeline

_bearer = HTTPBearer(
    auto_error=False,  # a missing key is answered below, in the API's error shape
    description="An API key, when the server has keys (VERIFACT_API_KEYS); none is needed otherwise.",
)


def get_services(request: Request) -> AppServices:
    """The app's services."""
    services: AppServices = request.app.state.services
    return services


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return get_services(request).settings


def get_pipeline(request: Request) -> Pipeline:
    """The loaded pipeline, or 503 while loading or after a failed load."""
    return get_services(request).require()


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Who calls: the key's holder, or with keys off an anonymous caller; 401 for a missing or bad key.

    Async, though it never awaits: a plain function would be sent to the thread pool on every request.
    """
    keyring: KeyRing = request.app.state.keyring
    if not keyring.enabled:
        address = request.client.host if request.client else "unknown"
        return Principal(key_id=None, admin=True, scoped=False, counted_as=f"client:{address}")
    if credentials is None:
        raise APIError(
            401,
            "this server needs an API key: send it as Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = keyring.find(credentials.credentials)
    if key is None:
        raise APIError(
            401, "the API key is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return Principal(key_id=key.key_id, admin=key.admin, scoped=True, counted_as=f"key:{key.key_id}")


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The caller, when it may administer the service (any caller with keys off); else 403."""
    if not principal.admin:
        raise APIError(403, "this needs an admin API key (VERIFACT_ADMIN_KEYS)")
    return principal


async def hold_slot(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> AsyncIterator[Principal]:
    """The caller, holding one of its concurrent-request slots until the response is sent; else 429.

    The slot is released after the whole response, so a Server-Sent Events stream holds it while it
    streams. An async dependency: it runs in the event loop, where the limiter's counts live.
    """
    limiter: ConcurrencyLimiter = request.app.state.limiter
    with limiter.hold(principal.counted_as):
        yield principal


ServicesDep = Annotated[AppServices, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
CallerDep = Annotated[Principal, Depends(get_principal)]
"""The caller (401 when keys are on and its key is missing or wrong)."""
AdminDep = Annotated[Principal, Depends(require_admin)]
"""The caller, when it may add documents (403 otherwise)."""
SlotDep = Annotated[Principal, Depends(hold_slot)]
"""The caller, counted as running one more request (429 beyond `max_concurrent_per_key`)."""
