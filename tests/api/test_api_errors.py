"""Every error answer has the one JSON shape: 400, 404, 405, 413, 422, 500 and 503, loading included."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from graph.services import LoadedServices
from tests.api.helpers import assert_error, fake_app
from tests.pipeline_fakes import TEXT, KeywordScorer, OverlapSearcher, fake_context


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({}, "text"),
        ({"text": 42}, "text"),
        ({"text": TEXT, "colour": "red"}, "colour"),
        ({"text": TEXT, "top_k": 0}, "top_k"),
        ({"text": TEXT, "top_k": 51}, "top_k"),
        ({"text": TEXT, "max_claims": 0}, "max_claims"),
        ({"text": TEXT, "threshold": 1.5}, "threshold"),
        ({"text": TEXT, "judge": "gpt"}, "judge"),
    ],
)
def test_invalid_verify_bodies_get_422_naming_the_field(
    client: TestClient, scorer: KeywordScorer, body: dict[str, Any], field: str
) -> None:
    error = assert_error(client.post("/verify", json=body), 422, "invalid_input")

    assert error["message"].startswith(f"{field}: ")
    assert error["details"] and error["details"][0]["loc"] == ["body", field]
    assert set(error["details"][0]) == {"loc", "msg", "type"}  # never the offending input echoed back
    assert scorer.calls == []


def test_a_malformed_json_body_gets_422(client: TestClient) -> None:
    response = client.post("/verify", content=b'{"text": ', headers={"content-type": "application/json"})

    error = assert_error(response, 422, "invalid_input")
    assert "JSON" in error["message"]
    assert error["details"][0]["type"] == "json_invalid"


def test_a_text_over_max_text_chars_gets_413_and_one_at_the_limit_passes(store_path: Path) -> None:
    with TestClient(fake_app(store_path, Settings(max_text_chars=len(TEXT) - 1))) as client:
        error = assert_error(client.post("/verify", json={"text": TEXT}), 413, "too_large")
        with client.stream("POST", "/verify/stream", json={"text": TEXT}) as response:
            response.read()
            assert_error(response, 413, "too_large")
    assert f"{len(TEXT)} characters" in error["message"] and str(len(TEXT) - 1) in error["message"]

    with TestClient(fake_app(store_path, Settings(max_text_chars=len(TEXT)))) as client:
        assert client.post("/verify", json={"text": TEXT}).status_code == 200


def test_a_body_over_max_body_bytes_gets_413_from_its_content_length(
    store_path: Path, scorer: KeywordScorer
) -> None:
    body = json.dumps({"text": "word " * 300}).encode()
    assert len(body) > 1024
    with TestClient(fake_app(store_path, Settings(max_body_bytes=1024), scorer=scorer)) as client:
        response = client.post("/verify", content=body, headers={"content-type": "application/json"})
        bad_length = client.post(
            "/predict",
            content=b'{"sentences": ["a"]}',
            headers={"content-type": "application/json", "content-length": "lots"},
        )

    error = assert_error(response, 413, "too_large")
    assert str(len(body)) in error["message"] and "1024" in error["message"]
    assert_error(bad_length, 400, "bad_request")
    assert scorer.calls == []


def test_a_chunked_body_over_max_body_bytes_gets_413_too(store_path: Path, scorer: KeywordScorer) -> None:
    body = json.dumps({"text": TEXT * 20}).encode()
    assert len(body) > 2048

    def chunks() -> Any:
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    settings = Settings(max_body_bytes=1024, max_text_chars=100_000)
    with TestClient(fake_app(store_path, settings, scorer=scorer)) as client:
        response = client.post("/verify", content=chunks(), headers={"content-type": "application/json"})

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_error(response, 413, "too_large")


def test_unknown_traces_routes_and_methods_get_the_error_shape(client: TestClient) -> None:
    missing = assert_error(client.get("/traces/0123abcd"), 404, "not_found")
    assert "0123abcd" in missing["message"]
    assert_error(client.delete("/traces/0123abcd"), 404, "not_found")
    assert_error(client.get("/no/such/route"), 404, "not_found")
    assert_error(client.delete("/healthz"), 405, "method_not_allowed")
    assert_error(client.get("/traces/not.an.id"), 422, "invalid_input")


def _wait_until_not_loading(client: TestClient, timeout_s: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        ready = client.get("/readyz")
        if ready.json()["status"] != "loading" or time.monotonic() > deadline:
            return ready
        time.sleep(0.05)


def test_while_loading_every_pipeline_route_answers_503_with_retry_after(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def slow_load(_config: Any) -> LoadedServices:
        release.wait(30)
        return LoadedServices(fake_context(store_path), [])

    monkeypatch.setattr("api.services.load_services", slow_load)
    with TestClient(create_app(Settings(trace_db=str(store_path)))) as client:
        try:
            ready = client.get("/readyz")
            verify = client.post("/verify", json={"text": TEXT})
            predict = client.post("/predict", json={"sentences": ["a"]})
            traces = client.get("/traces")
            health = client.get("/healthz")
        finally:
            release.set()
        after = _wait_until_not_loading(client)
        verified = client.post("/verify", json={"text": TEXT})

    assert ready.status_code == 503
    assert ready.json()["status"] == "loading" and ready.json()["ready"] is False
    for response in (verify, predict, traces):
        error = assert_error(response, 503, "unavailable")
        assert error["message"] == "not ready: loading models and the index"
        assert response.headers["retry-after"] == "5"
    assert health.status_code == 200 and health.json()["ready"] is False
    assert after.status_code == 200 and after.json()["ready"] is True
    assert verified.status_code == 200 and len(verified.json()["claims"]) == 2


def test_a_failed_load_answers_503_with_its_reason_on_readyz_and_verify(tmp_path: Path) -> None:
    settings = Settings(
        classifier_dir=str(tmp_path / "no-classifier"),
        index_dir=str(tmp_path / "no-index"),
        nli_model=str(tmp_path / "no-nli"),
        trace_db=str(tmp_path / "traces.db"),
    )
    with TestClient(create_app(settings)) as client:
        ready = _wait_until_not_loading(client)
        verify = client.post("/verify", json={"text": TEXT})
        health = client.get("/healthz")

    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "no-classifier" in ready.json()["reason"]
    error = assert_error(verify, 503, "unavailable")
    assert error["message"] == f"not ready: {ready.json()['reason']}"
    assert "retry-after" not in verify.headers  # waiting will not help
    assert health.status_code == 200 and health.json()["reason"] == ready.json()["reason"]


def test_a_classifier_failure_mid_run_answers_503_and_stores_an_error_trace(
    client: TestClient, scorer: KeywordScorer
) -> None:
    scorer.fail = RuntimeError("CUDA out of memory")
    response = client.post("/verify", json={"text": TEXT})

    error = assert_error(response, 503, "unavailable")
    assert "RuntimeError: CUDA out of memory" in error["message"]
    assert response.headers["retry-after"] == "5"
    trace = client.get(f"/traces/{error['trace_id']}").json()
    assert trace["header"]["status"] == "error"
    assert "CUDA out of memory" in trace["header"]["status_reason"]
    assert trace["text"] == TEXT and trace["path"] == ["split"]
    listed = client.get("/traces", params={"status": "error"}).json()["items"]
    assert [t["trace_id"] for t in listed] == [error["trace_id"]]


def test_a_retrieval_failure_still_answers_200_with_partial_status_and_claim_errors(
    client: TestClient, searcher: OverlapSearcher
) -> None:
    searcher.fail = ConnectionError("index unreachable")
    response = client.post("/verify", json={"text": TEXT})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "partial"
    assert [c["verdict"] for c in body["claims"]] == ["NOT_ENOUGH_INFO", "NOT_ENOUGH_INFO"]
    assert all(c["error"] == "ConnectionError: index unreachable" for c in body["claims"])
    assert all(c["evidence"] == [] for c in body["claims"])
    assert body["summary"]["errors"] == 2 and body["summary"]["not_enough_info"] == 2
    stored = client.get(f"/traces/{body['trace_id']}").json()
    assert stored["header"]["status"] == "partial"
    assert stored["header"]["status_reason"] == "2 claim(s) hit a failure; see their errors"


def test_an_unexpected_error_answers_500_without_its_details(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = fake_app(store_path)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret connection string user:hunter2")

    with TestClient(app, raise_server_exceptions=False) as client:
        store = app.state.services.pipeline.context.trace_store
        monkeypatch.setattr(store, "list", broken)
        response = client.get("/traces")

    error = assert_error(response, 500, "internal")
    assert "hunter2" not in response.text
    assert error["trace_id"] is None


def test_a_classifier_failure_in_predict_is_503_naming_the_cause(store_path: Path) -> None:
    scorer = KeywordScorer()
    scorer.fail = RuntimeError("model file truncated")
    with TestClient(fake_app(store_path, scorer=scorer)) as client:
        response = client.post("/predict", json={"sentences": ["The rate rose 5 percent."]})

    message = assert_error(response, 503, "unavailable")["message"]
    assert message == "the classifier failed: RuntimeError: model file truncated"
    assert "Traceback" not in response.text
