"""What the sync and async clients share: request building, the retry policy, response parsing."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from verifact._version import __version__
from verifact.errors import ResponseValidationError, error_from_response
from verifact.models import Document, Health

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
"""Where `verifact serve` listens by default."""
INITIAL_BACKOFF_S = 0.5
"""The first retry waits about this long; each further one about twice as long."""
MAX_BACKOFF_S = 8.0
"""The longest computed backoff between two attempts."""
MAX_RETRY_AFTER_S = 60.0
"""A server's ``Retry-After`` is honoured up to this many seconds."""
RETRY_STATUSES = frozenset({429, 503})
"""Statuses that say "try again later"; every other error status is final."""

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call:
    """One API call, independent of the transport that sends it."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str | int] = field(default_factory=dict)
    stream: bool = False
    """Ask for Server-Sent Events and read the body incrementally."""
    accept_statuses: frozenset[int] = frozenset()
    """Error statuses whose body is still the answer (readiness's 503)."""
    retry: bool = True
    """Whether 429, 503 and transport failures are retried."""


def verify_call(
    text: str,
    *,
    threshold: float | None,
    top_k: int | None,
    max_claims: int | None,
    judge: str | None,
    include_trace: bool,
    stream: bool,
) -> Call:
    """POST /verify or /verify/stream; options left as None take the server's defaults."""
    options = {"threshold": threshold, "top_k": top_k, "max_claims": max_claims, "judge": judge}
    body: dict[str, Any] = {"text": text, **{k: v for k, v in options.items() if v is not None}}
    body["include_trace"] = include_trace
    return Call("POST", "/verify/stream" if stream else "/verify", json=body, stream=stream)


def predict_call(sentences: Sequence[str], threshold: float | None) -> Call:
    """POST /predict."""
    if isinstance(sentences, str):
        raise TypeError("sentences must be a sequence of strings, not one string")
    body: dict[str, Any] = {"sentences": list(sentences)}
    if threshold is not None:
        body["threshold"] = threshold
    return Call("POST", "/predict", json=body)


def list_traces_call(
    *,
    limit: int,
    cursor: str | None,
    verdict: str | None,
    status: str | None,
    q: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Call:
    """GET /traces with only the filters that were given."""
    params: dict[str, str | int] = {"limit": limit}
    for name, value in (("cursor", cursor), ("verdict", verdict), ("status", status), ("q", q)):
        if value is not None:
            params[name] = value
    for name, when in (("since", since), ("until", until)):
        if when is not None:
            params[name] = when.isoformat()
    return Call("GET", "/traces", params=params)


def trace_call(method: str, trace_id: str) -> Call:
    """GET or DELETE /traces/{trace_id}, the id escaped so it cannot leave its path segment."""
    if not trace_id:
        raise ValueError("trace_id must not be empty")
    return Call(method, f"/traces/{quote(trace_id, safe='')}")


def documents_call(documents: Iterable[Document | Mapping[str, Any]]) -> Call:
    """POST /documents; mappings are checked against `Document` before anything is sent."""
    docs = [d if isinstance(d, Document) else Document.model_validate(d) for d in documents]
    if not docs:
        raise ValueError("documents must not be empty")
    return Call("POST", "/documents", json={"documents": [d.model_dump(exclude_none=True) for d in docs]})


def health_call(path: str) -> Call:
    """GET /healthz, or GET /readyz whose 503 still carries the answer (and is not retried)."""
    if path == "/readyz":
        return Call("GET", path, accept_statuses=frozenset({503}), retry=False)
    return Call("GET", path)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


def retry_delay(attempt: int, response: httpx.Response | None) -> float:
    """How long to wait before retry number ``attempt + 1``.

    The server's ``Retry-After`` wins, capped at `MAX_RETRY_AFTER_S`; otherwise exponential backoff
    with jitter (half fixed, half random) so that many clients do not retry in step.
    """
    if response is not None:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
    backoff = min(INITIAL_BACKOFF_S * 2.0**attempt, MAX_BACKOFF_S)
    return backoff / 2 + random.uniform(0, backoff / 2)


def parse(model: type[M], response: httpx.Response) -> M:
    """The response's JSON as ``model``.

    Raises:
        ResponseValidationError: the body is not JSON of that shape.
    """
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError) as exc:
        raise ResponseValidationError(
            f"the answer to {response.request.method} {response.request.url.path} is not a "
            f"{model.__name__}: {exc}",
            status=response.status_code,
            body=response.text,
            response=response,
        ) from exc


def parse_health(response: httpx.Response) -> Health:
    """A `Health` answer; a 503 that is not one (a proxy's, say) raises as an error."""
    if response.is_success:
        return parse(Health, response)
    try:
        return Health.model_validate(response.json())
    except (ValueError, ValidationError):
        raise error_from_response(response) from None


class BaseClient:
    """Configuration and request building common to `Client` and `AsyncClient`."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        max_retries: int,
        http_client: httpx.Client | httpx.AsyncClient | None,
    ) -> None:
        """Resolve the base URL and the headers every request carries."""
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        injected = str(http_client.base_url) if http_client is not None else ""
        self.base_url = (base_url or injected or DEFAULT_BASE_URL).rstrip("/")
        """The service's root URL."""
        self.max_retries = max_retries
        """Retries after the first attempt, for 429, 503 and transport failures."""
        self._headers = {"User-Agent": f"verifact-python/{__version__}", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        """The class and base URL, never the API key."""
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _build(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        headers = dict(self._headers)
        if call.stream:
            headers["Accept"] = "text/event-stream"
        return http.build_request(
            call.method,
            self.base_url + call.path,
            json=call.json,
            params=dict(call.params) or None,
            headers=headers,
        )

    def _retries(self, call: Call) -> int:
        return self.max_retries if call.retry else 0

    @staticmethod
    def _is_answer(response: httpx.Response, call: Call) -> bool:
        return response.is_success or response.status_code in call.accept_statuses
