"""Values a verification run hands out: options in; sentences, claim verdicts, summary and trace out.

They cross the HTTP boundary as they are (the API returns them, the trace store saves them), so they
are pydantic models with a docstring on every field; the viewer and the SDK read the same names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.schemas import Label, Verdict

JudgeChoice = Literal["auto", "llm", "nli"]
"""Which judge answers: auto (the LLM when one is configured, else NLI), llm, or nli."""
RunStatus = Literal["ok", "partial", "error"]
"""ok: every step ran; partial: some claims failed or were cut off; error: the run itself failed."""

MAX_TOP_K = 50
MAX_CLAIMS = 200


class VerifyOptions(BaseModel):
    """Per-request knobs of a run; anything left out takes the service's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Check-worthiness cut-off; None: the threshold stored with the classifier (tuned on dev)."""
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K)
    """Evidence passages retrieved and given to the judge per claim."""
    max_claims: int = Field(default=20, ge=1, le=MAX_CLAIMS)
    """At most this many claims are checked: the highest-scoring ones, reported in input order."""
    judge: JudgeChoice = "auto"
    """Which judge answers (see `JudgeChoice`)."""
    include_trace: bool = False
    """Return the full trace in the response (it is stored either way)."""


class Sentence(BaseModel):
    """One sentence of the input with its place in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    """0-based position among the sentences."""
    text: str
    """The sentence as it appears in the input, surrounding whitespace removed."""
    start: int
    """Character offset of its first character in the input."""
    end: int
    """Character offset just past its last character: ``input[start:end] == text``."""


class ScoredSentence(Sentence):
    """A sentence with the classifier's check-worthiness decision."""

    score: float
    """Probability that the sentence is a check-worthy factual claim."""
    check_worthy: bool
    """score >= threshold."""
    selected: bool = False
    """Checked as a claim (check-worthy and within `max_claims`)."""
    truncated: bool = False
    """The classifier saw only the first tokens of a very long sentence."""


class EvidenceHit(BaseModel):
    """A retrieved passage as the judge saw it, with every score that placed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """The passage id; what verdicts cite."""
    text: str
    title: str = ""
    source: str = ""
    url: str = ""
    rank: int
    """1-based position in the retrieval ranking."""
    score: float
    """The fused score the ranking is sorted by."""
    dense_score: float | None = None
    """Cosine similarity to the claim; None when dense search did not return it."""
    lexical_score: float | None = None
    """BM25 score; None when lexical search did not return it."""
    cited: bool = False
    """The verdict cites this passage."""


class ClaimResult(BaseModel):
    """One checked claim: where it is, how check-worthy, what the judge decided, on which evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim_id: str
    """"c<sentence index>": stable within a run, used by trace events."""
    sentence_index: int
    text: str
    start: int
    end: int
    score: float
    """Check-worthiness score."""
    verdict: Label
    confidence: float
    rationale: str
    citations: list[str] = Field(default_factory=list)
    """Ids of evidence passages the verdict relies on (all among `evidence`)."""
    evidence: list[EvidenceHit] = Field(default_factory=list)
    judge: str
    """The judge that answered."""
    detail: Verdict | None = None
    """The judge's full verdict: invalid citations, downgrade reason, error, second opinion, agreement."""
    error: str | None = None
    """A failure on this claim's path (retrieval or judge), as "TypeName: message"."""


class Summary(BaseModel):
    """Counts over a run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sentences: int
    check_worthy: int
    """Sentences at or above the threshold."""
    checked: int
    """Claims checked (check-worthy, capped at `max_claims`)."""
    supported: int
    refuted: int
    not_enough_info: int
    errors: int
    """Claims whose path hit a failure (their verdict is NOT_ENOUGH_INFO)."""


class TraceEvent(BaseModel):
    """One node run: what went in, what came out, and why it decided what it did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    """split, detect, retrieve, judge or report."""
    claim_id: str | None = None
    """The claim a per-claim node ran for."""
    started_at: datetime
    duration_ms: float
    inputs: dict[str, Any] = Field(default_factory=dict)
    """What the node read, summarised where large."""
    outputs: dict[str, Any] = Field(default_factory=dict)
    """What it produced."""
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    """Each choice with its reason (a score against a threshold, a passage's scores, a verdict)."""
    error: str | None = None
    """A failure the node met and recorded rather than raised."""


class RunHeader(BaseModel):
    """Enough about a run to replay it and to see why it differs from another."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str
    created_at: datetime
    finished_at: datetime | None = None
    duration_ms: float = 0.0
    status: RunStatus = "ok"
    status_reason: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    """The options in force, defaults filled in (threshold included)."""
    versions: dict[str, Any] = Field(default_factory=dict)
    """Package version, model directories and hashes, index manifest hash, prompt-template hash."""
    owner: str | None = None
    """The API key's id that created it (hashed; never the key), when keys are on."""


class RunTrace(BaseModel):
    """A whole run as stored: header, input, per-sentence scores, verdicts and node events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header: RunHeader
    text: str
    sentences: list[ScoredSentence] = Field(default_factory=list)
    claims: list[ClaimResult] = Field(default_factory=list)
    summary: Summary
    events: list[TraceEvent] = Field(default_factory=list)
    path: list[str] = Field(default_factory=list)
    """The nodes this run passed through, in order, without repeats (the graph path to draw)."""


class VerifyResult(BaseModel):
    """The answer to a verification request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str
    status: RunStatus
    threshold: float
    """The check-worthiness threshold applied."""
    sentences: list[ScoredSentence]
    claims: list[ClaimResult]
    summary: Summary
    duration_ms: float
    trace_stored: bool = True
    """False when the trace store failed (the failure is logged); the answer stands."""
    trace: RunTrace | None = None
    """The full trace, when `include_trace` was asked."""


class TraceSummary(BaseModel):
    """One row of a trace listing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str
    created_at: datetime
    status: RunStatus
    snippet: str
    """The first characters of the input."""
    duration_ms: float
    summary: Summary


class TracePage(BaseModel):
    """A page of a trace listing, newest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[TraceSummary]
    next_cursor: str | None = None
    """Pass it back to get the next page; None on the last page."""
