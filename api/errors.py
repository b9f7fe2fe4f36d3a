"""One JSON error shape for every failure, mapped once from each package's exceptions."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorBody, ErrorResponse
from graph.context import JudgeUnavailableError
from graph.errors import TraceCursorError, TraceStoreError
from graph.pipeline import PipelineError, RunDeadlineError, RunLimitError

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


_UNPARSED_BODY = "There was an error parsing the body"
"""FastAPI's message when reading a JSON body raised something other than a JSON syntax error."""


class APIError(Exception):
    """An error answer: status, code and message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        trace_id: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers
        self.trace_id = trace_id
        self.details = details


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    trace_id: str | None = None,
) -> JSONResponse:
    """The JSON error answer."""
    body = ErrorResponse(
        error=ErrorBody(code=code, message=message, details=details or [], trace_id=trace_id)
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def pipeline_error_status(exc: PipelineError) -> tuple[int, str]:
    """The HTTP status and error code of a run that did not finish."""
    if isinstance(exc, RunLimitError):
        return 413, "too_large"
    if isinstance(exc, RunDeadlineError):
        return 503, "deadline_exceeded"
    return 503, "unavailable"


def _clean(errors: list[Any]) -> list[dict[str, Any]]:
    # pydantic's entries may carry the offending input and exception objects; keep what a client needs.
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error shape; nothing escapes as a stack trace."""

    @app.exception_handler(APIError)
    async def _api(_: Request, exc: APIError) -> JSONResponse:
        return error_response(
            exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers, trace_id=exc.trace_id
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _clean(list(exc.errors()))
        first = details[0] if details else {"loc": [], "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":
            message = f"the body is not valid JSON: {first['msg']}"
            return error_response(422, "invalid_input", message, details=details)
        loc = first["loc"][1:] if first["loc"][:1] == ["body"] else first["loc"]
        where = ".".join(loc) or "body"
        return error_response(422, "invalid_input", f"{where}: {first['msg']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 400 and exc.detail == _UNPARSED_BODY and exc.__cause__ is not None:
            # FastAPI's 400 for a body json cannot decode (not UTF-8, nested too deep), where a body that
            # is not JSON gets 422: one answer for both, as the API promises for invalid input.
            message = f"the body is not valid JSON: {' '.join(str(exc.__cause__).split())}"
            return error_response(422, "invalid_input", message)
        return error_response(
            status, _CODES.get(status, "error"), str(exc.detail), headers=dict(exc.headers or {})
        )

    @app.exception_handler(JudgeUnavailableError)
    async def _judge(_: Request, exc: JudgeUnavailableError) -> JSONResponse:
        return error_response(422, "invalid_input", str(exc))

    @app.exception_handler(TraceCursorError)
    async def _cursor(_: Request, exc: TraceCursorError) -> JSONResponse:
        return error_response(422, "invalid_input", str(exc))

    @app.exception_handler(TraceStoreError)
    async def _store(_: Request, exc: TraceStoreError) -> JSONResponse:
        logger.error("trace store: %s", exc)
        return error_response(
            503, "unavailable", "the trace store is unavailable", headers={"Retry-After": "5"}
        )

    @app.exception_handler(PipelineError)
    async def _pipeline(_: Request, exc: PipelineError) -> JSONResponse:
        status, code = pipeline_error_status(exc)
        # A limit or a deadline will stop the same request again; a failed dependency may recover.
        headers = None if isinstance(exc, RunLimitError | RunDeadlineError) else {"Retry-After": "5"}
        return error_response(status, code, str(exc), headers=headers, trace_id=exc.trace_id)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(500, "internal", "internal error; the server log has the details")
