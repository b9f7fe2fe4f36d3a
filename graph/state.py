"""The graph's state: what a run reads in, and what nodes add as they go."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from graph.report import ClaimResult, EvidenceHit, ScoredSentence, TraceEvent, VerifyOptions, VerifyResult


@dataclass
class InputState:
    """What a caller gives a run."""

    text: str
    """The text to check."""
    options: VerifyOptions
    """Per-request knobs."""
    trace_id: str
    """The id the run's trace is stored under."""
    started_at: datetime
    """When the request came in (UTC)."""
    owner: str | None = None
    """The hashed API key id the trace belongs to, when keys are on."""


@dataclass
class State(InputState):
    """A run's whole state. Lists with a reducer are appended to by nodes running in parallel."""

    sentences: list[ScoredSentence] = field(default_factory=list)
    """Every sentence with its check-worthiness score (filled by split, then detect)."""
    threshold: float = 0.5
    """The check-worthiness threshold in force (the option, else the classifier's stored one)."""
    results: Annotated[list[ClaimResult], operator.add] = field(default_factory=list)
    """One result per checked claim, in completion order (report sorts them)."""
    events: Annotated[list[TraceEvent], operator.add] = field(default_factory=list)
    """Trace events of every node run, in completion order."""
    result: VerifyResult | None = None
    """The answer, set by report."""


@dataclass(frozen=True)
class ClaimTask:
    """What one claim's retrieve step gets (sent by detect's router)."""

    claim_id: str
    sentence: ScoredSentence
    options: VerifyOptions


@dataclass(frozen=True)
class JudgeTask:
    """What one claim's judge step gets from its retrieve step."""

    claim_id: str
    sentence: ScoredSentence
    options: VerifyOptions
    evidence: list[EvidenceHit]
    retrieval_error: str | None = None
