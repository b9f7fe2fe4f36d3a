"""POST /verify and /verify/stream on the pipeline fakes: results, options, judges, the trace, SSE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import CLAIM_0, CLAIM_2, assert_error, fake_app, parse_sse
from tests.pipeline_fakes import TEXT, KeywordScorer, OverlapSearcher, ScriptedJudge

# "Prices rose last year." scores 0.5 (one cue word); the second sentence scores 0.99.
WEAK_THEN_STRONG = "Prices rose last year. Unemployment fell to 3.5 percent in 2019."


def _verify(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/verify", json={"text": TEXT, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_verify_returns_the_claims_in_input_order_with_spans_verdicts_and_cited_evidence(
    client: TestClient,
) -> None:
    body = _verify(client)

    claims = body["claims"]
    assert [c["text"] for c in claims] == [CLAIM_0, CLAIM_2]
    assert [(c["claim_id"], c["sentence_index"]) for c in claims] == [("c0", 0), ("c2", 2)]
    for claim, cited_id in zip(claims, ("d1", "d2"), strict=True):
        assert TEXT[claim["start"] : claim["end"]] == claim["text"]
        assert claim["score"] >= body["threshold"]
        assert claim["verdict"] == "SUPPORTED"
        assert 0.0 < claim["confidence"] <= 1.0
        assert claim["rationale"] == f"[{cited_id}] says so"
        assert claim["citations"] == [cited_id]
        assert claim["judge"] == "nli-fake"
        assert claim["error"] is None
        evidence = claim["evidence"]
        assert [e["rank"] for e in evidence] == list(range(1, len(evidence) + 1))
        assert evidence[0]["id"] == cited_id
        assert [e["id"] for e in evidence if e["cited"]] == [cited_id]
    assert body["summary"] == {
        "sentences": 4,
        "check_worthy": 2,
        "checked": 2,
        "supported": 2,
        "refuted": 0,
        "not_enough_info": 0,
        "errors": 0,
    }
    assert [s["selected"] for s in body["sentences"]] == [True, False, True, False]
    assert all(TEXT[s["start"] : s["end"]] == s["text"] for s in body["sentences"])
    assert body["status"] == "ok" and body["threshold"] == 0.5
    assert len(body["trace_id"]) >= 16 and body["trace_stored"] is True
    assert body["trace"] is None  # only on request


def test_verify_with_include_trace_returns_the_stored_trace_with_an_event_per_node_run(
    client: TestClient,
) -> None:
    body = _verify(client, include_trace=True)
    trace = body["trace"]

    assert trace["header"]["trace_id"] == body["trace_id"]
    assert trace["path"] == ["split", "detect", "retrieve", "judge", "report"]
    by_node: dict[str, list[dict[str, Any]]] = {}
    for event in trace["events"]:
        by_node.setdefault(event["node"], []).append(event)
    assert {n: len(e) for n, e in by_node.items()} == {
        "split": 1,
        "detect": 1,
        "retrieve": 2,
        "judge": 2,
        "report": 1,
    }
    assert sorted(e["claim_id"] for e in by_node["retrieve"]) == ["c0", "c2"]
    assert sorted(e["claim_id"] for e in by_node["judge"]) == ["c0", "c2"]
    assert trace["events"][0]["node"] == "split" and trace["events"][-1]["node"] == "report"

    decisions = by_node["detect"][0]["decisions"]
    assert [d["sentence"] for d in decisions] == [0, 1, 2, 3]
    for decision in decisions:
        assert decision["threshold"] == 0.5
        assert decision["check_worthy"] is (decision["score"] >= decision["threshold"])
        sign = ">=" if decision["check_worthy"] else "<"
        assert f"{sign} threshold 0.500" in decision["reason"]
    assert [d["check_worthy"] for d in decisions] == [True, False, True, False]

    stored = client.get(f"/traces/{body['trace_id']}")
    assert stored.status_code == 200
    assert stored.json() == trace


def test_max_claims_keeps_the_highest_scoring_claim_not_the_first(client: TestClient) -> None:
    body = _verify(client, text=WEAK_THEN_STRONG, max_claims=1, include_trace=True)

    assert [c["text"] for c in body["claims"]] == ["Unemployment fell to 3.5 percent in 2019."]
    assert body["summary"]["check_worthy"] == 2 and body["summary"]["checked"] == 1
    weak = body["sentences"][0]
    assert weak["check_worthy"] is True and weak["selected"] is False
    detect = next(e for e in body["trace"]["events"] if e["node"] == "detect")
    assert "over max_claims 1" in detect["decisions"][0]["reason"]
    assert detect["outputs"]["dropped_by_max_claims"] == 1


def test_top_k_sets_how_many_passages_each_claim_gets(client: TestClient, searcher: OverlapSearcher) -> None:
    body = _verify(client, top_k=2)

    assert [len(c["evidence"]) for c in body["claims"]] == [2, 2]
    assert sorted(searcher.queries) == [(CLAIM_0, 2), (CLAIM_2, 2)]
    assert len(_verify(client)["claims"][0]["evidence"]) == 4  # default 5; the fake has four passages


def test_a_threshold_above_every_score_checks_nothing_and_routes_from_detect_to_report(
    client: TestClient, searcher: OverlapSearcher
) -> None:
    body = _verify(client, threshold=1.0, include_trace=True)

    assert body["claims"] == [] and body["threshold"] == 1.0
    assert body["summary"]["check_worthy"] == 0 and body["summary"]["checked"] == 0
    assert body["trace"]["path"] == ["split", "detect", "report"]
    assert searcher.queries == []


def test_a_score_equal_to_the_threshold_is_check_worthy(client: TestClient) -> None:
    # The keyword fake caps scores at 0.99, so both claims sit exactly on this threshold.
    body = _verify(client, threshold=0.99)

    assert [c["claim_id"] for c in body["claims"]] == ["c0", "c2"]


def test_a_low_threshold_checks_every_sentence(client: TestClient) -> None:
    body = _verify(client, threshold=0.1)

    assert [c["sentence_index"] for c in body["claims"]] == [0, 1, 2, 3]
    assert body["summary"]["not_enough_info"] == 2  # the chatty sentences find no matching evidence


def test_judge_llm_without_an_llm_is_refused_with_422_before_any_work(
    client: TestClient, scorer: KeywordScorer
) -> None:
    error = assert_error(client.post("/verify", json={"text": TEXT, "judge": "llm"}), 422, "invalid_input")

    assert "llm" in error["message"] and "VERIFACT_LLM_BASE_URL" in error["message"]
    assert scorer.calls == []
    assert client.get("/traces").json()["items"] == []


def test_with_an_llm_configured_auto_uses_it_and_nli_can_still_be_asked(store_path: Path) -> None:
    llm = ScriptedJudge("llm-fake")
    with TestClient(fake_app(store_path, llm=llm)) as client:
        auto = _verify(client)
        nli = _verify(client, judge="nli")
        explicit = _verify(client, judge="llm")

    assert [c["judge"] for c in auto["claims"]] == ["llm-fake", "llm-fake"]
    assert [c["judge"] for c in explicit["claims"]] == ["llm-fake", "llm-fake"]
    assert [c["judge"] for c in nli["claims"]] == ["nli-fake", "nli-fake"]
    assert sorted(claim for claim, _ in llm.seen) == sorted([CLAIM_0, CLAIM_2] * 2)


def _stream(client: TestClient, **body: Any) -> list[tuple[str, Any]]:
    with client.stream("POST", "/verify/stream", json={"text": TEXT, **body}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines())


def test_stream_sends_node_events_in_graph_order_then_one_fetchable_result(client: TestClient) -> None:
    events = _stream(client)

    names = [name for name, _ in events]
    assert names[-1] == "result" and names.count("result") == 1
    assert set(names[:-1]) == {"node"}
    nodes = [data["node"] for _, data in events[:-1]]
    assert nodes[:2] == ["split", "detect"] and nodes[-1] == "report"
    assert sorted(nodes[2:-1]) == ["judge", "judge", "retrieve", "retrieve"]
    claim_steps = [(data["node"], e["claim_id"]) for _, data in events[2:-1] for e in data["events"]]
    for claim_id in ("c0", "c2"):
        assert claim_steps.index(("retrieve", claim_id)) < claim_steps.index(("judge", claim_id))
    for _, data in events[:-1]:
        assert [e["node"] for e in data["events"]] == [data["node"]]

    result = events[-1][1]
    assert [c["text"] for c in result["claims"]] == [CLAIM_0, CLAIM_2]
    stored = client.get(f"/traces/{result['trace_id']}")
    assert stored.status_code == 200
    assert stored.json()["header"]["trace_id"] == result["trace_id"]
    assert len(stored.json()["events"]) == sum(len(d["events"]) for _, d in events[:-1])


def test_stream_refuses_bad_input_with_a_json_error_before_the_stream_starts(
    client: TestClient, scorer: KeywordScorer
) -> None:
    for body, status, code in (
        ({"text": ""}, 422, "invalid_input"),
        ({"text": TEXT, "top_k": 0}, 422, "invalid_input"),
        ({"text": TEXT, "judge": "llm"}, 422, "invalid_input"),
    ):
        with client.stream("POST", "/verify/stream", json=body) as response:
            response.read()
            assert_error(response, status, code)
    assert scorer.calls == []


def test_stream_ends_with_an_error_event_when_the_classifier_fails(
    client: TestClient, scorer: KeywordScorer
) -> None:
    scorer.fail = RuntimeError("classifier exploded")
    events = _stream(client)

    assert [name for name, _ in events] == ["node", "error"]
    assert events[0][1]["node"] == "split"
    error = events[-1][1]["error"]
    assert error["code"] == "unavailable" and "classifier exploded" in error["message"]
    stored = client.get(f"/traces/{error['trace_id']}").json()
    assert stored["header"]["status"] == "error"


def test_healthz_and_readyz_answer_200_with_versions_when_ready(client: TestClient) -> None:
    health = client.get("/healthz")
    ready = client.get("/readyz")

    assert health.status_code == 200 and health.json()["ready"] is True
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "ready": True,
        "reason": None,
        "versions": {"verifact": "test", "prompt": {"hash": "abc"}},
        "trace_store_failures": 0,
    }


def test_the_openapi_schema_and_the_docs_page_are_served(client: TestClient) -> None:
    schema = client.get("/openapi.json")
    docs = client.get("/docs")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/verify", "/verify/stream", "/predict", "/traces", "/traces/{trace_id}", "/documents"):
        assert path in paths
    assert {"get", "delete"} <= set(paths["/traces/{trace_id}"])
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
