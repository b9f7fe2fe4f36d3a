"""The verification graph with fakes at its seams: routing, options, trace, failures, streaming."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langgraph.runtime import Runtime

from graph import nodes
from graph.builder import NODES, build_graph, graph_diagram
from graph.context import JudgeUnavailableError
from graph.pipeline import NodeUpdate, Pipeline, PipelineError
from graph.report import ScoredSentence, VerifyOptions, VerifyResult
from graph.state import ClaimTask, State
from graph.tracestore import TraceQuery
from tests.pipeline_fakes import TEXT, KeywordScorer, OverlapSearcher, ScriptedJudge, fake_context


def _state(text: str = TEXT, **options: Any) -> State:
    return State(text=text, options=VerifyOptions(**options), trace_id="t1", started_at=datetime.now(UTC))


def _runtime(**kwargs: Any) -> Runtime[Any]:
    return Runtime(context=fake_context(**kwargs))


def test_split_node_records_offsets() -> None:
    out = asyncio.run(nodes.split(_state(), _runtime()))
    sentences = out["sentences"]
    assert len(sentences) == 4
    assert all(TEXT[s.start : s.end] == s.text for s in sentences)
    (event,) = out["events"]
    assert event.node == "split" and event.outputs["sentences"] == 4
    assert event.inputs == {"chars": len(TEXT)}


def test_detect_node_explains_each_sentence_against_the_threshold() -> None:
    state = _state(max_claims=1)
    state.sentences = asyncio.run(nodes.split(state, _runtime()))["sentences"]
    out = asyncio.run(nodes.detect(state, _runtime()))
    decisions = out["events"][0].decisions
    assert [d["sentence"] for d in decisions] == [0, 1, 2, 3]
    worthy = [d for d in decisions if d["check_worthy"]]
    assert [d["sentence"] for d in worthy] == [0, 2]
    # max_claims=1 keeps the higher-scoring claim and says why the other was dropped
    selected = [d for d in decisions if d["selected"]]
    assert len(selected) == 1
    dropped = next(d for d in worthy if not d["selected"])
    assert "max_claims" in dropped["reason"]
    assert all("threshold 0.500" in d["reason"] for d in decisions)
    assert out["threshold"] == 0.5


def test_route_goes_straight_to_report_without_claims() -> None:
    state = _state()
    state.sentences = [ScoredSentence(index=0, text="Hi.", start=0, end=3, score=0.1, check_worthy=False)]
    assert nodes.route_claims(state) == "report"


def test_retrieve_node_records_scores_and_survives_a_failure() -> None:
    sentence = ScoredSentence(
        index=0, text="Sea level rose 20 centimetres.", start=0, end=30, score=0.9, check_worthy=True
    )
    task = ClaimTask("c0", sentence, VerifyOptions(top_k=2))
    cmd = asyncio.run(nodes.retrieve(task, _runtime()))
    (event,) = cmd.update["events"]  # type: ignore[index]
    assert event.claim_id == "c0" and len(event.decisions) == 2
    assert event.decisions[0]["id"] == "d3" and event.decisions[0]["rank"] == 1
    failing = OverlapSearcher(fail=OSError("index gone"))
    cmd = asyncio.run(nodes.retrieve(task, _runtime(searcher=failing)))
    (event,) = cmd.update["events"]  # type: ignore[index]
    assert event.error == "OSError: index gone"
    assert cmd.goto.arg.evidence == [] and cmd.goto.arg.retrieval_error == "OSError: index gone"  # type: ignore[union-attr]


def _pipeline(tmp_path: Path | None = None, **kwargs: Any) -> Pipeline:
    return Pipeline(fake_context(tmp_path / "traces.db" if tmp_path else None, **kwargs))


def test_run_reports_claims_in_input_order_with_cited_evidence(tmp_path: Path) -> None:
    result = _pipeline(tmp_path).verify(TEXT, VerifyOptions(include_trace=True))
    assert [c.sentence_index for c in result.claims] == [0, 2]
    first = result.claims[0]
    assert first.verdict == "SUPPORTED" and first.citations == ["d1"]
    assert [h.id for h in first.evidence if h.cited] == ["d1"]
    assert TEXT[first.start : first.end] == first.text
    assert result.summary.model_dump() == {
        "sentences": 4, "check_worthy": 2, "checked": 2, "supported": 2, "refuted": 0,
        "not_enough_info": 0, "errors": 0,
    }  # fmt: skip
    trace = result.trace
    assert trace is not None and trace.path == list(NODES)
    per_claim = [(e.node, e.claim_id) for e in trace.events if e.claim_id]
    assert sorted(per_claim) == [("judge", "c0"), ("judge", "c2"), ("retrieve", "c0"), ("retrieve", "c2")]
    judge_event = next(e for e in trace.events if e.node == "judge")
    assert judge_event.outputs["trace"]["judge"] == "nli-fake"
    assert trace.header.versions["prompt"] == {"hash": "abc"}
    assert trace.header.options["threshold"] == 0.5


def test_no_check_worthy_sentence_routes_straight_to_report(tmp_path: Path) -> None:
    searcher = OverlapSearcher()
    result = _pipeline(tmp_path, searcher=searcher).verify(
        "Hello there. Thank you all!", VerifyOptions(include_trace=True)
    )
    assert result.claims == [] and result.summary.checked == 0
    assert result.trace is not None and result.trace.path == ["split", "detect", "report"]
    assert searcher.queries == []


def test_options_threshold_top_k_and_judge(tmp_path: Path) -> None:
    searcher = OverlapSearcher()
    llm = ScriptedJudge("llm-fake")
    p = _pipeline(tmp_path, searcher=searcher, llm=llm)
    result = p.verify(TEXT, VerifyOptions(threshold=1.0, top_k=1))
    assert result.threshold == 1.0 and result.claims == []
    result = p.verify(TEXT, VerifyOptions(top_k=1, judge="auto"))
    assert all(len(c.evidence) == 1 for c in result.claims)
    assert {k for _, k in searcher.queries} == {1}
    assert {c.judge for c in result.claims} == {"llm-fake"}
    result = p.verify(TEXT, VerifyOptions(judge="nli"))
    assert {c.judge for c in result.claims} == {"nli-fake"}


def test_asking_for_an_llm_that_is_not_configured_is_refused_before_any_work() -> None:
    scorer = KeywordScorer()
    with pytest.raises(JudgeUnavailableError, match="VERIFACT_LLM_BASE_URL"):
        _pipeline(scorer=scorer).verify(TEXT, VerifyOptions(judge="llm"))
    assert scorer.calls == []


def test_a_retrieval_failure_degrades_the_claims_not_the_run(tmp_path: Path) -> None:
    result = _pipeline(tmp_path, searcher=OverlapSearcher(fail=OSError("disk"))).verify(TEXT)
    assert result.status == "partial"
    assert {c.verdict for c in result.claims} == {"NOT_ENOUGH_INFO"}
    assert all(c.error == "OSError: disk" for c in result.claims)
    assert result.summary.errors == 2


def test_a_classifier_failure_fails_the_run_and_stores_an_error_trace(tmp_path: Path) -> None:
    scorer = KeywordScorer()
    scorer.fail = RuntimeError("model crashed")
    p = _pipeline(tmp_path, scorer=scorer)
    with pytest.raises(PipelineError, match="model crashed") as info:
        p.verify(TEXT)
    store = p.context.trace_store
    assert store is not None
    trace = store.get(info.value.trace_id)
    assert trace is not None and trace.header.status == "error"
    assert "model crashed" in (trace.header.status_reason or "")
    assert trace.path == ["split"]


def test_traces_are_stored_and_listed(tmp_path: Path) -> None:
    p = _pipeline(tmp_path)
    first = p.verify(TEXT)
    second = p.verify("Arctic sea ice never reached a record low in 2012.")
    store = p.context.trace_store
    assert store is not None
    page = store.list(TraceQuery())
    assert [t.trace_id for t in page.items] == [second.trace_id, first.trace_id]
    assert [t.trace_id for t in store.list(TraceQuery(verdict="REFUTED")).items] == [second.trace_id]
    stored = store.get(first.trace_id)
    assert stored is not None and [c.claim_id for c in stored.claims] == ["c0", "c2"]


def test_stream_yields_each_node_then_the_result(tmp_path: Path) -> None:
    p = _pipeline(tmp_path)

    async def collect() -> list[NodeUpdate | VerifyResult]:
        return [item async for item in p.astream(TEXT)]

    items = asyncio.run(collect())
    assert isinstance(items[-1], VerifyResult)
    nodes_seen = [i.node for i in items[:-1] if isinstance(i, NodeUpdate)]
    assert nodes_seen == ["split", "detect", "retrieve", "retrieve", "judge", "judge", "report"]


def test_claims_are_judged_concurrently_within_the_bound(tmp_path: Path) -> None:
    text = " ".join(f"Temperatures rose {n} degrees in {1900 + n}." for n in range(8))
    slow = ScriptedJudge("llm-slow", delay_s=0.2)
    p = _pipeline(tmp_path, llm=slow, max_concurrency=8)
    t0 = time.perf_counter()
    result = p.verify(text, VerifyOptions(judge="llm"))
    elapsed = time.perf_counter() - t0
    assert len(result.claims) == 8
    assert elapsed < 8 * 0.2 / 2  # sequential judging would take 1.6 s


def test_verify_inside_an_event_loop_points_to_averify() -> None:
    p = _pipeline()

    async def inside() -> None:
        p.verify(TEXT)

    with pytest.raises(RuntimeError, match="averify"):
        asyncio.run(inside())


def test_graph_diagram_has_the_nodes_and_the_conditional_edges() -> None:
    diagram = graph_diagram()
    assert diagram["nodes"] == list(NODES)
    edges = {(e["source"], e["target"], e["conditional"]) for e in diagram["edges"]}
    assert ("detect", "retrieve", True) in edges and ("detect", "report", True) in edges
    assert ("judge", "report", False) in edges
    assert build_graph().name == "verifact"


def test_graph_verify_loads_once_per_config_and_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import graph
    import graph.pipeline as pipeline_module
    import graph.services as services_module
    from graph.services import LoadedServices, PipelineConfig

    loads: list[PipelineConfig] = []

    def fake_load(config: PipelineConfig) -> LoadedServices:
        loads.append(config)
        return LoadedServices(fake_context(tmp_path / "t.db"), [])

    monkeypatch.setattr(services_module, "load_services", fake_load)
    monkeypatch.setattr(pipeline_module, "_LOADED", {})
    config = PipelineConfig(trace_store=None)
    first = graph.verify(TEXT, config=config, top_k=1)
    second = asyncio.run(graph.averify(TEXT, config=config, max_claims=1))
    assert len(loads) == 1
    assert [len(c.evidence) for c in first.claims] == [1, 1]
    assert len(second.claims) == 1
    with pytest.raises(ValueError):
        graph.verify(TEXT, config=config, top_k=0)


def test_pipeline_config_search_settings_are_checked_and_exported() -> None:
    from pydantic import ValidationError

    from graph.services import PipelineConfig
    from retrieval.errors import QueryError
    from retrieval.retriever import SearchSettings

    config = PipelineConfig(search_mode="dense", dense_weight=2.0, rrf_k=20)
    # Exactly the retriever's own settings, so load_services can pass them through unchanged.
    assert SearchSettings(**config.search()) == SearchSettings(mode="dense", dense_weight=2.0, rrf_k=20)
    with pytest.raises(QueryError, match="not both zero"):  # what load_services would raise
        SearchSettings(**PipelineConfig(dense_weight=0, lexical_weight=0).search())
    with pytest.raises(ValidationError):
        PipelineConfig(search_mode="fuzzy")  # type: ignore[arg-type]
