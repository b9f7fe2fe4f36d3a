"""`Client` against a real uvicorn server running the real app with fakes at its seams."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from verifact import (
    APIConnectionError,
    BadRequestError,
    Client,
    Document,
    NotFoundError,
    RunTrace,
    ServerError,
    TooLargeError,
    UnavailableError,
    VerifyResult,
)

from graph.context import Context
from tests.pipeline_fakes import TEXT
from tests.sdk.harness import MAX_TEXT_CHARS, LiveServer, scorer_failing


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[Client]:
    """A client of the live server that does not retry (failures show at once)."""
    with Client(live_server.url, max_retries=0) as c:
        yield c


def tagged(tag: str) -> str:
    """`TEXT` with a unique tail, so a test finds its own runs among the module's."""
    return f"{TEXT} Tag {tag}."


def test_verify_returns_claims_with_verdicts_and_evidence(client: Client) -> None:
    result = client.verify(TEXT)
    assert isinstance(result, VerifyResult)
    assert result.status == "ok"
    assert [s.index for s in result.sentences] == [0, 1, 2, 3]
    assert [c.claim_id for c in result.claims] == ["c0", "c2"]
    first = result.claims[0]
    assert first.verdict == "SUPPORTED"
    assert first.citations == ["d1"]
    assert first.evidence[0].id == "d1" and first.evidence[0].cited
    assert first.detail is not None and first.detail.label == "SUPPORTED"
    assert result.summary.supported == 2 and result.summary.checked == 2
    assert result.trace is None


def test_verify_options_reach_the_server(client: Client) -> None:
    result = client.verify(TEXT, threshold=0.95, top_k=2, max_claims=1, judge="nli", include_trace=True)
    assert result.threshold == 0.95
    assert len(result.claims) == 1
    assert len(result.claims[0].evidence) == 2
    assert result.trace is not None
    assert result.trace.header.options["top_k"] == 2
    assert result.trace.header.options["judge"] == "nli"
    assert result.trace.path == ["split", "detect", "retrieve", "judge", "report"]


def test_verify_stream_yields_node_events_in_order_then_the_result(client: Client) -> None:
    events = list(client.verify_stream(TEXT))
    assert [e.kind for e in events] == ["node"] * (len(events) - 1) + ["result"]
    nodes = [e.node for e in events[:-1]]
    assert nodes[:2] == ["split", "detect"]
    assert nodes[-1] == "report"
    assert sorted(nodes[2:-1]) == ["judge", "judge", "retrieve", "retrieve"]
    # every claim is retrieved before it is judged
    for claim in ("c0", "c2"):
        order = [(e.node, e.events[0].claim_id) for e in events[:-1]]
        assert order.index(("retrieve", claim)) < order.index(("judge", claim))
    assert all(e.events and e.events[0].node == e.node for e in events[:-1])
    result = events[-1].result
    assert result is not None and result.summary.supported == 2
    assert client.get_trace(result.trace_id).header.trace_id == result.trace_id


def test_verify_stream_keeps_unicode_line_separators_inside_data(client: Client) -> None:
    # The result's JSON carries U+2028 and U+0085 unescaped; only CR and LF may split SSE lines.
    text = "Thank\u2028you all\x85for coming tonight. " + TEXT
    events = list(client.verify_stream(text))
    result = events[-1].result
    assert result is not None
    assert "\u2028" in "".join(s.text for s in result.sentences)
    assert client.get_trace(result.trace_id).text == text


def test_a_run_that_fails_midway_ends_the_stream_with_an_error_event(
    client: Client, live_server: LiveServer
) -> None:
    with scorer_failing(live_server.context):
        events = list(client.verify_stream(TEXT))
    assert events[-1].kind == "error"
    error = events[-1].error
    assert error is not None and error.code == "unavailable"
    assert "scorer broke" in error.message
    assert error.trace_id is not None
    assert client.get_trace(error.trace_id).header.status == "error"


def test_verify_refuses_a_run_that_fails_with_unavailable_and_its_trace_id(
    client: Client, live_server: LiveServer
) -> None:
    with scorer_failing(live_server.context), pytest.raises(UnavailableError) as info:
        client.verify(TEXT)
    assert info.value.status == 503 and info.value.code == "unavailable"
    assert info.value.trace_id is not None
    assert client.get_trace(info.value.trace_id).header.status == "error"


def test_predict_scores_sentences_in_order(client: Client) -> None:
    answer = client.predict(["Unemployment fell to 3.5 percent.", "Hello there."], threshold=0.6)
    assert [p.text for p in answer.predictions] == ["Unemployment fell to 3.5 percent.", "Hello there."]
    assert [p.check_worthy for p in answer.predictions] == [True, False]
    assert answer.threshold == 0.6


def test_predict_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        Client().predict("one sentence")


