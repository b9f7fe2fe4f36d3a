"""The other endpoints' shapes: predictions, documents, health, and the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from verifact.models._base import ServerModel


class SentencePrediction(ServerModel):
    """One sentence's check-worthiness."""

    text: str
    """The sentence as sent."""
    score: float
    """Probability that it is a check-worthy claim."""
    check_worthy: bool
    """``score >= threshold``."""
    truncated: bool
    """The classifier saw only its first tokens."""


class PredictResponse(ServerModel):
    """The classifier's answer, in input order."""

    predictions: list[SentencePrediction]
    """One per sentence sent, in order."""
    threshold: float
    """The threshold applied."""
    model: dict[str, Any]
    """The classifier's version information."""


class DocumentsResponse(ServerModel):
    """What the evidence index did with added documents."""

    added: int
    """Passages added."""
    skipped_duplicates: int
    """Documents skipped as exact repeats."""
    total: int
    """Passages in the index afterwards."""


class Health(ServerModel):
    """The answer of ``/healthz`` and ``/readyz``."""

    status: str
    """ok for liveness; loading, ready or failed for readiness."""
    ready: bool
    """Models and index are loaded."""
    reason: str | None = None
    """Why the server is not ready."""
    versions: dict[str, Any] = Field(default_factory=dict)
    """Versions of the loaded parts (readiness only)."""
    trace_store_failures: int = 0
    """Runs answered since the server started whose trace the store refused."""


class ErrorInfo(ServerModel):
    """The body of every error answer (``{"error": {...}}``) and of a stream's ``error`` event."""

    code: str
    """A stable machine-readable name: invalid_input, too_large, not_found, unavailable, ..."""
    message: str
    """What went wrong, for people."""
    details: list[dict[str, Any]] = Field(default_factory=list)
    """Per-field problems of invalid input."""
    trace_id: str | None = None
    """The failed run's trace, when one was stored."""


class Document(BaseModel):
    """A document to add to the evidence index (`Client.add_documents`)."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    text: str = Field(min_length=1)
    """The document's text."""
    id: str | None = None
    """A stable id; None lets the server use a content hash."""
    title: str = ""
    """The document's title, shown with its passages."""
    source: str = ""
    """Where it came from (a file, a collection)."""
    url: str = ""
    """A link to it."""
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Flat key-value data kept with its passages."""
