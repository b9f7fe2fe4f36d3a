"""One exception class per failure kind, all under `VerifactError`."""

from __future__ import annotations

from typing import Any

import httpx


class VerifactError(Exception):
    """Base of every error the SDK raises.

    Attributes:
        message: What went wrong, for people.
        status: The HTTP status, or None when no answer came back.
        code: The server's machine-readable error code (``invalid_input``, ``not_found``, ...), if any.
        trace_id: The failed run's trace id, when the server stored one.
        details: Per-field problems of invalid input, as the server listed them.
        body: The answer's body: the parsed JSON, or the text when it was not JSON; None without one.
        response: The HTTP response, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        trace_id: str | None = None,
        details: list[dict[str, Any]] | None = None,
        body: Any = None,
        response: httpx.Response | None = None,
    ) -> None:
        """Keep every part of the failure as an attribute."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.trace_id = trace_id
        self.details = details or []
        self.body = body
        self.response = response

    def __str__(self) -> str:
        """The message, prefixed with the status and code when there are any."""
        prefix = " ".join(str(p) for p in (self.status, self.code) if p is not None)
        return f"{prefix}: {self.message}" if prefix else self.message


class APIConnectionError(VerifactError):
    """No usable answer: the server could not be reached, the connection broke, or a stream was cut."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class ResponseValidationError(VerifactError):
    """The server answered 2xx, but not with the shape this SDK expects."""


class APIStatusError(VerifactError):
    """The server answered with an error status (a subclass names the kind when it is known)."""


class BadRequestError(APIStatusError):
    """400 or 422: the request was malformed or its input invalid; retrying will not help."""


class AuthenticationError(APIStatusError):
    """401 or 403: the API key is missing, wrong, or not allowed to do this."""


class NotFoundError(APIStatusError):
    """404: no such trace (or route)."""


class ConflictError(APIStatusError):
    """409: the request conflicts with stored data (a document id reused for another text)."""


class TooLargeError(APIStatusError):
    """413: the text, the sentences, the documents or the body are over the server's limit."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried automatically up to ``max_retries``."""


class ServerError(APIStatusError):
    """A 5xx answer: the server failed."""


class UnavailableError(ServerError):
    """503: the server is loading, a dependency failed, or it cannot do this; retried automatically."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: BadRequestError,
    429: RateLimitError,
    503: UnavailableError,
}


def error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else APIStatusError


def error_from_response(response: httpx.Response) -> APIStatusError:
    """Build the exception for an error answer whose body has been read.

    The service answers ``{"error": {"code", "message", "details", "trace_id"}}``; anything else (a
    proxy's HTML page, an empty body) still gives the right class, with the text as the message.
    """
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = response.text or None
    error = body.get("error") if isinstance(body, dict) else None
    cls = error_class(response.status_code)
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        details = error.get("details")
        return cls(
            error["message"],
            status=response.status_code,
            code=error.get("code") if isinstance(error.get("code"), str) else None,
            trace_id=error.get("trace_id") if isinstance(error.get("trace_id"), str) else None,
            details=details if isinstance(details, list) else None,
            body=body,
            response=response,
        )
    text = body if isinstance(body, str) else ""
    message = text[:500] or response.reason_phrase or f"HTTP {response.status_code}"
    return cls(message, status=response.status_code, body=body, response=response)


def connection_error(exc: httpx.TransportError) -> APIConnectionError:
    """Wrap an httpx transport failure (the caller chains the original with ``from``)."""
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    return cls(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
