"""A verification run as the server reports it: sentences, claims, evidence, verdicts, traces, stream."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from verifact.models._base import ServerModel
from verifact.models.service import ErrorInfo


class ScoredSentence(ServerModel):
    """One sentence of the input with the classifier's check-worthiness decision."""

    index: int
    """0-based position among the sentences."""
    text: str
    """The sentence as it appears in the input, surrounding whitespace removed."""
    start: int
    """Character offset of its first character in the input."""
    end: int
    """Character offset just past its last character: ``input[start:end] == text``."""
    score: float
    """Probability that the sentence is a check-worthy factual claim."""
    check_worthy: bool
    """``score >= threshold``."""
    selected: bool = False
    """Checked as a claim (check-worthy and within ``max_claims``)."""
    truncated: bool = False
    """The classifier saw only the first tokens of a very long sentence."""


class EvidenceHit(ServerModel):
    """A retrieved passage as the judge saw it, with the scores that placed it."""

    id: str
    """The passage id; what verdicts cite."""
    text: str
    """The passage text."""
    title: str = ""
    """The document's title."""
    source: str = ""
    """Where the document came from."""
    url: str = ""
    """A link to the document, when known."""
    rank: int
    """1-based position in the retrieval ranking."""
    score: float
    """The fused score the ranking is sorted by."""
    dense_score: float | None = None
    """Cosine similarity to the claim; None when dense search did not return the passage."""
    lexical_score: float | None = None
    """BM25 score; None when lexical search did not return the passage."""
    cited: bool = False
    """The verdict cites this passage."""


class VerdictDetail(ServerModel):
    """A judge's full verdict; loose on purpose, since judges add fields over time."""

    label: str
    """SUPPORTED, REFUTED or NOT_ENOUGH_INFO, after citation checks."""
    confidence: float = 0.0
    """The judge's confidence in ``label``; 0 when it abstained, failed or was downgraded."""
    rationale: str = ""
    """A short explanation."""
    citations: list[str] = Field(default_factory=list)
    """Ids of given passages the verdict relies on."""
    invalid_citations: list[str] = Field(default_factory=list)
    """Ids the judge cited that it was not given (invented), dropped from ``citations``."""
    downgraded_reason: str | None = None
    """Why a SUPPORTED or REFUTED answer became NOT_ENOUGH_INFO, or why the judge abstained."""
    judge: str = ""
    """The judge that produced it."""
    error: str | None = None
    """The failure that made the judge give up, if any."""
    second_opinion: VerdictDetail | None = None
    """An independent judge's verdict on the same claim and evidence, when one was asked."""
    agreement: bool | None = None
    """Whether ``second_opinion`` has the same label; None without a second opinion."""


class ClaimResult(ServerModel):
    """One checked claim: where it is, how check-worthy, what the judge decided, on which evidence."""

    claim_id: str
    """``c<sentence index>``: stable within a run, used by trace events."""
    sentence_index: int
    """The index of the sentence the claim is."""
    text: str
    """The claim's text."""
    start: int
    """Character offset in the input."""
    end: int
    """Character offset just past the claim in the input."""
    score: float
    """Check-worthiness score."""
    verdict: str
    """SUPPORTED, REFUTED or NOT_ENOUGH_INFO."""
    confidence: float
    """The judge's confidence in ``verdict``."""
    rationale: str
    """Why, in terms of the cited passages."""
    citations: list[str] = Field(default_factory=list)
    """Ids of evidence passages the verdict relies on (all among ``evidence``)."""
    evidence: list[EvidenceHit] = Field(default_factory=list)
    """The passages the judge was given."""
    judge: str
    """The judge that answered."""
    detail: VerdictDetail | None = None
    """The judge's full verdict: invalid citations, downgrade reason, error, second opinion."""
    error: str | None = None
    """A failure on this claim's path, as ``"TypeName: message"``."""


