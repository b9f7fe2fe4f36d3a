"""OpenTelemetry export: a run becomes a workflow span with node, retrieval and chat spans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from graph.context import Context
from graph.otel import OtelExporter
from graph.pipeline import Pipeline, PipelineError
from graph.report import VerifyOptions
from graph.schemas import ChatMessage, Judgement, JudgeTrace
from tests.pipeline_fakes import TEXT, KeywordScorer, ScriptedJudge, fake_context


class ChattyJudge(ScriptedJudge):
    """The scripted judge, with the trace an LLM judge leaves: prompt, reply, usage, attempts."""

    async def judge(self, claim: str, evidence: Any) -> Judgement:
        judged = await super().judge(claim, evidence)
        trace = JudgeTrace(
            judge=self.name,
            model="tiny-llm",
            prompt_version="judge-v1",
            prompt_hash="f00",
            messages=(ChatMessage(role="user", content=f"Claim: {claim}"),),
            raw_reply='{"label": "SUPPORTED"}',
            usage={"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129},
            latency_ms=3.0,
            attempts=1,
            mode="json_schema",
        )
        return Judgement(verdict=judged.verdict, trace=trace)


def _run(tmp_path: Path, capture: bool, **kwargs: Any) -> tuple[InMemorySpanExporter, Context]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    exporter = OtelExporter(provider, capture_content=capture)
    base = fake_context(tmp_path / "t.db", **kwargs)
    context = Context(
        splitter=base.splitter,
        scorer=base.scorer,
        searcher=base.searcher,
        judges=base.judges,
        trace_store=base.trace_store,
        trace_sinks=(exporter,),
        versions=base.versions,
    )
    return memory, context


def _spans(
    memory: InMemorySpanExporter, context: Context, text: str = TEXT, **options: Any
) -> tuple[list[ReadableSpan], str]:
    result = Pipeline(context).verify(text, VerifyOptions(**options))
    return list(memory.get_finished_spans()), result.trace_id


def test_a_run_is_one_workflow_span_with_a_span_per_node(tmp_path: Path) -> None:
    memory, context = _run(tmp_path, capture=False)
    spans, trace_id = _spans(memory, context)
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_workflow verifact"
    assert root.attributes is not None
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["gen_ai.conversation.id"] == trace_id
    children = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
    names = sorted(s.name for s in children)
    assert names == ["detect", "judge", "judge", "report", "retrieval", "retrieval", "split"]
    assert all(s.context.trace_id == root.context.trace_id for s in spans)
    assert all(root.start_time <= s.start_time and s.end_time <= root.end_time for s in children)  # type: ignore[operator]


def test_retrieval_spans_carry_document_ids_and_scores(tmp_path: Path) -> None:
    memory, context = _run(tmp_path, capture=True)
    spans, _ = _spans(memory, context, top_k=2)
    retrievals = [s for s in spans if s.name == "retrieval"]
    assert len(retrievals) == 2
    attrs = retrievals[0].attributes or {}
    assert attrs["gen_ai.operation.name"] == "retrieval" and attrs["gen_ai.retrieval.top_k"] == 2
    documents = json.loads(str(attrs["gen_ai.retrieval.documents"]))
    assert [d["rank"] for d in documents] == [1, 2] and all("score" in d and d["id"] for d in documents)
    assert "gen_ai.retrieval.query.text" in attrs


def test_llm_calls_get_chat_spans_with_usage_and_opt_in_content(tmp_path: Path) -> None:
    memory, context = _run(tmp_path, capture=False, llm=ChattyJudge("llm-fake"))
    spans, _ = _spans(memory, context, judge="llm")
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == 2 and chats[0].name == "chat tiny-llm"
    attrs = chats[0].attributes or {}
    assert attrs["gen_ai.request.model"] == "tiny-llm"
    assert attrs["gen_ai.usage.input_tokens"] == 120 and attrs["gen_ai.usage.output_tokens"] == 9
    assert "gen_ai.input.messages" not in attrs  # content is opt-in
    judge_spans = {s.context.span_id: s for s in spans if s.name == "judge"}
    assert all(c.parent is not None and c.parent.span_id in judge_spans for c in chats)

    memory, context = _run(tmp_path, capture=True, llm=ChattyJudge("llm-fake"))
    spans, _ = _spans(memory, context, judge="llm")
    attrs = next(s for s in spans if s.name.startswith("chat ")).attributes or {}
    messages = json.loads(str(attrs["gen_ai.input.messages"]))
    assert messages[0]["role"] == "user" and messages[0]["parts"][0]["content"].startswith("Claim:")


def test_the_nli_judge_makes_no_chat_span(tmp_path: Path) -> None:
    memory, context = _run(tmp_path, capture=False)
    spans, _ = _spans(memory, context, judge="nli")
    assert not [s for s in spans if s.name.startswith("chat ")]


def test_a_failed_run_is_exported_with_an_error_status(tmp_path: Path) -> None:
    scorer = KeywordScorer()
    scorer.fail = RuntimeError("model crashed")
    memory, context = _run(tmp_path, capture=False, scorer=scorer)
    with pytest.raises(PipelineError):
        _spans(memory, context)
    (root,) = [s for s in memory.get_finished_spans() if s.parent is None]
    assert root.status.status_code.name == "ERROR" and "model crashed" in (root.status.description or "")


def test_a_failing_sink_does_not_cost_the_answer(tmp_path: Path) -> None:
    class Broken:
        def export(self, trace: Any) -> None:
            raise OSError("collector down")

    base = fake_context(tmp_path / "t.db")
    context = Context(
        splitter=base.splitter,
        scorer=base.scorer,
        searcher=base.searcher,
        judges=base.judges,
        trace_store=base.trace_store,
        trace_sinks=(Broken(),),
    )
    result = Pipeline(context).verify(TEXT)
    assert result.summary.checked == 2 and result.trace_stored
