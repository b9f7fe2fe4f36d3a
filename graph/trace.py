"""Recording one judge call as it happens, then freezing it into a `JudgeTrace`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from graph.errors import JudgeError
from graph.judges import describe_error
from graph.prompts import RenderedPrompt
from graph.schemas import AttemptRecord, Judgement, JudgeTrace, LLMVerdict, StructuredMode, Verdict


@dataclass
class TraceRecorder:
    """What one LLM judge call has seen so far; frozen into a `JudgeTrace` by `finish`."""

    judge: str
    model: str
    started: float
    prompt: RenderedPrompt | None = None
    parsed: LLMVerdict | None = None
    raw_reply: str | None = None
    mode: StructuredMode | None = None
    status: int | None = None
    retries: int = 0
    skipped_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    attempt_log: list[AttemptRecord] = field(default_factory=list)

    def record(
        self,
        mode: StructuredMode,
        outcome: str,
        started: float,
        *,
        failure: JudgeError | None = None,
        reply: str | None = None,
        wait_s: float = 0.0,
    ) -> None:
        """Log one request."""
        self.attempt_log.append(
            AttemptRecord.model_validate(
                {
                    "number": len(self.attempt_log) + 1,
                    "mode": mode,
                    "outcome": outcome,
                    "status": self.status,
                    "error": describe_error(failure) if failure is not None else None,
                    "raw_reply": reply,
                    "latency_ms": (time.perf_counter() - started) * 1000.0,
                    "wait_ms": wait_s * 1000.0,
                }
            )
        )

    def add_usage(self, usage: Any) -> None:
        """Add a reply's token counts to the running totals (servers may send none)."""
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = getattr(usage, key, None)
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[key] = self.usage.get(key, 0) + value

    def finish(self, verdict: Verdict) -> Judgement:
        """The judgement with its trace; the trace is cut to the bare facts if it cannot be built."""
        latency_ms = (time.perf_counter() - self.started) * 1000.0
        try:
            trace = JudgeTrace(
                judge=self.judge,
                model=self.model,
                prompt_version=self.prompt.version if self.prompt else "",
                prompt_hash=self.prompt.template_hash if self.prompt else "",
                messages=self.prompt.messages if self.prompt else (),
                raw_reply=self.raw_reply,
                parsed=self.parsed,
                usage=self.usage,
                latency_ms=latency_ms,
                attempts=len(self.attempt_log),
                retries=self.retries,
                mode=self.mode,
                attempt_log=tuple(self.attempt_log),
                errors=tuple(self.errors),
                skipped_reason=self.skipped_reason,
            )
        except Exception as exc:  # a trace must never cost the verdict
            trace = JudgeTrace(
                judge=self.judge, model=self.model, latency_ms=latency_ms, errors=(describe_error(exc),)
            )
        return Judgement(verdict=verdict, trace=trace)