class Summary(ServerModel):
    """Counts over a run."""

    sentences: int
    """Sentences in the input."""
    check_worthy: int
    """Sentences at or above the threshold."""
    checked: int
    """Claims checked (check-worthy, capped at ``max_claims``)."""
    supported: int
    """Claims judged SUPPORTED."""
    refuted: int
    """Claims judged REFUTED."""
    not_enough_info: int
    """Claims judged NOT_ENOUGH_INFO."""
    errors: int
    """Claims whose path hit a failure (their verdict is NOT_ENOUGH_INFO)."""


class TraceEvent(ServerModel):
    """One node run: what went in, what came out, and why it decided what it did."""

    node: str
    """split, detect, retrieve, judge or report."""
    claim_id: str | None = None
    """The claim a per-claim node ran for."""
    started_at: datetime
    """When the node started."""
    duration_ms: float
    """How long it ran."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """What the node read, summarised where large."""
    outputs: dict[str, Any] = Field(default_factory=dict)
    """What it produced."""
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    """Each choice with its reason."""
    error: str | None = None
    """A failure the node met and recorded rather than raised."""


class RunHeader(ServerModel):
    """Enough about a run to replay it and to see why it differs from another."""

    trace_id: str
    """The run's id."""
    created_at: datetime
    """When the run started."""
    finished_at: datetime | None = None
    """When it finished."""
    duration_ms: float = 0.0
    """Wall time of the run."""
    status: str = "ok"
    """ok, partial (some claims failed or were cut off) or error (the run failed)."""
    status_reason: str | None = None
    """Why the status is not ok."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The options in force, defaults filled in."""
    versions: dict[str, Any] = Field(default_factory=dict)
    """Package version, model and index hashes, prompt-template hash."""
    owner: str | None = None
    """The hashed id of the API key that created the run, when keys are on."""


class RunTrace(ServerModel):
    """A whole run as stored: header, input, per-sentence scores, verdicts and node events."""

    header: RunHeader
    """The run's header."""
    text: str
    """The input text."""
    sentences: list[ScoredSentence] = Field(default_factory=list)
    """Every sentence with its score."""
    claims: list[ClaimResult] = Field(default_factory=list)
    """The checked claims."""
    summary: Summary
    """Counts over the run."""
    events: list[TraceEvent] = Field(default_factory=list)
    """Every node run, in order."""
    path: list[str] = Field(default_factory=list)
    """The nodes the run passed through, in order, without repeats."""


class VerifyResult(ServerModel):
    """The answer to a verification request."""

    trace_id: str
    """The run's id (for `Client.get_trace`)."""
    status: str
    """ok, partial or error."""
    threshold: float
    """The check-worthiness threshold applied."""
    sentences: list[ScoredSentence]
    """Every sentence of the input with its score."""
    claims: list[ClaimResult]
    """The checked claims, in input order."""
    summary: Summary
    """Counts over the run."""
    duration_ms: float
    """Wall time of the run."""
    trace_stored: bool = True
    """False when the server failed to store the trace; the answer stands."""
    trace: RunTrace | None = None
    """The full trace, when ``include_trace`` was asked."""


class TraceSummary(ServerModel):
    """One row of a trace listing."""

    trace_id: str
    """The run's id."""
    created_at: datetime
    """When the run started."""
    status: str
    """ok, partial or error."""
    snippet: str
    """The first characters of the input."""
    duration_ms: float
    """Wall time of the run."""
    summary: Summary
    """Counts over the run."""


class TracePage(ServerModel):
    """A page of a trace listing, newest first."""

    items: list[TraceSummary]
    """The runs on this page."""
    next_cursor: str | None = None
    """Pass it back as ``cursor`` for the next page; None on the last page."""


class StreamEvent(ServerModel):
    """One event of `Client.verify_stream`."""

    kind: Literal["node", "result", "error"]
    """node: a node run finished; result: the run's answer (last); error: the run failed (last)."""
    node: str | None = None
    """The node that finished (``kind == "node"``)."""
    events: list[TraceEvent] = Field(default_factory=list)
    """The trace events of that node run (``kind == "node"``)."""
    result: VerifyResult | None = None
    """The answer (``kind == "result"``)."""
    error: ErrorInfo | None = None
    """What failed (``kind == "error"``); ``error.trace_id`` names the stored failed run."""
