"""Request and response bodies of the HTTP API that are not the pipeline's own values."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from graph.report import MAX_CLAIMS, MAX_TOP_K, JudgeChoice, VerifyOptions


def _encodable(value: str) -> str:
    """Refuse lone surrogates: JSON's "\\ud800" escapes decode to them, and UTF-8 cannot hold one.

    pydantic refuses them in strings with a length constraint but lets plain ``str`` fields through,
    which then fail (500) where an answer or a store encodes them.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode: a lone surrogate at character {exc.start}") from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]
"""A request string that can be stored and sent back as UTF-8."""


class VerifyRequest(BaseModel):
    """POST /verify and /verify/stream: a text and the run's options."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="The text to check (at most the server's max_text_chars).")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="Check-worthiness cut-off.")
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="Evidence passages per claim.")
    max_claims: int = Field(default=20, ge=1, le=MAX_CLAIMS, description="Claims checked at most.")
    judge: JudgeChoice = Field(default="auto", description="auto, llm or nli.")
    include_trace: bool = Field(default=False, description="Return the full trace in the response.")

    def options(self) -> VerifyOptions:
        """The run's options."""
        return VerifyOptions.model_validate(self.model_dump(exclude={"text"}))


class PredictRequest(BaseModel):
    """POST /predict: sentences to score for check-worthiness."""

    model_config = ConfigDict(extra="forbid")

    sentences: list[Text] = Field(min_length=1, description="Sentences to score, in order.")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class SentencePrediction(BaseModel):
    """One sentence's check-worthiness."""

    text: str
    score: float
    check_worthy: bool
    truncated: bool


class PredictResponse(BaseModel):
    """The classifier's answer, in input order."""

    predictions: list[SentencePrediction]
    threshold: float
    model: dict[str, Any]


class DocumentIn(BaseModel):
    """A document to add to the evidence index."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=512, description="Else a content hash.")
    text: str = Field(min_length=1)
    title: Text = ""
    source: Text = ""
    url: Text = ""
    metadata: dict[Text, Text | int | float | bool] = Field(default_factory=dict)


class DocumentsRequest(BaseModel):
    """POST /documents."""

    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1)


class DocumentsResponse(BaseModel):
    """What the index did with the documents."""

    added: int
    skipped_duplicates: int
    total: int
    """Passages in the index afterwards."""


class Health(BaseModel):
    """GET /healthz and /readyz."""

    status: str
    ready: bool
    reason: str | None = None
    versions: dict[str, Any] = Field(default_factory=dict)
    trace_store_failures: int = 0
    """Runs answered since start whose trace the store refused (each answered ``trace_stored: false``)."""


class ErrorBody(BaseModel):
    """The one error shape of every non-2xx answer."""

    code: str
    """A stable machine-readable name: invalid_input, too_large, not_found, unavailable, internal."""
    message: str
    """What went wrong, for people."""
    details: list[dict[str, Any]] = Field(default_factory=list)
    trace_id: str | None = None


class ErrorResponse(BaseModel):
    """``{"error": {...}}``."""

    error: ErrorBody
