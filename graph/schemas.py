"""Values that cross the judges' boundary: evidence in, the model's JSON, verdicts and traces out."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

Label = Literal["SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"]
"""A verdict's label."""
LABELS: tuple[Label, ...] = get_args(Label)

StructuredMode = Literal["json_schema", "tools", "json_text"]
"""How a judge asks an OpenAI-compatible server for JSON, most to least constrained."""
STRUCTURED_MODES: tuple[StructuredMode, ...] = get_args(StructuredMode)

RATIONALE_MAX_CHARS = 600
"""The longest rationale kept; longer ones are clipped (see `LLMVerdict.rationale`)."""

# Spellings that mean one of our labels without doubt: FEVER's own SUPPORTS/REFUTES, and the
# NOT ENOUGH INFO family. Anything else is a schema mismatch.
_LABEL_ALIASES: dict[str, Label] = {
    "SUPPORTS": "SUPPORTED",
    "SUPPORT": "SUPPORTED",
    "REFUTES": "REFUTED",
    "REFUTE": "REFUTED",
    "NEI": "NOT_ENOUGH_INFO",
    "NOT_ENOUGH_INFORMATION": "NOT_ENOUGH_INFO",
}


class EvidencePassage(BaseModel):
    """One passage a judge is given; its `id` is what a verdict cites."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """Stable passage id, unique within one judge call."""
    text: str
    """The passage text. Untrusted: prompts delimit and escape it."""
    title: str = ""
    """Document title, shown to the model with the text."""
    source: str = ""
    """Where the passage came from (a file, a collection)."""
    score: float | None = None
    """The retriever's score, when the passage came from a search."""


class LLMVerdict(BaseModel):
    """The JSON object a model must answer with; validated strictly, with the few tolerances below.

    Unknown keys are rejected. Tolerated, because their meaning is unambiguous and small local models
    produce them often: label spellings such as "supports", "Not enough info" or "NEI"; citations
    given as numbers or as one bare string; a missing `rationale` or `citations` (an empty one, which
    is safe: a SUPPORTED or REFUTED verdict without citations is downgraded anyway); a rationale over
    `RATIONALE_MAX_CHARS` (clipped: verbosity is not a wrong verdict). Confidence is never rescaled:
    whether 85 means 0.85 cannot be known, so a value outside [0, 1] is a mismatch.
    """

    model_config = ConfigDict(extra="forbid")

    label: Label
    """SUPPORTED, REFUTED or NOT_ENOUGH_INFO."""
    confidence: float = Field(ge=0.0, le=1.0)
    """The model's confidence in its label, from 0 to 1."""
    rationale: str = Field(default="", max_length=RATIONALE_MAX_CHARS)
    """One or two sentences on why, in terms of the cited passages."""
    citations: list[str] = Field(default_factory=list)
    """Ids of the given passages the verdict relies on."""

    @field_validator("label", mode="before")
    @classmethod
    def _normalise_label(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        key = "_".join(value.strip().upper().replace("-", " ").split())
        return _LABEL_ALIASES.get(key, key)

    @field_validator("rationale", mode="before")
    @classmethod
    def _clip_rationale(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > RATIONALE_MAX_CHARS:
            return value[: RATIONALE_MAX_CHARS - 1] + "…"
        return "" if value is None else value

    @field_validator("citations", mode="before")
    @classmethod
    def _normalise_citations(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str | int) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value


def verdict_json_schema(evidence_ids: list[str] | None = None) -> dict[str, Any]:
    """The JSON schema of `LLMVerdict` as sent to servers, in the subset every server accepts.

    Bounds (confidence range, rationale length) are stated in descriptions rather than as keywords:
    OpenAI's strict mode rejects some keywords and local grammar engines ignore others; pydantic
    checks them on the way back. With `evidence_ids`, citations are restricted to those ids, so a
    server that constrains decoding cannot even produce an invented id, and to at most that many
    items (``maxItems``): without it Gemma 3 270M on llama.cpp often repeated one id under the
    grammar until ``max_tokens`` cut the reply off, and the call failed. This one bound is a keyword
    because a description cannot stop a grammar; a server that refuses the keyword answers 4xx/5xx
    and the judge falls back to the next structured-output mode.

    Args:
        evidence_ids: The ids of the passages given, or None for any string.
    """
    citation_item: dict[str, Any] = {"type": "string"}
    citations: dict[str, Any] = {
        "type": "array",
        "items": citation_item,
        "description": "Ids of the evidence passages the verdict relies on.",
    }
    if evidence_ids:
        ids = list(dict.fromkeys(evidence_ids))
        citation_item["enum"] = ids
        citations["maxItems"] = len(ids)
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": list(LABELS)},
            "confidence": {"type": "number", "description": "From 0 to 1."},
            "rationale": {
                "type": "string",
                "description": f"One or two sentences, at most {RATIONALE_MAX_CHARS} characters.",
            },
            "citations": citations,
        },
        "required": ["label", "confidence", "rationale", "citations"],
        "additionalProperties": False,
    }


