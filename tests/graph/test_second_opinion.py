"""The primary judge answers, the second one checks: agreement, disagreement, required agreement, faults."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from graph.judges import Judge
from graph.schemas import EvidencePassage, Judgement, JudgeTrace, Label, Verdict
from graph.second_opinion import SecondOpinionJudge
from tests.graph.harness import CLAIM, EVIDENCE


class ScriptedJudge:
    """A judge that answers one label (or fails, or raises), optionally waiting for another to start."""

    def __init__(
        self,
        name: str,
        label: Label = "SUPPORTED",
        *,
        error: str | None = None,
        raises: Exception | None = None,
        started: asyncio.Event | None = None,
        wait_for: asyncio.Event | None = None,
    ) -> None:
        self._name, self.label, self.error, self.raises = name, label, error, raises
        self.started, self.wait_for = started, wait_for
        self.calls: list[tuple[str, list[str]]] = []

    @property
    def name(self) -> str:
        return self._name

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        self.calls.append((claim, [p.id for p in evidence]))
        if self.started is not None:
            self.started.set()
        if self.wait_for is not None:
            await asyncio.wait_for(self.wait_for.wait(), timeout=2.0)
        if self.raises is not None:
            raise self.raises
        label: Label = "NOT_ENOUGH_INFO" if self.error else self.label
        verdict = Verdict(
            label=label,
            confidence=0.0 if self.error else 0.8,
            citations=() if self.error or label == "NOT_ENOUGH_INFO" else ("p1",),
            judge=self._name,
            error=self.error,
        )
        return Judgement(verdict=verdict, trace=JudgeTrace(judge=self._name, model=f"{self._name}-model"))


def judge(primary: Judge, second: Judge, require: bool = False) -> Judgement:
    return asyncio.run(SecondOpinionJudge(primary, second, require_agreement=require).judge(CLAIM, EVIDENCE))


def test_agreement_keeps_the_primary_answer_and_records_both() -> None:
    primary, second = ScriptedJudge("llm"), ScriptedJudge("nli")
    result = judge(primary, second, require=True)
    v = result.verdict
    assert (v.label, v.judge, v.citations, v.agreement) == ("SUPPORTED", "llm", ("p1",), True)
    assert v.second_opinion is not None and v.second_opinion.judge == "nli"
    assert result.trace.judge == "llm" and result.trace.second_opinion is not None
    assert result.trace.second_opinion.model == "nli-model"
    assert primary.calls == second.calls == [(CLAIM, ["p1", "p2"])]


def test_disagreement_is_flagged_but_the_primary_still_answers() -> None:
    v = judge(ScriptedJudge("llm", "SUPPORTED"), ScriptedJudge("nli", "REFUTED")).verdict
    assert (v.label, v.confidence, v.agreement, v.downgraded_reason) == ("SUPPORTED", 0.8, False, None)
    assert v.second_opinion is not None and v.second_opinion.label == "REFUTED"


def test_required_agreement_turns_a_disagreement_into_not_enough_info() -> None:
    v = judge(ScriptedJudge("llm", "SUPPORTED"), ScriptedJudge("nli", "REFUTED"), require=True).verdict
    assert (v.label, v.confidence, v.citations, v.agreement, v.judge) == (
        "NOT_ENOUGH_INFO",
        0.0,
        (),
        False,
        "llm+nli",
    )
    assert (
        v.downgraded_reason
        == "agreement required: llm said SUPPORTED but the second opinion (nli) said REFUTED"
    )
    assert v.rationale == v.downgraded_reason
    assert v.second_opinion is not None and v.second_opinion.label == "REFUTED"


def test_a_primary_not_enough_info_needs_no_confirmation() -> None:
    v = judge(
        ScriptedJudge("llm", "NOT_ENOUGH_INFO"), ScriptedJudge("nli", "SUPPORTED"), require=True
    ).verdict
    assert (v.label, v.judge, v.agreement, v.downgraded_reason) == ("NOT_ENOUGH_INFO", "llm", False, None)


@pytest.mark.parametrize("require", [False, True])
def test_an_exception_in_the_second_judge_never_escapes(require: bool) -> None:
    result = judge(ScriptedJudge("llm"), ScriptedJudge("nli", raises=RuntimeError("boom")), require=require)
    v = result.verdict
    assert v.second_opinion is not None and v.second_opinion.error == "RuntimeError: boom"
    assert v.agreement is None
    assert result.trace.second_opinion is not None and result.trace.second_opinion.errors == (
        "RuntimeError: boom",
    )
    if require:
        assert (v.label, v.judge) == ("NOT_ENOUGH_INFO", "llm+nli")
        assert v.downgraded_reason is not None and "no usable second opinion" in v.downgraded_reason
        assert "RuntimeError: boom" in v.downgraded_reason
    else:
        assert (v.label, v.judge, v.downgraded_reason) == ("SUPPORTED", "llm", None)


def test_a_failed_second_opinion_is_not_a_disagreement() -> None:
    v = judge(ScriptedJudge("llm", "NOT_ENOUGH_INFO"), ScriptedJudge("nli", error="JudgeError: x")).verdict
    assert (v.label, v.agreement) == ("NOT_ENOUGH_INFO", None)


def test_an_exception_in_the_primary_becomes_its_abstention() -> None:
    v = judge(ScriptedJudge("llm", raises=ValueError("bad")), ScriptedJudge("nli")).verdict
    assert (v.label, v.judge, v.error, v.agreement) == ("NOT_ENOUGH_INFO", "llm", "ValueError: bad", None)
    assert v.second_opinion is not None and v.second_opinion.label == "SUPPORTED"


def test_both_judges_run_concurrently() -> None:
    async def scenario() -> Judgement:
        primary_started = asyncio.Event()
        # The second judge waits for the primary to have started, which a sequential run never allows.
        primary = ScriptedJudge("llm", started=primary_started)
        second = ScriptedJudge("nli", wait_for=primary_started)
        return await SecondOpinionJudge(primary, second).judge(CLAIM, EVIDENCE)

    assert asyncio.run(scenario()).verdict.agreement is True


def test_the_composition_is_a_judge_named_after_both() -> None:
    composed = SecondOpinionJudge(ScriptedJudge("llm"), ScriptedJudge("nli"), require_agreement=True)
    assert isinstance(composed, Judge)
    assert (composed.name, composed.require_agreement) == ("llm+nli", True)


def test_verdicts_without_a_second_opinion_read_as_before() -> None:
    old = '{"label": "SUPPORTED", "confidence": 0.5, "judge": "llm", "citations": ["p1"]}'
    v = Verdict.model_validate_json(old)
    assert (v.second_opinion, v.agreement) == (None, None)
    assert JudgeTrace.model_validate_json('{"judge": "llm", "model": "m"}').second_opinion is None
    nested = judge(ScriptedJudge("llm"), ScriptedJudge("nli", "REFUTED"))
    assert Judgement.model_validate_json(nested.model_dump_json()) == nested
