"""The rules every judge shares: only given ids are citations, and unsupported verdicts are downgraded."""

from __future__ import annotations

from typing import Any

from graph.judges import Judge, abstain, check_citations, describe_error
from graph.llm_judge import LLMJudge
from graph.schemas import EvidencePassage, LLMVerdict
from tests.graph.harness import EVIDENCE, fast_settings


def parsed(label: str = "SUPPORTED", citations: list[Any] | None = None) -> LLMVerdict:
    return LLMVerdict.model_validate(
        {"label": label, "confidence": 0.8, "rationale": "why", "citations": citations or []}
    )


def test_valid_citations_are_kept_in_order_once() -> None:
    v = check_citations(parsed(citations=["p2", "p1", "p2", " p1 "]), EVIDENCE, judge="llm")
    assert (v.label, v.confidence, v.citations, v.invalid_citations) == ("SUPPORTED", 0.8, ("p2", "p1"), ())
    assert v.downgraded_reason is None


def test_invented_ids_are_dropped_and_flagged() -> None:
    v = check_citations(parsed("REFUTED", ["p1", "p7", "doc-3"]), EVIDENCE, judge="llm")
    assert (v.label, v.citations, v.invalid_citations) == ("REFUTED", ("p1",), ("p7", "doc-3"))


def test_a_verdict_citing_nothing_given_becomes_not_enough_info() -> None:
    v = check_citations(parsed("SUPPORTED", ["p7"]), EVIDENCE, judge="llm")
    assert (v.label, v.confidence, v.citations, v.invalid_citations) == ("NOT_ENOUGH_INFO", 0.0, (), ("p7",))
    assert v.downgraded_reason == "SUPPORTED without a citation of a given passage (cited unknown ids: p7)"
    assert v.rationale == "why"

    bare = check_citations(parsed("REFUTED", []), EVIDENCE, judge="llm")
    assert bare.label == "NOT_ENOUGH_INFO"
    assert bare.downgraded_reason == "REFUTED without a citation of a given passage"


def test_not_enough_info_needs_no_citation() -> None:
    v = check_citations(parsed("NOT_ENOUGH_INFO"), EVIDENCE, judge="llm")
    assert (v.label, v.confidence, v.downgraded_reason) == ("NOT_ENOUGH_INFO", 0.8, None)


def test_an_id_cited_in_its_escaped_form_resolves() -> None:
    evidence = (EvidencePassage(id="a&b", text="x"),)
    assert check_citations(parsed(citations=["a&amp;b"]), evidence, judge="llm").citations == ("a&b",)


def test_abstaining_is_not_enough_info_with_zero_confidence() -> None:
    v = abstain("llm", "no evidence", error="JudgeTransportError: boom")
    assert (v.label, v.confidence, v.downgraded_reason, v.error) == (
        "NOT_ENOUGH_INFO",
        0.0,
        "no evidence",
        "JudgeTransportError: boom",
    )


def test_errors_are_described_by_type_and_message() -> None:
    assert describe_error(ValueError("bad")) == "ValueError: bad"
    assert describe_error(TimeoutError()) == "TimeoutError"


def test_the_llm_judge_is_a_judge() -> None:
    judge = LLMJudge(fast_settings(name="gpt"))
    assert isinstance(judge, Judge)
    assert judge.name == "gpt"
