"""The request limits: sentences (413), top_k and max_claims (422), concurrency (429), deadline (503).

Each answer has the one error shape; a run stopped by a limit or its deadline leaves its partial trace,
marked with the reason. The pipeline's own part (stop after split, store on a deadline or a
cancellation, never overwrite a finished run) is tested on the pipeline directly at the end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.config import Settings
from graph.pipeline import NodeUpdate, Pipeline, RunDeadlineError, RunLimitError, RunLimits
from graph.report import RunTrace
from graph.tracestore import TraceQuery, open_trace_store
from tests.api.helpers import ALICE, BOB, SECURITY_HEADERS, assert_error, fake_app, parse_sse
from tests.pipeline_fakes import TEXT, KeywordScorer, OverlapSearcher, ScriptedJudge, fake_context


def _stored(store_path: Path, trace_id: str) -> RunTrace:
    trace = open_trace_store(str(store_path)).get(trace_id)
    assert trace is not None, f"trace {trace_id} was not stored"
    return trace


def _stream(client: TestClient, body: dict[str, Any]) -> list[tuple[str, Any]]:
    with client.stream("POST", "/verify/stream", json=body) as response:
        assert response.status_code == 200
        return parse_sse(response.iter_lines())


# Sentences per request ---------------------------------------------------------------------------


def test_more_sentences_than_allowed_get_413_and_a_partial_trace_with_the_reason(
    store_path: Path, scorer: KeywordScorer
) -> None:
    with TestClient(fake_app(store_path, Settings(max_sentences=3), scorer=scorer)) as client:
        error = assert_error(client.post("/verify", json={"text": TEXT}), 413, "too_large")

    assert "4 sentences; the limit is 3" in error["message"]
    trace = _stored(store_path, error["trace_id"])
    assert trace.header.status == "error"
    assert trace.header.status_reason == "the text has 4 sentences; the limit is 3"
    assert trace.path == ["split"] and trace.events[0].outputs["sentences"] == 4
    assert "limit is 3" in (trace.events[0].error or "")
    assert scorer.calls == []  # stopped before the classifier


def test_a_text_at_the_sentence_limit_runs(store_path: Path) -> None:
    with TestClient(fake_app(store_path, Settings(max_sentences=4))) as client:
        response = client.post("/verify", json={"text": TEXT})

    assert response.status_code == 200 and response.json()["summary"]["sentences"] == 4


def test_the_stream_ends_with_a_too_large_error_event_naming_the_partial_trace(store_path: Path) -> None:
    with TestClient(fake_app(store_path, Settings(max_sentences=2))) as client:
        events = _stream(client, {"text": TEXT})

    assert [name for name, _ in events] == ["error"]  # not even the split event went out
    error = events[0][1]["error"]
    assert error["code"] == "too_large" and "limit is 2" in error["message"]
    assert _stored(store_path, error["trace_id"]).header.status == "error"


# top_k and max_claims caps -----------------------------------------------------------------------


@pytest.mark.parametrize(("field", "cap"), [("top_k", 3), ("max_claims", 1)])
def test_top_k_and_max_claims_over_the_servers_caps_get_422_and_at_the_cap_pass(
    store_path: Path, scorer: KeywordScorer, field: str, cap: int
) -> None:
    settings = Settings(max_top_k=3, max_claims_cap=1)
    searcher = OverlapSearcher()
    with TestClient(fake_app(store_path, settings, scorer=scorer, searcher=searcher)) as client:
        over = client.post("/verify", json={"text": TEXT, field: cap + 1})
        with client.stream("POST", "/verify/stream", json={"text": TEXT, field: cap + 1}) as streamed:
            streamed.read()
        assert scorer.calls == []
        at = client.post("/verify", json={"text": TEXT, field: cap})
        unset = client.post("/verify", json={"text": TEXT})  # defaults 5 and 20, over both caps

    error = assert_error(over, 422, "invalid_input")
    assert error["message"] == f"{field}: Input should be less than or equal to {cap} on this server"
    assert error["details"][0]["loc"] == ["body", field]
    assert_error(streamed, 422, "invalid_input")
    assert at.status_code == 200 and unset.status_code == 200
    assert {k for _, k in searcher.queries} == {3}  # an unset top_k took the cap
    assert unset.json()["summary"]["checked"] == 1  # and so did an unset max_claims


def test_the_caps_cannot_be_set_above_the_schemas_ceilings() -> None:
    with pytest.raises(ValueError, match="max_top_k"):
        Settings(max_top_k=51)
    with pytest.raises(ValueError, match="max_claims_cap"):
        Settings(max_claims_cap=201)


# Concurrent requests per key ---------------------------------------------------------------------


def _keyed_slow_app(store_path: Path, *, per_key: int, delay_s: float) -> FastAPI:
    settings = Settings(
        api_keys=SecretStr(f"alice:{ALICE},bob:{BOB}"), max_concurrent_per_key=per_key, request_timeout_s=30
    )
    return fake_app(store_path, settings, llm=ScriptedJudge("slow-llm", delay_s=delay_s))


async def _until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def test_a_key_over_its_concurrent_requests_gets_429_with_retry_after(store_path: Path) -> None:
    app = _keyed_slow_app(store_path, per_key=2, delay_s=0.5)
    limiter = app.state.limiter

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            def post(key: str) -> Any:
                return client.post("/verify", json={"text": TEXT}, headers={"Authorization": f"Bearer {key}"})

            running = [asyncio.create_task(post(ALICE)) for _ in range(2)]
            await _until(lambda: limiter.active("key:alice") == 2)
            refused = await post(ALICE)
            other_key = await post(BOB)  # another key has its own slots
            done = await asyncio.gather(*running)
            assert limiter.active("key:alice") == 0  # released when the answers went out
            again = await post(ALICE)
            return done, refused, other_key, again

    done, refused, other_key, again = asyncio.run(scenario())

    assert [r.status_code for r in done] == [200, 200]
    error = assert_error(refused, 429, "too_many_requests")
    assert refused.headers["retry-after"] == "1" and "limit is 2" in error["message"]
    assert all(name in refused.headers for name in SECURITY_HEADERS)
    assert other_key.status_code == 200 and again.status_code == 200


def test_a_stream_holds_its_slot_until_it_ends_and_keys_off_count_per_client(store_path: Path) -> None:
    settings = Settings(max_concurrent_per_key=1, request_timeout_s=30)
    app = fake_app(store_path, settings, llm=ScriptedJudge("slow-llm", delay_s=0.5))
    limiter = app.state.limiter

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            stream = asyncio.create_task(client.post("/verify/stream", json={"text": TEXT}))
            await _until(lambda: limiter.active("client:203.0.113.7") == 1)
            refused = await client.post("/predict", json={"sentences": ["Prices rose 4 percent."]})
            streamed = await stream
            after = await client.post("/predict", json={"sentences": ["Prices rose 4 percent."]})
            return streamed, refused, after

    streamed, refused, after = asyncio.run(scenario())

    assert "event: result" in streamed.text
    assert_error(refused, 429, "too_many_requests")
    assert after.status_code == 200


# The whole-request deadline ----------------------------------------------------------------------


def test_a_run_past_the_deadline_gets_503_and_its_partial_trace_is_stored(store_path: Path) -> None:
    settings = Settings(request_timeout_s=0.3)
    app = fake_app(store_path, settings, llm=ScriptedJudge("slow-llm", delay_s=5.0))
    with TestClient(app) as client:
        t0 = time.perf_counter()
        response = client.post("/verify", json={"text": TEXT})
        elapsed = time.perf_counter() - t0
        assert app.state.limiter.active("client:testclient") == 0

    error = assert_error(response, 503, "deadline_exceeded")
    assert "deadline exceeded after 0.3 s" in error["message"]
    assert elapsed < 4.0  # the 5 s judge was cut off
    trace = _stored(store_path, error["trace_id"])
    assert trace.header.status == "error"
    assert trace.header.status_reason == "deadline exceeded after 0.3 s"
    assert trace.path[:2] == ["split", "detect"] and "judge" not in trace.path


def test_a_stream_past_the_deadline_ends_with_an_error_event_and_a_stored_trace(store_path: Path) -> None:
    settings = Settings(request_timeout_s=0.3)
    with TestClient(fake_app(store_path, settings, llm=ScriptedJudge("slow-llm", delay_s=5.0))) as client:
        events = _stream(client, {"text": TEXT})

    names = [name for name, _ in events]
    assert names[:2] == ["node", "node"] and names[-1] == "error" and "result" not in names
    error = events[-1][1]["error"]
    assert error["code"] == "deadline_exceeded"
    assert _stored(store_path, error["trace_id"]).header.status_reason == "deadline exceeded after 0.3 s"


# The pipeline's part ---------------------------------------------------------------------------


def _pipeline(store_path: Path, *, delay_s: float = 0.0, **limits: Any) -> Pipeline:
    context = fake_context(store_path, llm=ScriptedJudge("slow-llm", delay_s=delay_s))
    return Pipeline(context, limits=RunLimits(**limits))


def test_the_pipeline_raises_typed_errors_for_its_limits(store_path: Path) -> None:
    with pytest.raises(RunLimitError) as limit:
        _pipeline(store_path, max_sentences=1).verify(TEXT)
    with pytest.raises(RunDeadlineError) as deadline:
        _pipeline(store_path, delay_s=5.0, timeout_s=0.2).verify(TEXT)

    assert (limit.value.limit, limit.value.actual, limit.value.maximum) == ("sentences", 4, 1)
    assert deadline.value.timeout_s == 0.2
    assert _stored(store_path, deadline.value.trace_id).header.status == "error"


def test_a_cancelled_run_stores_what_it_did_with_the_reason(store_path: Path) -> None:
    pipeline = _pipeline(store_path, delay_s=5.0)
    seen: list[str] = []

    async def scenario() -> None:
        async def run() -> None:
            async for item in pipeline.astream(TEXT):
                if isinstance(item, NodeUpdate):
                    seen.append(item.node)

        task = asyncio.create_task(run())
        await _until(lambda: "retrieve" in seen)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())

    [summary] = open_trace_store(str(store_path)).list(TraceQuery()).items
    trace = _stored(store_path, summary.trace_id)
    assert trace.header.status == "error"
    assert (trace.header.status_reason or "").startswith("cancelled before the run finished")
    assert {"split", "detect", "retrieve"} <= set(trace.path) and "judge" not in trace.path


def test_an_abandoned_stream_stores_a_partial_trace_but_a_finished_one_is_kept_whole(
    store_path: Path,
) -> None:
    pipeline = _pipeline(store_path)

    async def stop_after(node: str) -> None:
        stream = pipeline.astream(TEXT)
        async for item in stream:
            if isinstance(item, NodeUpdate) and item.node == node:
                break
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(stop_after("detect"))
    asyncio.run(stop_after("report"))  # report has stored the run: leaving now must not undo it

    page = open_trace_store(str(store_path)).list(TraceQuery())
    statuses = [(_stored(store_path, t.trace_id).header.status, t.summary.checked) for t in page.items]
    assert statuses == [("ok", 2), ("error", 0)]  # newest first
