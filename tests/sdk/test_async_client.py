"""`AsyncClient` against the real app through `httpx.ASGITransport` (services injected, no lifespan)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from verifact import (
    AsyncClient,
    BadRequestError,
    NotFoundError,
    ServerError,
    StreamEvent,
    TooLargeError,
)

from graph.context import Context
from tests.pipeline_fakes import TEXT
from tests.sdk.harness import MAX_TEXT_CHARS, scorer_failing

T = TypeVar("T")


def run_with(app: FastAPI, scenario: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Run ``scenario`` with an `AsyncClient` over the app, in a fresh event loop."""

    async def main() -> T:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            async with AsyncClient(http_client=http, max_retries=0) as client:
                outcome = await scenario(client)
            assert not http.is_closed  # the injected client is its owner's to close
            return outcome

    return asyncio.run(main())


def test_verify(app_and_context: tuple[FastAPI, Context]) -> None:
    result = run_with(app_and_context[0], lambda c: c.verify(TEXT, include_trace=True))
    assert [c.verdict for c in result.claims] == ["SUPPORTED", "SUPPORTED"]
    assert result.trace is not None and result.trace.header.trace_id == result.trace_id


def test_verify_stream_yields_nodes_then_the_result(app_and_context: tuple[FastAPI, Context]) -> None:
    async def scenario(client: AsyncClient) -> list[StreamEvent]:
        return [event async for event in client.verify_stream(TEXT, top_k=1)]

    events = run_with(app_and_context[0], scenario)
    assert [e.node for e in events[:2]] == ["split", "detect"]
    assert events[-2].node == "report"
    assert events[-1].kind == "result"
    result = events[-1].result
    assert result is not None and all(len(c.evidence) == 1 for c in result.claims)


def test_a_failing_run_streams_an_error_event(app_and_context: tuple[FastAPI, Context]) -> None:
    app, context = app_and_context

    async def scenario(client: AsyncClient) -> list[StreamEvent]:
        return [event async for event in client.verify_stream(TEXT)]

    with scorer_failing(context, "classifier exploded"):
        events = run_with(app, scenario)
    assert events[-1].kind == "error"
    assert events[-1].error is not None and "classifier exploded" in events[-1].error.message


def test_predict(app_and_context: tuple[FastAPI, Context]) -> None:
    answer = run_with(app_and_context[0], lambda c: c.predict(["Prices rose 3 percent.", "Hi!"]))
    assert [p.check_worthy for p in answer.predictions] == [True, False]
    assert answer.threshold == 0.5


def test_traces_are_listed_iterated_read_and_deleted(app_and_context: tuple[FastAPI, Context]) -> None:
    async def scenario(client: AsyncClient) -> tuple[list[str], list[str], str, list[str]]:
        ids = [(await client.verify(TEXT)).trace_id for _ in range(3)]
        seen = [t.trace_id async for t in client.iter_traces(page_size=2)]
        text = (await client.get_trace(ids[0])).text
        await client.delete_trace(ids[0])
        with pytest.raises(NotFoundError):
            await client.get_trace(ids[0])
        after = [t.trace_id for t in (await client.list_traces(limit=10)).items]
        return ids, seen, text, after

    ids, seen, text, after = run_with(app_and_context[0], scenario)
    assert seen == ids[::-1]
    assert text == TEXT
    assert after == [ids[2], ids[1]]


def test_error_kinds(app_and_context: tuple[FastAPI, Context]) -> None:
    async def scenario(client: AsyncClient) -> list[tuple[type[Exception], int | None]]:
        caught: list[tuple[type[Exception], int | None]] = []
        attempts: list[Callable[[], Awaitable[object]]] = [
            lambda: client.verify(""),
            lambda: client.verify("x" * (MAX_TEXT_CHARS + 1)),
            lambda: client.get_trace("nope"),
            lambda: client.add_documents([{"text": "New evidence."}]),
        ]
        for attempt in attempts:
            try:
                await attempt()
            except (BadRequestError, TooLargeError, NotFoundError, ServerError) as exc:
                caught.append((type(exc), exc.status))
        return caught

    assert run_with(app_and_context[0], scenario) == [
        (BadRequestError, 422),
        (TooLargeError, 413),
        (NotFoundError, 404),
        (ServerError, 501),
    ]


def test_health_and_ready(app_and_context: tuple[FastAPI, Context]) -> None:
    async def scenario(client: AsyncClient) -> tuple[bool, bool]:
        return (await client.health()).ready, (await client.ready()).ready

    assert run_with(app_and_context[0], scenario) == (True, True)


def test_an_owned_http_client_is_closed_on_exit() -> None:
    async def main() -> bool:
        async with AsyncClient("http://127.0.0.1:9") as client:
            http = client._http
        return http.is_closed

    assert asyncio.run(main())
