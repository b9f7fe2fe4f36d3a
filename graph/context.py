"""The services a run uses, injected through LangGraph's ``context_schema``; seams are Protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from graph.judges import Judge
from graph.otel import TraceSink
from graph.report import EvidenceHit, JudgeChoice
from graph.splitter import SentenceSplitter
from graph.tracestore import TraceStore


@dataclass(frozen=True)
class SentenceScore:
    """The classifier's output for one sentence."""

    score: float
    truncated: bool = False


class CheckWorthinessScorer(Protocol):
    """Scores sentences for check-worthiness; the graph's seam to `classifier`."""

    @property
    def threshold(self) -> float:
        """The stored decision threshold (tuned on dev)."""
        ...

    def score(self, sentences: Sequence[str]) -> list[SentenceScore]:
        """One score per sentence, in order; blocking."""
        ...


class EvidenceSearcher(Protocol):
    """Finds evidence passages for a claim; the graph's seam to `retrieval`."""

    def search(self, claim: str, k: int) -> list[EvidenceHit]:
        """The ``k`` best passages, ranked, with their scores; blocking. Raises on failure."""
        ...


class JudgeUnavailableError(Exception):
    """A request asked for a judge the service does not have (an LLM with none configured)."""


@dataclass(frozen=True)
class Context:
    """Everything a run needs besides its input: services, settings, and what to record."""

    splitter: SentenceSplitter
    scorer: CheckWorthinessScorer
    searcher: EvidenceSearcher
    judges: Mapping[str, Judge]
    """"nli" always; "llm" when an endpoint is configured (with the NLI second opinion)."""
    trace_store: TraceStore | None = None
    """Where report stores the trace; None keeps traces in the response only."""
    trace_sinks: tuple[TraceSink, ...] = ()
    """Where finished runs are exported besides the store (OpenTelemetry)."""
    versions: Mapping[str, Any] = field(default_factory=dict)
    """Package, model, index and prompt versions, copied into every trace header."""
    max_concurrency: int = 8
    """Per-claim steps that run at once within one run."""

    def judge_for(self, choice: JudgeChoice) -> Judge:
        """The judge a request's ``judge`` option names.

        Raises:
            JudgeUnavailableError: ``llm`` was asked and no LLM endpoint is configured.
        """
        if choice == "nli":
            return self.judges["nli"]
        if "llm" in self.judges:
            return self.judges["llm"]
        if choice == "llm":
            raise JudgeUnavailableError(
                "judge 'llm' was asked but no LLM endpoint is configured "
                "(set VERIFACT_LLM_BASE_URL and VERIFACT_LLM_MODEL)"
            )
        return self.judges["nli"]
