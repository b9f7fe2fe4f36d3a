"""Export finished runs as OpenTelemetry spans, after the GenAI semantic conventions.

One run becomes a tree: an ``invoke_workflow verifact`` span for the run, a span per node run
(with the same start and duration as its trace event), a ``retrieval`` span per claim with the
retrieved documents (ids and scores), and a ``chat {model}`` span under a judge node when an LLM
answered, with the request model, token usage and, when content capture is on, the prompt and
reply. The same run then opens in Jaeger, Langfuse or Phoenix. The OpenTelemetry SDK is an optional
dependency (the ``otel`` extra); this module imports it only when an exporter is built.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from graph.report import RunTrace, TraceEvent

logger = logging.getLogger(__name__)

WORKFLOW = "verifact"


class TraceSink(Protocol):
    """Receives every finished run (after it is stored); must not raise into the run."""

    def export(self, trace: RunTrace) -> None:
        """Send ``trace`` somewhere."""
        ...


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _end(event: TraceEvent) -> datetime:
    return event.started_at + timedelta(milliseconds=event.duration_ms)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class OtelExporter:
    """A `TraceSink` that turns runs into spans of an OpenTelemetry tracer provider."""

    def __init__(self, tracer_provider: Any, *, capture_content: bool = False) -> None:
        """Export through ``tracer_provider`` (an ``opentelemetry.sdk.trace.TracerProvider``).

        Args:
            tracer_provider: Where spans go (its span processors and exporters decide).
            capture_content: Also record prompts, replies, claim texts and passages (the GenAI
                conventions make content opt-in: it may be sensitive).
        """
        self._provider = tracer_provider
        self._tracer = tracer_provider.get_tracer("verifact")
        self._content = capture_content

    def close(self) -> None:
        """Flush and stop the provider's span processors."""
        self._provider.shutdown()

    def export(self, trace: RunTrace) -> None:
        """See `TraceSink.export`."""
        from opentelemetry import trace as otel
        from opentelemetry.trace import SpanKind, Status, StatusCode

        h = trace.header
        end = h.finished_at or h.created_at + timedelta(milliseconds=h.duration_ms)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.agent.name": WORKFLOW,
            "gen_ai.workflow.name": WORKFLOW,
            "gen_ai.conversation.id": h.trace_id,
            "verifact.trace_id": h.trace_id,
            "verifact.status": h.status,
            "verifact.options": _json(h.options),
            "verifact.claims": trace.summary.checked,
            "verifact.supported": trace.summary.supported,
            "verifact.refuted": trace.summary.refuted,
            "verifact.not_enough_info": trace.summary.not_enough_info,
        }
        root = self._tracer.start_span(
            f"invoke_workflow {WORKFLOW}",
            kind=SpanKind.INTERNAL,
            start_time=_ns(h.created_at),
            attributes=attributes,
        )
        if h.status == "error":
            root.set_status(Status(StatusCode.ERROR, h.status_reason or "the run failed"))
        parent = otel.set_span_in_context(root)
        for event in trace.events:
            self._node_span(event, parent)
        root.end(end_time=_ns(end))

    def _node_span(self, event: TraceEvent, parent: Any) -> None:
        from opentelemetry import trace as otel
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attributes: dict[str, Any] = {"verifact.node": event.node}
        if event.claim_id:
            attributes["verifact.claim_id"] = event.claim_id
        if event.node == "retrieve":
            attributes.update(self._retrieval_attributes(event))
        elif event.node == "detect":
            attributes["verifact.threshold"] = float(event.inputs.get("threshold", 0.0))
            attributes["verifact.check_worthy"] = int(event.outputs.get("check_worthy", 0))
        elif event.node == "judge":
            verdict = event.outputs.get("verdict") or {}
            attributes["verifact.verdict"] = str(verdict.get("label", ""))
            attributes["verifact.confidence"] = float(verdict.get("confidence", 0.0))
            attributes["verifact.judge"] = str(verdict.get("judge", ""))
            if verdict.get("agreement") is not None:
                attributes["verifact.agreement"] = bool(verdict["agreement"])
        name = "retrieval" if event.node == "retrieve" else event.node
        span = self._tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.INTERNAL,
            start_time=_ns(event.started_at),
            attributes=attributes,
        )
        if event.error:
            span.set_status(Status(StatusCode.ERROR, event.error))
        if event.node == "judge":
            self._llm_spans(event, otel.set_span_in_context(span))
        span.end(end_time=_ns(_end(event)))

    def _retrieval_attributes(self, event: TraceEvent) -> dict[str, Any]:
        documents = [
            {"id": d.get("id"), "score": d.get("score"), "dense_score": d.get("dense_score"),
             "lexical_score": d.get("lexical_score"), "rank": d.get("rank")}
            for d in event.decisions
        ]  # fmt: skip
        out: dict[str, Any] = {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.top_k": int(event.inputs.get("top_k", len(documents))),
            "gen_ai.retrieval.documents": _json(documents),
            "verifact.document_ids": [str(d["id"]) for d in documents],
        }
        if self._content:
            out["gen_ai.retrieval.query.text"] = str(event.inputs.get("claim", ""))
        return out

    def _llm_spans(self, event: TraceEvent, parent: Any) -> None:
        """A chat span for each LLM call the judge made (the answer, or the second opinion's)."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        trace = event.outputs.get("trace") or {}
        for judge_trace in (trace, trace.get("second_opinion") or {}):
            if not judge_trace or not judge_trace.get("attempts"):
                continue  # not an LLM: the NLI verifier makes no requests
            model = str(judge_trace.get("model", ""))
            usage: Mapping[str, Any] = judge_trace.get("usage") or {}
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "verifact.prompt_version": str(judge_trace.get("prompt_version", "")),
                "verifact.prompt_hash": str(judge_trace.get("prompt_hash", "")),
                "verifact.retries": int(judge_trace.get("retries", 0)),
                "verifact.structured_mode": str(judge_trace.get("mode") or ""),
            }
            if "prompt_tokens" in usage:
                attributes["gen_ai.usage.input_tokens"] = int(usage["prompt_tokens"])
            if "completion_tokens" in usage:
                attributes["gen_ai.usage.output_tokens"] = int(usage["completion_tokens"])
            if self._content:
                messages = [
                    {"role": m.get("role"), "parts": [{"type": "text", "content": m.get("content")}]}
                    for m in judge_trace.get("messages", [])
                ]
                attributes["gen_ai.input.messages"] = _json(messages)
                reply = judge_trace.get("raw_reply")
                if reply is not None:
                    attributes["gen_ai.output.messages"] = _json(
                        [{"role": "assistant", "parts": [{"type": "text", "content": reply}]}]
                    )
            latency = float(judge_trace.get("latency_ms", event.duration_ms))
            start = _end(event) - timedelta(milliseconds=min(latency, event.duration_ms))
            span = self._tracer.start_span(
                f"chat {model}",
                context=parent,
                kind=SpanKind.CLIENT,
                start_time=_ns(start),
                attributes=attributes,
            )
            errors = judge_trace.get("errors") or []
            if errors:
                span.set_status(Status(StatusCode.ERROR, str(errors[-1])))
            span.end(end_time=_ns(_end(event)))


def otlp_exporter(
    endpoint: str, *, service_name: str = "verifact", capture_content: bool = False
) -> OtelExporter:
    """An `OtelExporter` that batches spans to an OTLP/HTTP endpoint (Jaeger, Langfuse, Phoenix...).

    Raises:
        ImportError: the ``otel`` extra is not installed.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return OtelExporter(provider, capture_content=capture_content)
