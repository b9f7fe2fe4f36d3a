"""Typed views of the service's JSON: what the SDK sends and what it gets back.

Response models are immutable and keep the fields a newer server adds in ``model_extra`` instead of
failing on them, so an older SDK keeps working. Open sets of names (verdict labels, run
statuses, node names) are plain strings for the same reason; their current values are documented.
"""

from verifact.models.run import (
    ClaimResult,
    EvidenceHit,
    RunHeader,
    RunTrace,
    ScoredSentence,
    StreamEvent,
    Summary,
    TraceEvent,
    TracePage,
    TraceSummary,
    VerdictDetail,
    VerifyResult,
)
from verifact.models.service import (
    Document,
    DocumentsResponse,
    ErrorInfo,
    Health,
    PredictResponse,
    SentencePrediction,
)

__all__ = [
    "ClaimResult",
    "Document",
    "DocumentsResponse",
    "ErrorInfo",
    "EvidenceHit",
    "Health",
    "PredictResponse",
    "RunHeader",
    "RunTrace",
    "ScoredSentence",
    "SentencePrediction",
    "StreamEvent",
    "Summary",
    "TraceEvent",
    "TracePage",
    "TraceSummary",
    "VerdictDetail",
    "VerifyResult",
]
