"""The model's JSON is validated strictly, with a few documented tolerances; verdicts are immutable."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from graph.schemas import RATIONALE_MAX_CHARS, EvidencePassage, LLMVerdict, Verdict, verdict_json_schema


def verdict(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "label": "SUPPORTED",
        "confidence": 0.8,
        "rationale": "p1 says so.",
        "citations": ["p1"],
    }
    base.update(changes)
    return base


def test_a_well_formed_verdict_validates() -> None:
    parsed = LLMVerdict.model_validate(verdict())
    assert (parsed.label, parsed.confidence, parsed.citations) == ("SUPPORTED", 0.8, ["p1"])


@pytest.mark.parametrize(
    ("spelling", "label"),
    [
        ("supported", "SUPPORTED"),
        ("Supports", "SUPPORTED"),
        (" REFUTES ", "REFUTED"),
        ("refuted", "REFUTED"),
        ("Not enough info", "NOT_ENOUGH_INFO"),
        ("not-enough-info", "NOT_ENOUGH_INFO"),
        ("NEI", "NOT_ENOUGH_INFO"),
        ("NOT ENOUGH INFORMATION", "NOT_ENOUGH_INFO"),
    ],
)
def test_unambiguous_label_spellings_are_normalised(spelling: str, label: str) -> None:
    assert LLMVerdict.model_validate(verdict(label=spelling)).label == label


@pytest.mark.parametrize(
    "bad",
    [
        {"label": "TRUE"},
        {"label": 1},
        {"confidence": 1.5},
        {"confidence": -0.1},
        {"confidence": 85},
        {"confidence": float("nan")},
        {"confidence": "high"},
        {"citations": [["p1"]]},
        {"verdict": "SUPPORTED"},
    ],
)
def test_mismatches_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LLMVerdict.model_validate(verdict(**bad))


def test_label_and_confidence_are_required() -> None:
    with pytest.raises(ValidationError):
        LLMVerdict.model_validate({"label": "SUPPORTED"})
    with pytest.raises(ValidationError):
        LLMVerdict.model_validate({"confidence": 0.5})


def test_missing_rationale_and_citations_mean_empty() -> None:
    parsed = LLMVerdict.model_validate({"label": "NOT_ENOUGH_INFO", "confidence": 0.3})
    assert (parsed.rationale, parsed.citations) == ("", [])


def test_numeric_and_bare_citations_become_lists_of_strings() -> None:
    assert LLMVerdict.model_validate(verdict(citations=[1, "p2"])).citations == ["1", "p2"]
    assert LLMVerdict.model_validate(verdict(citations="p1")).citations == ["p1"]
    assert LLMVerdict.model_validate(verdict(citations=None)).citations == []


def test_long_rationales_are_clipped_not_rejected() -> None:
    parsed = LLMVerdict.model_validate(verdict(rationale="x" * (RATIONALE_MAX_CHARS + 50)))
    assert len(parsed.rationale) == RATIONALE_MAX_CHARS
    assert parsed.rationale.endswith("…")


def test_wire_schema_describes_the_model_and_pins_citations_to_given_ids() -> None:
    schema = verdict_json_schema(["p1", "p2", "p1"])
    assert set(schema["properties"]) == set(LLMVerdict.model_fields)
    assert schema["required"] == list(LLMVerdict.model_fields)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["label"]["enum"] == ["SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"]
    assert schema["properties"]["citations"]["items"]["enum"] == ["p1", "p2"]
    # A grammar-constrained model cannot loop on one id until max_tokens.
    assert schema["properties"]["citations"]["maxItems"] == 2
    unbounded = verdict_json_schema()["properties"]["citations"]
    assert "enum" not in unbounded["items"] and "maxItems" not in unbounded


def test_verdicts_are_frozen_and_strict() -> None:
    v = Verdict(label="SUPPORTED", confidence=0.5, judge="llm", citations=("p1",))
    with pytest.raises(ValidationError):
        v.label = "REFUTED"
    with pytest.raises(ValidationError):
        Verdict(label="MAYBE", confidence=0.5, judge="llm")  # type: ignore[arg-type]
    assert Verdict.model_validate_json(v.model_dump_json()) == v


def test_evidence_needs_an_id() -> None:
    with pytest.raises(ValidationError):
        EvidencePassage(id="", text="x")
    with pytest.raises(ValidationError):
        EvidencePassage.model_validate({"id": "p1", "text": "x", "url": "http://x"})
