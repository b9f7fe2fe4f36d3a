"""GET /traces, GET /traces/{id}, DELETE /traces/{id}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.deps import CallerDep, PipelineDep
from api.errors import APIError
from api.schemas import ErrorResponse
from graph.blocking import run_blocking
from graph.report import RunStatus, RunTrace, TracePage
from graph.schemas import Label
from graph.tracestore import TraceQuery, TraceStore

router = APIRouter(prefix="/traces", tags=["traces"])
_401: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "The server has API keys and none or a wrong one came."}
}
_404: dict[int | str, dict[str, Any]] = {
    **_401,
    404: {"model": ErrorResponse, "description": "No such trace (or another key's)."},
}
TraceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _store(pipeline: PipelineDep) -> TraceStore:
    store = pipeline.context.trace_store
    if store is None:
        raise APIError(404, "this server keeps no traces (VERIFACT_TRACE_DB is empty)")
    return store


@router.get("", response_model=TracePage, responses={**_401, 422: {"model": ErrorResponse}})
async def list_traces(
    caller: CallerDep,
    pipeline: PipelineDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    verdict: Label | None = None,
    status: RunStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text the input contains.")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> TracePage:
    """Recent runs, newest first (with API keys, the caller's own); ``next_cursor`` gives the next page."""
    query = TraceQuery(
        limit=limit,
        cursor=cursor,
        verdict=verdict,
        status=status,
        text=q,
        since=since,
        until=until,
        owner=caller.key_id,
        owner_scoped=caller.scoped,
    )
    return await run_blocking(_store(pipeline).list, query)


@router.get("/{trace_id}", response_model=RunTrace, responses=_404)
async def get_trace(trace_id: TraceId, caller: CallerDep, pipeline: PipelineDep) -> RunTrace:
    """One run's whole trace (with API keys, only the key that created it may read it)."""
    store = _store(pipeline)
    trace = await run_blocking(store.get, trace_id, owner=caller.key_id, owner_scoped=caller.scoped)
    if trace is None:
        raise APIError(404, f"no trace {trace_id}")
    return trace


@router.delete("/{trace_id}", status_code=204, responses=_404)
async def delete_trace(trace_id: TraceId, caller: CallerDep, pipeline: PipelineDep) -> Response:
    """Delete one run's trace (with API keys, only the key that created it may)."""
    store = _store(pipeline)
    # Another key's trace is "no trace", as for GET: a 403 would confirm that the id exists.
    if not await run_blocking(store.delete, trace_id, owner=caller.key_id, owner_scoped=caller.scoped):
        raise APIError(404, f"no trace {trace_id}")
    return Response(status_code=204)
