"""Requests and answers, against scripted transports: error mapping, headers, URLs, ownership."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from verifact import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    TooLargeError,
    UnavailableError,
    VerifactError,
)

from tests.sdk.scripted import HEALTH, Script, error


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (405, APIStatusError),
        (409, ConflictError),
        (413, TooLargeError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, UnavailableError),
    ],
)
def test_each_status_has_its_exception(status: int, cls: type[VerifactError]) -> None:
    client, _ = Script(error(status, "some_code")).client(max_retries=0)
    with pytest.raises(cls) as info:
        client.get_trace("abc")
    assert type(info.value) is cls
    assert (info.value.status, info.value.code, info.value.message) == (
        status,
        "some_code",
        "some_code happened",
    )


def test_an_error_that_is_not_the_service_shape_still_maps_by_status() -> None:
    client, _ = Script(httpx.Response(502, text="<html>Bad Gateway</html>")).client(max_retries=0)
    with pytest.raises(ServerError) as info:
        client.health()
    assert info.value.code is None
    assert info.value.message == "<html>Bad Gateway</html>"
    assert info.value.body == "<html>Bad Gateway</html>"


def test_a_2xx_answer_of_the_wrong_shape_is_a_response_validation_error() -> None:
    client, _ = Script(httpx.Response(200, json={"unexpected": True})).client()
    with pytest.raises(ResponseValidationError, match="not a Health"):
        client.health()


def test_newer_server_fields_are_kept_not_refused() -> None:
    client, _ = Script(httpx.Response(200, json={**HEALTH, "uptime_s": 12})).client()
    health = client.health()
    assert health.model_extra == {"uptime_s": 12}


def test_requests_carry_the_api_key_options_and_escaped_ids() -> None:
    script = Script(httpx.Response(200, json={"items": [], "next_cursor": None}))
    client, _ = script.client(api_key="sk-test")
    client.list_traces(limit=5, verdict="REFUTED", q="tax", since=datetime(2025, 1, 2, tzinfo=UTC))
    request = script.requests[0]
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["user-agent"].startswith("verifact-python/")
    assert request.url.path == "/traces"
    assert dict(request.url.params) == {
        "limit": "5",
        "verdict": "REFUTED",
        "q": "tax",
        "since": "2025-01-02T00:00:00+00:00",
    }
    assert "sk-test" not in repr(client)


def test_verify_sends_only_the_options_given() -> None:
    script = Script(error(422))
    client, _ = script.client()
    with pytest.raises(BadRequestError):
        client.verify("Some text.", top_k=3)
    assert json.loads(script.requests[0].content) == {
        "text": "Some text.",
        "top_k": 3,
        "include_trace": False,
    }


def test_no_authorization_header_without_a_key() -> None:
    script = Script(httpx.Response(200, json=HEALTH))
    client, _ = script.client()
    client.health()
    assert "authorization" not in script.requests[0].headers


def test_an_explicit_base_url_wins_over_the_injected_clients() -> None:
    script = Script(httpx.Response(200, json=HEALTH))
    http = httpx.Client(transport=httpx.MockTransport(script), base_url="http://injected")
    Client("http://explicit:9000/root/", http_client=http).health()
    assert str(script.requests[0].url) == "http://explicit:9000/root/healthz"
    assert Client().base_url == "http://127.0.0.1:8000"


def test_an_owned_client_is_closed_and_an_injected_one_is_not() -> None:
    injected = httpx.Client(transport=httpx.MockTransport(Script(httpx.Response(200, json=HEALTH))))
    with Client(http_client=injected) as client:
        client.health()
    assert not injected.is_closed
    with Client() as owned:
        http = owned._http
    assert http.is_closed


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError):
        Client(max_retries=-1)


class Frames(httpx.SyncByteStream):
    """A response body that yields ``frames`` and then, optionally, fails like a dropped connection."""

    def __init__(self, frames: list[bytes], fail: Exception | None = None) -> None:
        self.frames = frames
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        yield from self.frames
        if self.fail is not None:
            raise self.fail


NODE_FRAME = b'event: node\ndata: {"node": "split", "events": []}\n\n'


def test_a_stream_cut_midway_is_a_connection_error_and_is_not_retried() -> None:
    script = Script(httpx.Response(200, stream=Frames([NODE_FRAME], httpx.ReadError("reset"))))
    client, slept = script.client(max_retries=3)
    events = client.verify_stream("text")
    assert next(events).node == "split"
    with pytest.raises(APIConnectionError) as info:
        next(events)
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert len(script.requests) == 1 and slept == []


def test_a_stream_that_ends_without_a_result_is_a_connection_error() -> None:
    client, _ = Script(httpx.Response(200, stream=Frames([NODE_FRAME, b": ping\n\n"]))).client()
    with pytest.raises(APIConnectionError, match="before the run's result"):
        list(client.verify_stream("text"))
