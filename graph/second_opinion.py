"""A judge that answers with one judge's verdict and records an independent second opinion.

The configured LLM answers; the local NLI verifier checks it. Both verdicts and traces are kept and
an `agreement` flag says whether they agree. With ``require_agreement`` a verdict the second judge
does not confirm (a different label, or no usable second opinion) becomes NOT_ENOUGH_INFO, with the
reason recorded: for users who would rather hear "cannot tell" than one model's unconfirmed answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from graph.judges import Judge, abstain, describe_error
from graph.schemas import EvidencePassage, Judgement, JudgeTrace, Verdict


class SecondOpinionJudge:
    """A `Judge` composed of a primary judge (the answer) and a second one (the check), run concurrently.

    `judge` never raises an `Exception`, even when either judge breaks its own promise not to.
    """

    def __init__(self, primary: Judge, second: Judge, *, require_agreement: bool = False) -> None:
        """Compose two judges.

        Args:
            primary: The judge whose verdict is the answer (the LLM judge).
            second: The independent check (the NLI judge).
            require_agreement: Answer NOT_ENOUGH_INFO unless the second judge gives the same label.
        """
        self._primary = primary
        self._second = second
        self._require_agreement = require_agreement

    @property
    def name(self) -> str:
        """ "<primary>+<second>"."""
        return f"{self._primary.name}+{self._second.name}"

    @property
    def require_agreement(self) -> bool:
        """Whether a disagreement turns the answer into NOT_ENOUGH_INFO."""
        return self._require_agreement

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        """Judge with both, answer with the primary's verdict (see the class docstring)."""
        started = time.perf_counter()
        try:
            results = await asyncio.gather(
                self._primary.judge(claim, evidence),
                self._second.judge(claim, evidence),
                return_exceptions=True,
            )
            first, second = (
                _settle(j, r) for j, r in zip((self._primary, self._second), results, strict=True)
            )
            return self._combine(first, second)
        except Exception as exc:  # the composition itself must not break the no-raise promise either
            error = describe_error(exc)
            trace = JudgeTrace(
                judge=self.name,
                model="",
                latency_ms=(time.perf_counter() - started) * 1000.0,
                errors=(error,),
            )
            return Judgement(
                verdict=abstain(self.name, "combining the two verdicts failed", error=error), trace=trace
            )

    def _combine(self, first: Judgement, second: Judgement) -> Judgement:
        answer, other = first.verdict, second.verdict
        agreement = None if answer.error or other.error else answer.label == other.label
        trace = first.trace.model_copy(update={"second_opinion": second.trace})
        if not self._require_agreement or agreement is True or answer.label == "NOT_ENOUGH_INFO":
            verdict = answer.model_copy(update={"second_opinion": other, "agreement": agreement})
            return Judgement(verdict=verdict, trace=trace)
        if agreement is False:
            reason = (
                f"agreement required: {answer.judge} said {answer.label} "
                f"but the second opinion ({other.judge}) said {other.label}"
            )
        else:
            failure = other.error or answer.error
            reason = f"agreement required, but there is no usable second opinion to agree with: {failure}"
        verdict = Verdict(
            label="NOT_ENOUGH_INFO",
            confidence=0.0,
            rationale=reason,
            invalid_citations=answer.invalid_citations,
            downgraded_reason=reason,
            judge=self.name,
            second_opinion=other,
            agreement=agreement,
        )
        return Judgement(verdict=verdict, trace=trace)


def _settle(judge: Judge, result: Judgement | BaseException) -> Judgement:
    """A judge's judgement, or an abstention recording the exception it should not have raised."""
    if isinstance(result, Judgement):
        return result
    if not isinstance(result, Exception):
        raise result  # cancellation and interpreter exits propagate, as asyncio requires
    error = describe_error(result)
    return Judgement(
        verdict=abstain(judge.name, "the judge failed unexpectedly", error=error),
        trace=JudgeTrace(judge=judge.name, model="", errors=(error,)),
    )
