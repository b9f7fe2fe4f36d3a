"""Shared test helpers: a claim with two passages, fast judge settings, and one-call runners."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from graph.llm_judge import LLMJudge
from graph.llm_settings import LLMSettings
from graph.schemas import EvidencePassage, Judgement
from tests.graph.replies import ScriptedTransport

CLAIM = "The Eiffel Tower is in Paris."
EVIDENCE = (
    EvidencePassage(
        id="p1", text="The Eiffel Tower is a wrought-iron tower in Paris, France.", title="Eiffel"
    ),
    EvidencePassage(id="p2", text="Mount Everest is the highest mountain above sea level.", title="Everest"),
)


def fast_settings(base_url: str = "http://llm.test/v1", **overrides: Any) -> LLMSettings:
    """Settings with short timeouts and millisecond backoff, so fault tests stay fast."""
    values: dict[str, Any] = {
        "model": "scripted-model",
        "base_url": base_url,
        "timeout_s": 2.0,
        "max_retries": 2,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.01,
        "retry_after_max_s": 0.2,
    }
    values.update(overrides)
    return LLMSettings(**values)


async def judge_calls(
    transport: ScriptedTransport,
    claims: Sequence[str] = (CLAIM,),
    evidence: Sequence[EvidencePassage] = EVIDENCE,
    **overrides: Any,
) -> list[Judgement]:
    """Judge each claim in turn with one judge over the scripted transport."""
    async with transport.client() as http:
        judge = LLMJudge(fast_settings(**overrides), http_client=http)
        return [await judge.judge(claim, evidence) for claim in claims]


def judge_once(
    transport: ScriptedTransport,
    claim: str = CLAIM,
    evidence: Sequence[EvidencePassage] = EVIDENCE,
    **overrides: Any,
) -> Judgement:
    """One judge call over the scripted transport."""
    return asyncio.run(judge_calls(transport, (claim,), evidence, **overrides))[0]
