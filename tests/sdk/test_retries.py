"""Retries and backoff, against scripted transports: 429, 503 and transport failures only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from verifact import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    BadRequestError,
    Client,
    RateLimitError,
    UnavailableError,
)
from verifact._core import MAX_BACKOFF_S, MAX_RETRY_AFTER_S, parse_retry_after, retry_delay

from tests.sdk.scripted import HEALTH, Script, error


def test_503_is_retried_until_it_succeeds() -> None:
    script = Script(error(503), error(503), httpx.Response(200, json=HEALTH))
    client, slept = script.client(max_retries=2)
    assert client.health().ready
    assert len(script.requests) == 3
    assert len(slept) == 2


def test_retries_stop_after_max_retries_and_raise_the_last_error() -> None:
    script = Script(error(503, "unavailable"))
    client, slept = script.client(max_retries=3)
    with pytest.raises(UnavailableError) as info:
        client.health()
    assert len(script.requests) == 4 and len(slept) == 3
    assert info.value.code == "unavailable"


def test_max_retries_zero_sends_once() -> None:
    script = Script(error(429))
    client, slept = script.client(max_retries=0)
    with pytest.raises(RateLimitError):
        client.health()
    assert len(script.requests) == 1 and slept == []


def test_retry_after_is_honoured_and_capped() -> None:
    script = Script(
        error(429, headers={"Retry-After": "1.5"}),
        error(503, headers={"Retry-After": "3600"}),
        httpx.Response(200, json=HEALTH),
    )
    client, slept = script.client(max_retries=2)
    client.health()
    assert slept == [1.5, MAX_RETRY_AFTER_S]


def test_small_retry_after_values_are_really_waited() -> None:
    script = Script(error(429, headers={"Retry-After": "0.2"}), httpx.Response(200, json=HEALTH))
    with Client(http_client=httpx.Client(transport=httpx.MockTransport(script))) as client:
        started = time.monotonic()
        client.health()
        assert time.monotonic() - started >= 0.2
    assert len(script.requests) == 2


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    for attempt, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, MAX_BACKOFF_S)]:
        delays = [retry_delay(attempt, None) for _ in range(50)]
        assert all(base / 2 <= d <= base for d in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-4") == 0


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422, 500])
def test_other_errors_are_never_retried(status: int) -> None:
    script = Script(error(status))
    client, slept = script.client(max_retries=5)
    with pytest.raises(APIStatusError) as info:
        client.verify("text")
    assert info.value.status == status
    assert len(script.requests) == 1 and slept == []


def test_connection_errors_are_retried_then_raised() -> None:
    script = Script(httpx.ConnectError("refused"))
    client, slept = script.client(max_retries=2)
    with pytest.raises(APIConnectionError) as info:
        client.health()
    assert len(script.requests) == 3 and len(slept) == 2
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert not isinstance(info.value, APITimeoutError)


def test_a_connection_error_then_success_recovers() -> None:
    script = Script(httpx.ReadError("reset"), httpx.Response(200, json=HEALTH))
    client, _ = script.client(max_retries=1)
    assert client.health().status == "ok"


def test_timeouts_raise_api_timeout_error() -> None:
    script = Script(httpx.ReadTimeout("slow"))
    client, _ = script.client(max_retries=0)
    with pytest.raises(APITimeoutError):
        client.health()


def test_the_stream_is_retried_before_it_starts() -> None:
    body = 'event: result\ndata: {"trace_id": "t", "status": "ok", "threshold": 0.5, "sentences": [],'
    body += ' "claims": [], "duration_ms": 1, "summary": {"sentences": 0, "check_worthy": 0, "checked": 0,'
    body += ' "supported": 0, "refuted": 0, "not_enough_info": 0, "errors": 0}}\n\n'
    ok = httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
    script = Script(error(503), ok)
    client, slept = script.client(max_retries=1)
    events = list(client.verify_stream("text"))
    assert [e.kind for e in events] == ["result"]
    assert len(script.requests) == 2 and len(slept) == 1
    assert script.requests[0].headers["accept"] == "text/event-stream"


def test_readiness_answers_503_as_not_ready_without_retrying() -> None:
    not_ready = httpx.Response(503, json={"status": "loading", "ready": False, "reason": "loading models"})
    script = Script(not_ready)
    client, slept = script.client(max_retries=3)
    health = client.ready()
    assert (health.ready, health.reason) == (False, "loading models")
    assert len(script.requests) == 1 and slept == []


def test_the_async_client_retries_the_same_way() -> None:
    script = Script(error(503, headers={"Retry-After": "0.01"}), httpx.ConnectError("x"), error(422))
    slept: list[float] = []

    async def main() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(script), base_url="http://svc")
        async with http, AsyncClient(http_client=http, max_retries=5) as client:
            record: Callable[[float], None] = slept.append

            async def sleep(seconds: float) -> None:
                record(seconds)

            client._sleep = sleep  # type: ignore[method-assign]
            with pytest.raises(BadRequestError):
                await client.verify("text")

    asyncio.run(main())
    assert len(script.requests) == 3  # 503, connection error, then a final 422
    assert slept[0] == 0.01 and len(slept) == 2
