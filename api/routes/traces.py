"""GET /traces, GET /traces/{id}, DELETE /traces/{id}."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.deps import PipelineDep
from api.errors import APIError
from api.schemas import ErrorResponse
from graph.report import RunStatus, RunTrace, TracePage
from graph.schemas import Label
from graph.tracestore import TraceQuery, TraceStore

router = APIRouter(prefix="/traces", tags=["traces"])
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No such trace."}}
TraceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _store(pipeline: PipelineDep) -> TraceStore:
    store = pipeline.context.trace_store
    if store is None:
        raise APIError(404, "this server keeps no traces (VERIFACT_TRACE_DB is empty)")
    return store


@router.get("", response_model=TracePage, responses={422: {"model": ErrorResponse}})
async def list_traces(
    pipeline: PipelineDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    verdict: Label | None = None,
    status: RunStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text the input contains.")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> TracePage:
    """Recent runs, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    query = TraceQuery(
        limit=limit, cursor=cursor, verdict=verdict, status=status, text=q, since=since, until=until
    )
    return await asyncio.to_thread(_store(pipeline).list, query)


@router.get("/{trace_id}", response_model=RunTrace, responses=_404)
async def get_trace(trace_id: TraceId, pipeline: PipelineDep) -> RunTrace:
    """One run's whole trace."""
    trace = await asyncio.to_thread(_store(pipeline).get, trace_id)
    if trace is None:
        raise APIError(404, f"no trace {trace_id}")
    return trace


@router.delete("/{trace_id}", status_code=204, responses=_404)
async def delete_trace(trace_id: TraceId, pipeline: PipelineDep) -> Response:
    """Delete one run's trace."""
    if not await asyncio.to_thread(_store(pipeline).delete, trace_id):
        raise APIError(404, f"no trace {trace_id}")
    return Response(status_code=204)
