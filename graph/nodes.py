"""The graph's nodes: split, detect, retrieve, judge, report; each appends a trace event."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from graph.blocking import run_blocking
from graph.context import Context
from graph.judges import describe_error
from graph.report import (
    ClaimResult,
    EvidenceHit,
    RunHeader,
    RunStatus,
    RunTrace,
    ScoredSentence,
    Summary,
    TraceEvent,
    VerifyResult,
)
from graph.schemas import EvidencePassage, Judgement
from graph.state import ClaimTask, InputState, JudgeTask, State

logger = logging.getLogger(__name__)

SENTENCE_PREVIEW = 120
"""Characters of a sentence shown in trace decisions."""


class _Clock:
    """Start time and elapsed milliseconds of one node run."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC)
        self._t0 = time.perf_counter()

    def event(self, node: str, **fields: Any) -> TraceEvent:
        return TraceEvent(
            node=node,
            started_at=self.started_at,
            duration_ms=(time.perf_counter() - self._t0) * 1000.0,
            **fields,
        )


def _preview(text: str) -> str:
    return text if len(text) <= SENTENCE_PREVIEW else text[: SENTENCE_PREVIEW - 1] + "…"


async def split(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Cut the text into sentences with character offsets."""
    clock = _Clock()
    sentences = await run_blocking(runtime.context.splitter.split, state.text)
    scored = [ScoredSentence(**s.model_dump(), score=0.0, check_worthy=False) for s in sentences]
    event = clock.event(
        "split",
        inputs={"chars": len(state.text)},
        outputs={
            "sentences": len(scored),
            "spans": [[s.start, s.end] for s in scored],
        },
    )
    return {"sentences": scored, "events": [event]}


async def detect(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Score every sentence; keep those at or above the threshold, the best `max_claims` of them."""
    clock = _Clock()
    ctx, opts = runtime.context, state.options
    threshold = opts.threshold if opts.threshold is not None else ctx.scorer.threshold
    scores = await run_blocking(ctx.scorer.score, [s.text for s in state.sentences])
    worthy = [i for i, sc in enumerate(scores) if sc.score >= threshold]
    kept = set(sorted(worthy, key=lambda i: (-scores[i].score, i))[: opts.max_claims])
    sentences: list[ScoredSentence] = []
    decisions: list[dict[str, Any]] = []
    for s, sc in zip(state.sentences, scores, strict=True):
        is_worthy = sc.score >= threshold
        selected = s.index in kept
        if not is_worthy:
            reason = f"score {sc.score:.3f} < threshold {threshold:.3f}"
        elif selected:
            reason = f"score {sc.score:.3f} >= threshold {threshold:.3f}"
        else:
            reason = (
                f"score {sc.score:.3f} >= threshold {threshold:.3f}, but over max_claims {opts.max_claims}"
            )
        sentences.append(
            s.model_copy(
                update={
                    "score": sc.score,
                    "check_worthy": is_worthy,
                    "selected": selected,
                    "truncated": sc.truncated,
                }
            )
        )
        decisions.append(
            {
                "sentence": s.index,
                "text": _preview(s.text),
                "score": round(sc.score, 6),
                "threshold": threshold,
                "check_worthy": is_worthy,
                "selected": selected,
                "truncated": sc.truncated,
                "reason": reason,
            }
        )
    event = clock.event(
        "detect",
        inputs={"sentences": len(sentences), "threshold": threshold, "max_claims": opts.max_claims},
        outputs={
            "check_worthy": len(worthy),
            "selected": sorted(kept),
            "dropped_by_max_claims": len(worthy) - len(kept),
        },
        decisions=decisions,
    )
    return {"sentences": sentences, "threshold": threshold, "events": [event]}


def route_claims(state: State) -> list[Send] | Literal["report"]:
    """One retrieve step per selected claim, all in parallel; straight to report when there is none."""
    tasks = [
        Send("retrieve", ClaimTask(claim_id=f"c{s.index}", sentence=s, options=state.options))
        for s in state.sentences
        if s.selected
    ]
    return tasks or "report"


async def retrieve(task: ClaimTask, runtime: Runtime[Context]) -> Command[Literal["judge"]]:
    """Find evidence for one claim; a failure is recorded and the judge gets no evidence."""
    clock = _Clock()
    error: str | None = None
    hits: list[EvidenceHit] = []
    try:
        hits = await run_blocking(runtime.context.searcher.search, task.sentence.text, task.options.top_k)
    except Exception as exc:  # recorded in the trace; this claim's verdict says why it abstained
        error = describe_error(exc)
        logger.warning("retrieval failed for %s: %s", task.claim_id, error)
    decisions = [
        {
            "id": h.id,
            "rank": h.rank,
            "score": h.score,
            "dense_score": h.dense_score,
            "lexical_score": h.lexical_score,
        }
        for h in hits
    ]
    event = clock.event(
        "retrieve",
        claim_id=task.claim_id,
        inputs={"claim": task.sentence.text, "top_k": task.options.top_k},
        outputs={"passages": len(hits), "ids": [h.id for h in hits]},
        decisions=decisions,
        error=error,
    )
    nxt = JudgeTask(task.claim_id, task.sentence, task.options, hits, error)
    return Command(update={"events": [event]}, goto=Send("judge", nxt))


async def judge(task: JudgeTask, runtime: Runtime[Context]) -> dict[str, Any]:
    """Judge one claim against its evidence. Judges never raise; their faults are in the verdict."""
    clock = _Clock()
    the_judge = runtime.context.judge_for(task.options.judge)
    passages = [
        EvidencePassage(id=h.id, text=h.text, title=h.title, source=h.source, score=h.score)
        for h in task.evidence
    ]
    judgement: Judgement = await the_judge.judge(task.sentence.text, passages)
    v = judgement.verdict
    cited = set(v.citations)
    error = task.retrieval_error or v.error
    s = task.sentence
    result = ClaimResult(
        claim_id=task.claim_id,
        sentence_index=s.index,
        text=s.text,
        start=s.start,
        end=s.end,
        score=s.score,
        verdict=v.label,
        confidence=v.confidence,
        rationale=v.rationale,
        citations=list(v.citations),
        evidence=[h.model_copy(update={"cited": h.id in cited}) for h in task.evidence],
        judge=v.judge,
        detail=v,
        error=error,
    )
    decision: dict[str, Any] = {"verdict": v.label, "confidence": v.confidence, "reason": v.rationale}
    if v.downgraded_reason:
        decision["downgraded"] = v.downgraded_reason
    if v.second_opinion is not None:
        decision["second_opinion"] = v.second_opinion.label
        decision["agreement"] = v.agreement
    event = clock.event(
        "judge",
        claim_id=task.claim_id,
        inputs={"claim": s.text, "judge": the_judge.name, "evidence": [h.id for h in task.evidence]},
        outputs={
            "verdict": v.model_dump(mode="json"),
            "trace": judgement.trace.model_dump(mode="json"),
        },
        decisions=[decision],
        error=error,
    )
    return {"results": [result], "events": [event]}


def summarise(sentences: list[ScoredSentence], claims: list[ClaimResult]) -> Summary:
    """Counts over a run."""
    labels = [c.verdict for c in claims]
    return Summary(
        sentences=len(sentences),
        check_worthy=sum(s.check_worthy for s in sentences),
        checked=len(claims),
        supported=labels.count("SUPPORTED"),
        refuted=labels.count("REFUTED"),
        not_enough_info=labels.count("NOT_ENOUGH_INFO"),
        errors=sum(c.error is not None for c in claims),
    )


def run_header(
    state: InputState,
    ctx: Context,
    *,
    status: RunStatus,
    reason: str | None,
    options: dict[str, Any] | None = None,
) -> RunHeader:
    """The header of a run that ends now: timing, status, options, versions and owner."""
    finished = datetime.now(UTC)
    return RunHeader(
        trace_id=state.trace_id,
        created_at=state.started_at,
        finished_at=finished,
        duration_ms=(finished - state.started_at).total_seconds() * 1000.0,
        status=status,
        status_reason=reason,
        options=options if options is not None else state.options.model_dump(mode="json"),
        versions=dict(ctx.versions),
        owner=state.owner,
    )


def export_trace(ctx: Context, trace: RunTrace) -> None:
    """Hand a finished run to every trace sink; a failing sink is logged, never raised."""
    for sink in ctx.trace_sinks:
        try:
            sink.export(trace)
        except Exception as exc:  # telemetry must not cost the answer
            logger.error("exporting trace %s failed: %s", trace.header.trace_id, describe_error(exc))


def trace_path(events: list[TraceEvent]) -> list[str]:
    """The nodes a run passed through, in first-visit order."""
    return list(dict.fromkeys(e.node for e in events))


async def report(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Collect the verdicts in input order, summarise, and store the trace."""
    clock = _Clock()
    ctx = runtime.context
    claims = sorted(state.results, key=lambda c: c.sentence_index)
    summary = summarise(state.sentences, claims)
    status: Literal["ok", "partial"] = "partial" if summary.errors else "ok"
    reason = f"{summary.errors} claim(s) hit a failure; see their errors" if summary.errors else None
    event = clock.event(
        "report",
        inputs={"results": len(claims)},
        outputs={"summary": summary.model_dump(), "status": status},
    )
    events = [*state.events, event]
    options = state.options.model_dump(mode="json") | {"threshold": state.threshold}
    header = run_header(state, ctx, status=status, reason=reason, options=options)
    duration_ms = header.duration_ms
    trace = RunTrace(
        header=header,
        text=state.text,
        sentences=state.sentences,
        claims=claims,
        summary=summary,
        events=events,
        path=trace_path(events),
    )
    stored = False
    if ctx.trace_store is not None:
        try:
            await run_blocking(ctx.trace_store.save, trace)
            stored = True
        except Exception as exc:  # the answer is worth more than its record; the failure is logged
            logger.error("trace %s was not stored: %s", state.trace_id, describe_error(exc))
    await run_blocking(export_trace, ctx, trace)
    result = VerifyResult(
        trace_id=state.trace_id,
        status=status,
        threshold=state.threshold,
        sentences=state.sentences,
        claims=claims,
        summary=summary,
        duration_ms=duration_ms,
        trace_stored=stored,
        trace=trace if state.options.include_trace else None,
    )
    return {"events": [event], "result": result}
