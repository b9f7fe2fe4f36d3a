"""The `Judge` seam and the verdict rules every judge shares: citation checks and abstaining.

A judge returns one `Judgement` (verdict and trace together) rather than a tuple: callers store both,
named fields survive additions, and the pair is one pydantic value that serialises as a whole.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from graph.schemas import EvidencePassage, Judgement, LLMVerdict, Verdict

NO_EVIDENCE_REASON = "no evidence passages were given, so the claim cannot be checked"
EMPTY_CLAIM_REASON = "the claim is empty"


@runtime_checkable
class Judge(Protocol):
    """Turns a claim and its evidence into a verdict, with a trace of how.

    `judge` never raises for a failure of the judge or of what it calls: it answers NOT_ENOUGH_INFO
    with confidence 0, `Verdict.error` set and the fault in the trace. Cancellation (a BaseException)
    still propagates, as asyncio requires.
    """

    @property
    def name(self) -> str:
        """A short stable name, recorded in verdicts and traces."""
        ...

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        """Judge `claim` against `evidence`; citations may only name ids of `evidence`."""
        ...


def describe_error(exc: BaseException) -> str:
    """An exception as recorded in verdicts and traces: "TypeName: message"."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def abstain(judge: str, reason: str, *, error: str | None = None) -> Verdict:
    """A NOT_ENOUGH_INFO verdict with confidence 0, for a judge that cannot or will not decide.

    Args:
        judge: The judge's name.
        reason: Why, in words; becomes the rationale and `downgraded_reason`.
        error: The failure behind it, if any (see `describe_error`).
    """
    return Verdict(
        label="NOT_ENOUGH_INFO",
        confidence=0.0,
        rationale=reason,
        downgraded_reason=reason,
        judge=judge,
        error=error,
    )


def check_citations(parsed: LLMVerdict, evidence: Sequence[EvidencePassage], *, judge: str) -> Verdict:
    """Keep only citations of given passages, and downgrade a verdict that has none left.

    Invented ids are dropped from `citations` and listed in `invalid_citations`. A SUPPORTED or
    REFUTED verdict without any valid citation becomes NOT_ENOUGH_INFO with confidence 0 and the
    reason recorded: an unsupported yes or no is worse than an honest "cannot tell". A citation that
    matches a given id once HTML entities are undone counts as that id, since the prompt shows ids
    escaped.

    Args:
        parsed: The model's validated answer.
        evidence: The passages the model was given.
        judge: The judge's name.
    """
    given = {p.id for p in evidence}
    valid: list[str] = []
    invalid: list[str] = []
    for cited in dict.fromkeys(c.strip() for c in parsed.citations):
        resolved = cited if cited in given else html.unescape(cited)
        if resolved in given:
            if resolved not in valid:
                valid.append(resolved)
        elif cited not in invalid:
            invalid.append(cited)
    if parsed.label != "NOT_ENOUGH_INFO" and not valid:
        reason = f"{parsed.label} without a citation of a given passage"
        if invalid:
            reason += f" (cited unknown ids: {', '.join(invalid)})"
        return Verdict(
            label="NOT_ENOUGH_INFO",
            confidence=0.0,
            rationale=parsed.rationale,
            invalid_citations=tuple(invalid),
            downgraded_reason=reason,
            judge=judge,
        )
    return Verdict(
        label=parsed.label,
        confidence=parsed.confidence,
        rationale=parsed.rationale,
        citations=tuple(valid),
        invalid_citations=tuple(invalid),
        judge=judge,
    )
