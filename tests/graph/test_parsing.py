"""JSON is found in replies however it is wrapped, then validated; nothing is ever evaluated."""

from __future__ import annotations

import json

import pytest

from graph.errors import JudgeOutputError
from graph.parsing import json_objects, parse_verdict

GOOD = {"label": "REFUTED", "confidence": 0.7, "rationale": "p2 contradicts it {sic}.", "citations": ["p2"]}
TEXT = json.dumps(GOOD)


@pytest.mark.parametrize(
    "reply",
    [
        TEXT,
        f"  {TEXT}\n",
        f"```json\n{TEXT}\n```",
        f"```\n{TEXT}\n```",
        f"Here is my verdict:\n```JSON\n{TEXT}\n```\nHope this helps!",
        f"Sure! {TEXT} Let me know if you need more.",
        f"<think>The claim says {{x}}; let me weigh it.</think>\n{TEXT}",
        f'{{"note": "not a verdict"}}\n{TEXT}',
        f"{{broken json\n{TEXT}",
    ],
)
def test_a_verdict_is_found_however_it_is_wrapped(reply: str) -> None:
    parsed = parse_verdict(reply)
    assert parsed.label == "REFUTED"
    assert parsed.rationale == GOOD["rationale"]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("", "empty reply"),
        (None, "empty reply"),
        ("   \n", "empty reply"),
        ("I think it is SUPPORTED.", "no JSON object"),
        ('{label: "SUPPORTED", confidence: 0.9}', "no JSON object"),
        ("{'label': 'SUPPORTED', 'confidence': 0.9}", "no JSON object"),
        ('__import__("os").system("echo owned")', "no JSON object"),
        ('{"label": "SUPPORTED", "confidence": 0.9', "no JSON object"),
        ('{"label": "SUPPORTED", "confidence": "very"}', "confidence"),
        ('{"label": "SUPPORTED", "confidence": 0.9, "extra": 1}', "extra"),
        ("[1, 2, 3]", "no JSON object"),
    ],
)
def test_unusable_replies_raise_output_errors(reply: str | None, message: str) -> None:
    with pytest.raises(JudgeOutputError, match=message):
        parse_verdict(reply)


def test_objects_are_yielded_in_order_without_overlap() -> None:
    found = list(json_objects('a {"x": {"y": 1}} b {"z": 2} c'))
    assert found == [{"x": {"y": 1}}, {"z": 2}]


def test_a_reply_full_of_stray_braces_is_cheap() -> None:
    with pytest.raises(JudgeOutputError):
        parse_verdict("{" * 50_000)
