"""POST /verify and POST /verify/stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from api.deps import PipelineDep, SettingsDep
from api.errors import APIError
from api.schemas import ErrorBody, ErrorResponse, VerifyRequest
from graph.pipeline import NodeUpdate, PipelineError
from graph.report import VerifyResult

router = APIRouter(tags=["verify"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "The text is longer than the server's limit."},
    422: {"model": ErrorResponse, "description": "Invalid input."},
    503: {"model": ErrorResponse, "description": "Loading, or a dependency failed."},
}


def _check_size(body: VerifyRequest, max_chars: int) -> None:
    if len(body.text) > max_chars:
        raise APIError(413, f"text has {len(body.text)} characters; the limit is {max_chars}")


@router.post("/verify", response_model=VerifyResult, responses=_ERRORS)
async def verify(body: VerifyRequest, pipeline: PipelineDep, settings: SettingsDep) -> VerifyResult:
    """Find the check-worthy claims in a text and judge each one against the evidence index."""
    _check_size(body, settings.max_text_chars)
    return await pipeline.averify(body.text, body.options())


@router.post(
    "/verify/stream",
    responses={
        200: {"description": "Server-Sent Events: `node` per finished node run, then `result` (or `error`)."},
        **_ERRORS,
    },
)
async def verify_stream(
    body: VerifyRequest, pipeline: PipelineDep, settings: SettingsDep
) -> EventSourceResponse:
    """`/verify` as Server-Sent Events: one ``node`` event per node run as it finishes, then ``result``."""
    _check_size(body, settings.max_text_chars)
    options = body.options()
    pipeline.context.judge_for(options.judge)  # refuse an unavailable judge with a 422, not mid-stream

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            async for item in pipeline.astream(body.text, options):
                if isinstance(item, NodeUpdate):
                    data = {"node": item.node, "events": [e.model_dump(mode="json") for e in item.events]}
                    yield {"event": "node", "data": json.dumps(data)}
                else:
                    yield {"event": "result", "data": json.dumps(item.model_dump(mode="json"))}
        except PipelineError as exc:
            error = ErrorBody(code="unavailable", message=str(exc), trace_id=exc.trace_id)
            yield {"event": "error", "data": json.dumps(ErrorResponse(error=error).model_dump(mode="json"))}

    return EventSourceResponse(events(), ping=15)
