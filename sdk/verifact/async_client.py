"""`AsyncClient`: the asyncio client of the verifact HTTP API (`Client`'s twin)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from verifact._core import (
    RETRY_STATUSES,
    BaseClient,
    Call,
    documents_call,
    health_call,
    list_traces_call,
    parse,
    parse_health,
    predict_call,
    retry_delay,
    trace_call,
    verify_call,
)
from verifact._sse import EventStream
from verifact.errors import connection_error, error_from_response
from verifact.models import (
    Document,
    DocumentsResponse,
    Health,
    PredictResponse,
    RunTrace,
    StreamEvent,
    TracePage,
    TraceSummary,
    VerifyResult,
)


class AsyncClient(BaseClient):
    """Talks to a verifact server from asyncio code; use ``async with``, or await `aclose`.

    Args:
        base_url: The server's root URL. Default: the injected ``http_client``'s base URL if it has
            one, else ``http://127.0.0.1:8000``.
        api_key: Sent as ``Authorization: Bearer <api_key>``.
        timeout: Seconds per request (connect, read, write, pool); unused with an injected client,
            which keeps its own.
        max_retries: Retries after the first attempt on 429, 503 and transport failures, with
            exponential backoff and jitter, or the server's ``Retry-After``. Other errors are final.
        http_client: An ``httpx.AsyncClient`` to send with (proxies, custom transports, tests); the caller
            keeps ownership and closes it.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 60.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """See the class docstring."""
        super().__init__(base_url, api_key, max_retries, http_client)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)

    async def verify(
        self,
        text: str,
        *,
        threshold: float | None = None,
        top_k: int | None = None,
        max_claims: int | None = None,
        judge: str | None = None,
        include_trace: bool = False,
    ) -> VerifyResult:
        """Find the check-worthy claims in ``text`` and judge each one against the evidence index.

        Args:
            text: The text to check.
            threshold: Check-worthiness cut-off in [0, 1]; None: the classifier's tuned threshold.
            top_k: Evidence passages per claim; None: the server's default (5).
            max_claims: Claims checked at most; None: the server's default (20).
            judge: "auto", "llm" or "nli"; None: "auto".
            include_trace: Return the run's full trace in `VerifyResult.trace`.

        Raises:
            BadRequestError: invalid options, or a judge the server does not have.
            TooLargeError: the text is over the server's limit.
            UnavailableError: the server is loading or the run failed (after retries).
        """
        call = verify_call(
            text,
            threshold=threshold,
            top_k=top_k,
            max_claims=max_claims,
            judge=judge,
            include_trace=include_trace,
            stream=False,
        )
        return parse(VerifyResult, await self._send(call))

    async def verify_stream(
        self,
        text: str,
        *,
        threshold: float | None = None,
        top_k: int | None = None,
        max_claims: int | None = None,
        judge: str | None = None,
        include_trace: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        """`verify`, event by event: a ``node`` event per node run, then ``result`` (or ``error``).

        The request is sent when the first event is asked for; errors before the stream starts raise
        as in `verify`. A run that fails midway ends with an ``error`` event (its ``error.trace_id``
        names the stored trace) rather than an exception. Arguments as in `verify`.

        Raises:
            APIConnectionError: the connection broke, or the stream ended without a result.
        """
        call = verify_call(
            text,
            threshold=threshold,
            top_k=top_k,
            max_claims=max_claims,
            judge=judge,
            include_trace=include_trace,
            stream=True,
        )
        response = await self._send(call)
        stream = EventStream()
        try:
            async for chunk in response.aiter_bytes():
                for event in stream.feed(chunk):
                    yield event
                if stream.finished:
                    return
            for event in stream.close():
                yield event
        except httpx.TransportError as exc:
            raise connection_error(exc) from exc
        finally:
            await response.aclose()

    async def predict(self, sentences: Sequence[str], *, threshold: float | None = None) -> PredictResponse:
        """Score sentences for check-worthiness, in order (the classifier alone).

        Args:
            sentences: The sentences to score.
            threshold: Cut-off for ``check_worthy``; None: the classifier's tuned threshold.
        """
        return parse(PredictResponse, await self._send(predict_call(sentences, threshold)))

    async def get_trace(self, trace_id: str) -> RunTrace:
        """One run's whole trace.

        Raises:
            NotFoundError: no such trace, or the server keeps none.
        """
        return parse(RunTrace, await self._send(trace_call("GET", trace_id)))

    async def list_traces(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
        verdict: str | None = None,
        status: str | None = None,
        q: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TracePage:
        """One page of recent runs, newest first; pass ``next_cursor`` back as ``cursor``.

        Args:
            limit: Runs per page (1 to 200).
            cursor: Where the previous page ended.
            verdict: Only runs with a claim of this verdict (SUPPORTED, REFUTED, NOT_ENOUGH_INFO).
            status: Only runs of this status (ok, partial, error).
            q: Only runs whose input contains this text.
            since: Only runs created at or after this time.
            until: Only runs created before this time.
        """
        call = list_traces_call(
            limit=limit, cursor=cursor, verdict=verdict, status=status, q=q, since=since, until=until
        )
        return parse(TracePage, await self._send(call))

    async def iter_traces(
        self,
        *,
        page_size: int = 50,
        verdict: str | None = None,
        status: str | None = None,
        q: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncIterator[TraceSummary]:
        """Every matching run, newest first, fetching pages as needed; filters as in `list_traces`."""
        cursor: str | None = None
        while True:
            page = await self.list_traces(
                limit=page_size, cursor=cursor, verdict=verdict, status=status, q=q, since=since, until=until
            )
            for item in page.items:
                yield item
            if page.next_cursor is None or not page.items:
                return
            cursor = page.next_cursor

    async def delete_trace(self, trace_id: str) -> None:
        """Delete one run's trace.

        Raises:
            NotFoundError: no such trace.
        """
        await self._send(trace_call("DELETE", trace_id))

    async def add_documents(self, documents: Iterable[Document | Mapping[str, Any]]) -> DocumentsResponse:
        """Add documents to the evidence index; exact repeats are skipped.

        Args:
            documents: `Document` models or mappings of the same fields (``text`` required).

        Raises:
            ConflictError: a document id is already used for another text.
            TooLargeError: more documents than the server takes at once.
            UnavailableError: the server's index does not accept documents.
        """
        return parse(DocumentsResponse, await self._send(documents_call(documents)))

    async def health(self) -> Health:
        """Liveness: the server answers (``ready`` says whether it has loaded its models)."""
        return parse_health(await self._send(health_call("/healthz")))

    async def ready(self) -> Health:
        """Readiness: ``ready`` is True once models and index are loaded, else ``reason`` says why."""
        return parse_health(await self._send(health_call("/readyz")))

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was injected (then its owner closes it)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        """Use as ``async with AsyncClient(...) as client:``."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the client."""
        await self.aclose()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _send(self, call: Call) -> httpx.Response:
        """Send ``call``, retrying what can be retried; return the answer or raise its error."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._http.send(self._build(self._http, call), stream=call.stream)
                if self._is_answer(response, call):
                    return response
                if call.stream:
                    await response.aread()
            except httpx.TransportError as exc:
                if response is not None:
                    await response.aclose()
                if attempt >= self._retries(call):
                    raise connection_error(exc) from exc
            else:
                await response.aclose()
                if response.status_code not in RETRY_STATUSES or attempt >= self._retries(call):
                    raise error_from_response(response)
            await self._sleep(retry_delay(attempt, response))
            attempt += 1
