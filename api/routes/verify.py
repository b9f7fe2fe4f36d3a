"""POST /verify and POST /verify/stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from api.config import Settings
from api.deps import PipelineDep, SettingsDep, SlotDep
from api.errors import APIError, pipeline_error_status
from api.schemas import ErrorBody, ErrorResponse, VerifyRequest
from graph.pipeline import NodeUpdate, PipelineError
from graph.report import VerifyOptions, VerifyResult

router = APIRouter(tags=["verify"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "The server has API keys and none or a wrong one came."},
    413: {
        "model": ErrorResponse,
        "description": "The text has more characters or sentences than the server allows.",
    },
    422: {"model": ErrorResponse, "description": "Invalid input, or top_k or max_claims over the caps."},
    429: {"model": ErrorResponse, "description": "This key already has its most requests running."},
    503: {"model": ErrorResponse, "description": "Loading, a dependency failed, or the deadline passed."},
}


_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One event of the stream (before OpenAPI 3.2, a stream's schema describes each event).",
    "properties": {
        "event": {"type": "string", "enum": ["node", "result", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}


def _checked_options(body: VerifyRequest, settings: Settings) -> VerifyOptions:
    """The run's options within the server's limits: text length (413), top_k and max_claims (422).

    A cap below a field's default lowers the default for requests that leave the field out.
    """
    if len(body.text) > settings.max_text_chars:
        raise APIError(413, f"text has {len(body.text)} characters; the limit is {settings.max_text_chars}")
    options = body.options()
    lowered: dict[str, int] = {}
    for name, value, cap in (
        ("top_k", options.top_k, settings.max_top_k),
        ("max_claims", options.max_claims, settings.max_claims_cap),
    ):
        if value <= cap:
            continue
        if name not in body.model_fields_set:
            lowered[name] = cap
            continue
        msg = f"Input should be less than or equal to {cap} on this server"
        raise APIError(
            422, f"{name}: {msg}", details=[{"loc": ["body", name], "msg": msg, "type": "less_than_equal"}]
        )
    return options.model_copy(update=lowered) if lowered else options


@router.post("/verify", response_model=VerifyResult, responses=_ERRORS)
async def verify(
    caller: SlotDep, body: VerifyRequest, pipeline: PipelineDep, settings: SettingsDep
) -> VerifyResult:
    """Find the check-worthy claims in a text and judge each one against the evidence index."""
    options = _checked_options(body, settings)
    return await pipeline.averify(body.text, options, owner=caller.key_id)


@router.post(
    "/verify/stream",
    # Declared, so the schema says text/event-stream rather than FastAPI's default application/json.
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `node` per finished node run, then `result` (or `error`).",
            "content": {"text/event-stream": {"schema": _EVENT}},
        },
        **_ERRORS,
    },
)
async def verify_stream(
    caller: SlotDep, body: VerifyRequest, pipeline: PipelineDep, settings: SettingsDep
) -> EventSourceResponse:
    """`/verify` as Server-Sent Events: one ``node`` event per node run as it finishes, then ``result``.

    Limits met after the stream began (too many sentences, the deadline) end it with an ``error`` event
    whose code says which (``too_large``, ``deadline_exceeded``) and whose trace_id names the partial trace.
    """
    options = _checked_options(body, settings)
    pipeline.context.judge_for(options.judge)  # refuse an unavailable judge with a 422, not mid-stream

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            async for item in pipeline.astream(body.text, options, owner=caller.key_id):
                if isinstance(item, NodeUpdate):
                    data = {"node": item.node, "events": [e.model_dump(mode="json") for e in item.events]}
                    yield {"event": "node", "data": json.dumps(data)}
                else:
                    yield {"event": "result", "data": json.dumps(item.model_dump(mode="json"))}
        except PipelineError as exc:
            _, code = pipeline_error_status(exc)
            error = ErrorBody(code=code, message=str(exc), trace_id=exc.trace_id)
            yield {"event": "error", "data": json.dumps(ErrorResponse(error=error).model_dump(mode="json"))}

    return EventSourceResponse(events(), ping=15)