def test_traces_can_be_listed_read_and_deleted(client: Client) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [client.verify(tagged(tag)).trace_id for _ in range(3)]
    page = client.list_traces(limit=2, q=tag)
    assert [t.trace_id for t in page.items] == ids[::-1][:2]
    assert page.next_cursor is not None
    rest = client.list_traces(limit=2, q=tag, cursor=page.next_cursor)
    assert [t.trace_id for t in rest.items] == [ids[0]]
    assert [t.trace_id for t in client.iter_traces(page_size=1, q=tag)] == ids[::-1]
    trace = client.get_trace(ids[1])
    assert isinstance(trace, RunTrace) and trace.text == tagged(tag)
    client.delete_trace(ids[1])
    with pytest.raises(NotFoundError):
        client.get_trace(ids[1])
    assert [t.trace_id for t in client.iter_traces(q=tag)] == [ids[2], ids[0]]


def test_traces_filter_by_status(client: Client, live_server: LiveServer) -> None:
    tag = uuid.uuid4().hex[:8]
    ok = client.verify(tagged(tag)).trace_id
    with scorer_failing(live_server.context), pytest.raises(UnavailableError) as info:
        client.verify(tagged(tag))
    assert [t.trace_id for t in client.iter_traces(q=tag, status="error")] == [info.value.trace_id]
    assert [t.trace_id for t in client.iter_traces(q=tag, status="ok")] == [ok]


def test_unknown_trace_is_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError) as info:
        client.get_trace("does-not-exist")
    assert info.value.status == 404 and info.value.code == "not_found"
    with pytest.raises(NotFoundError):
        client.delete_trace("does-not-exist")


def test_a_trace_id_cannot_escape_its_path_segment(client: Client) -> None:
    # "../healthz" must reach /traces/..%2Fhealthz (refused), never /healthz.
    with pytest.raises((NotFoundError, BadRequestError)):
        client.get_trace("../healthz")


def test_empty_text_is_invalid_input(client: Client) -> None:
    with pytest.raises(BadRequestError) as info:
        client.verify("")
    assert info.value.status == 422 and info.value.code == "invalid_input"
    assert info.value.details and info.value.details[0]["loc"] == ["body", "text"]
    assert isinstance(info.value.body, dict) and "error" in info.value.body


def test_an_unknown_judge_is_invalid_input(client: Client) -> None:
    with pytest.raises(BadRequestError) as info:
        client.verify(TEXT, judge="llm")  # the fakes have no LLM judge
    assert info.value.status == 422


def test_text_over_the_limit_is_too_large(client: Client) -> None:
    text = "x" * (MAX_TEXT_CHARS + 1)
    with pytest.raises(TooLargeError) as info:
        client.verify(text)
    assert info.value.status == 413 and info.value.code == "too_large"
    with pytest.raises(TooLargeError):
        list(client.verify_stream(text))


def test_adding_documents_to_an_index_that_refuses_them_is_a_server_error(client: Client) -> None:
    # The fake searcher has no add_passages, so the server answers 501, which is not retried.
    with pytest.raises(ServerError) as info:
        client.add_documents([{"text": "Fresh evidence.", "title": "New"}, Document(text="More.")])
    assert info.value.status == 501 and not isinstance(info.value, UnavailableError)
    assert "does not accept documents" in info.value.message


def test_add_documents_checks_mappings_before_sending() -> None:
    with pytest.raises(ValueError):
        Client().add_documents([{"title": "no text"}])


def test_health_and_readiness(client: Client) -> None:
    health = client.health()
    assert health.status == "ok" and health.ready
    ready = client.ready()
    assert ready.ready and ready.status == "ready"
    assert ready.versions["verifact"] == "test"


def test_an_unreachable_server_fails_fast_with_a_connection_error(closed_port: int) -> None:
    started = time.monotonic()
    client = Client(f"http://127.0.0.1:{closed_port}", max_retries=0)
    with client, pytest.raises(APIConnectionError) as info:
        client.health()
    assert time.monotonic() - started < 5
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_an_unreachable_stream_fails_with_a_connection_error(closed_port: int) -> None:
    client = Client(f"http://127.0.0.1:{closed_port}", max_retries=0)
    with client, pytest.raises(APIConnectionError):
        next(client.verify_stream(TEXT))


def test_breaking_out_of_a_stream_releases_the_connection(client: Client) -> None:
    stream = client.verify_stream(TEXT)
    first = next(stream)
    stream.close()  # what leaving a for loop early does when the generator is collected
    assert first.kind == "node" and first.node == "split"
    assert client.health().ready  # the pool still serves requests


def test_the_sync_client_works_over_fastapis_test_client(
    app_and_context: tuple[FastAPI, Context],
) -> None:
    app, _ = app_and_context
    with TestClient(app) as http:
        with Client(http_client=http) as client:
            assert client.base_url == "http://testserver"
            result = client.verify(TEXT)
            assert client.get_trace(result.trace_id).summary.supported == 2
            events = list(client.verify_stream(TEXT))
            assert events[0].node == "split" and events[-1].kind == "result"
            with pytest.raises(NotFoundError):
                client.delete_trace(result.trace_id + "x")
        # leaving the SDK client's block leaves the injected client to its owner
        assert not http.is_closed
        assert http.get("/healthz").status_code == 200