class Verdict(BaseModel):
    """What a judge returns for one claim."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Label
    """The final label, after citation checks."""
    confidence: float = Field(ge=0.0, le=1.0)
    """The judge's confidence in `label`; 0 when the judge abstained, failed or was downgraded."""
    rationale: str = ""
    """A short explanation (the model's own words, or why the judge abstained)."""
    citations: tuple[str, ...] = ()
    """Ids of given passages the verdict relies on; only ids that were actually given."""
    invalid_citations: tuple[str, ...] = ()
    """Ids the judge cited that were not given (invented); dropped from `citations`, kept as a flag."""
    downgraded_reason: str | None = None
    """Why a SUPPORTED or REFUTED answer became NOT_ENOUGH_INFO, or why the judge abstained."""
    judge: str
    """The name of the judge that produced it."""
    error: str | None = None
    """The failure that made the judge give up ("TypeName: message"), if any."""
    second_opinion: Verdict | None = None
    """An independent judge's verdict on the same claim and evidence, when one was asked
    (`graph.second_opinion.SecondOpinionJudge`); it never changes `label` unless agreement is required."""
    agreement: bool | None = None
    """Whether `second_opinion` has the answering judge's label; None when there is no second opinion,
    or when either judge failed (a failed judge has no opinion to agree with)."""


class ChatMessage(BaseModel):
    """One message of a rendered prompt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user"]
    """Who speaks."""
    content: str
    """The text, evidence already delimited and escaped."""


class AttemptRecord(BaseModel):
    """One request to the model, successful or not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    """1 for the first request of a judge call."""
    mode: StructuredMode
    """The structured-output mode the request used."""
    outcome: Literal["ok", "fallback", "retry", "failed"]
    """ok: a valid verdict; fallback: the server rejected the mode, the next one follows;
    retry: a retryable fault, another request follows; failed: the judge gave up after it."""
    status: int | None = None
    """The HTTP status, when an answer came back."""
    error: str | None = None
    """The fault ("TypeName: message"), when there was one."""
    raw_reply: str | None = None
    """The text the model produced (message content or tool-call arguments)."""
    latency_ms: float = 0.0
    """Wall time of the request, including reading the reply."""
    wait_ms: float = 0.0
    """Backoff slept after this attempt before the next one."""


class JudgeTrace(BaseModel):
    """Everything needed to see why a judge decided what it did, and what it cost.

    Common to every judge: `judge`, `model`, `latency_ms`, `errors`, `skipped_reason`, `details`. The
    prompt, reply and request fields are filled by judges that talk to a language model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    """The judge's name."""
    model: str
    """The model that answered (the server's name for it when the reply carried one)."""
    prompt_version: str = ""
    """Version of the prompt template."""
    prompt_hash: str = ""
    """sha256 of the prompt template, so a changed template is visible even under an old version."""
    messages: tuple[ChatMessage, ...] = ()
    """The rendered prompt as sent."""
    raw_reply: str | None = None
    """The reply text of the last request that got one: message content, or tool-call arguments."""
    parsed: LLMVerdict | None = None
    """The model's verdict as validated, before citation checks."""
    usage: dict[str, int] = Field(default_factory=dict)
    """Token usage summed over every request of the call (prompt_tokens, completion_tokens, ...)."""
    latency_ms: float = 0.0
    """Wall time of the whole judge call, backoff included."""
    attempts: int = 0
    """Requests made; 0 when the model was not called."""
    retries: int = 0
    """Requests repeated after a fault (fallbacks between modes are not retries)."""
    mode: StructuredMode | None = None
    """The structured-output mode of the last request."""
    attempt_log: tuple[AttemptRecord, ...] = ()
    """Each request in order."""
    errors: tuple[str, ...] = ()
    """Every fault met during the call, in order, as "TypeName: message"."""
    skipped_reason: str | None = None
    """Why the model was not called at all (no evidence, empty claim)."""
    details: dict[str, Any] = Field(default_factory=dict)
    """Judge-specific extras (per-passage scores of a local verifier, for example)."""
    second_opinion: JudgeTrace | None = None
    """The second judge's own trace, when a second opinion was asked."""


class Judgement(BaseModel):
    """A judge's answer: the verdict and the trace that explains it, always both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    """The verdict."""
    trace: JudgeTrace
    """How it was reached."""
