"""The LLM judge against a scripted HTTP seam: requests, fallbacks, retries, traces, and no escapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import httpx
import pytest
from openai import AsyncOpenAI

from graph.llm_judge import LLMJudge
from graph.prompts import PROMPT_HASH, PROMPT_VERSION
from graph.schemas import EvidencePassage
from tests.graph.harness import CLAIM, EVIDENCE, fast_settings, judge_calls, judge_once
from tests.graph.replies import (
    GOOD_VERDICT,
    Reply,
    ScriptedTransport,
    answer,
    completion_body,
    content,
    error,
    reject_mode,
    truncated,
)


def test_a_good_answer_becomes_a_verdict_with_a_full_trace() -> None:
    transport = ScriptedTransport(answer())
    result = judge_once(transport)

    v, t = result.verdict, result.trace
    assert (v.label, v.confidence, v.citations, v.judge, v.error) == ("SUPPORTED", 0.9, ("p1",), "llm", None)
    assert (t.prompt_version, t.prompt_hash, t.model, t.mode) == (
        PROMPT_VERSION,
        PROMPT_HASH,
        "scripted-model",
        "json_schema",
    )
    assert [m.role for m in t.messages] == ["system", "user"]
    assert t.raw_reply == json.dumps(GOOD_VERDICT)
    assert t.parsed is not None and t.parsed.label == "SUPPORTED"
    assert t.usage == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    assert (t.attempts, t.retries, t.errors) == (1, 0, ())
    assert [a.outcome for a in t.attempt_log] == ["ok"]
    assert t.latency_ms > 0
    assert json.loads(result.model_dump_json())["verdict"]["label"] == "SUPPORTED"


def test_the_request_caps_tokens_at_temperature_zero_with_a_schema() -> None:
    transport = ScriptedTransport(answer())
    judge_once(transport, max_tokens=123)

    (request,) = transport.requests
    assert request["model"] == "scripted-model"
    assert (request["max_tokens"], request["temperature"]) == (123, 0.0)
    assert "max_completion_tokens" not in request
    assert request["messages"][0]["role"] == "system"
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["properties"]["citations"]["items"]["enum"] == ["p1", "p2"]


def test_rules_can_travel_in_the_user_message_for_chat_formats_without_a_system_role() -> None:
    transport = ScriptedTransport(answer())
    result = judge_once(transport, system_role="user")
    (request,) = transport.requests
    assert [m["role"] for m in request["messages"]] == ["user"]
    assert [m.role for m in result.trace.messages] == ["user"]
    assert request["messages"][0]["content"].startswith("You are a careful fact-checker.")
    assert result.trace.prompt_hash == PROMPT_HASH and result.verdict.label == "SUPPORTED"


def test_the_token_cap_can_use_max_completion_tokens() -> None:
    transport = ScriptedTransport(answer())
    judge_once(transport, token_limit_param="max_completion_tokens", max_tokens=64)
    (request,) = transport.requests
    assert request["max_completion_tokens"] == 64
    assert "max_tokens" not in request


@pytest.mark.parametrize(("key", "header"), [("", "Bearer not-needed"), ("sk-test", "Bearer sk-test")])
def test_no_key_is_demanded_and_a_given_key_is_sent(
    monkeypatch: pytest.MonkeyPatch, key: str, header: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://elsewhere.test/v1")
    transport = ScriptedTransport(answer())
    assert judge_once(transport, api_key=key).verdict.label == "SUPPORTED"
    assert transport.script.headers[0]["authorization"] == header


def test_a_rejected_json_schema_falls_back_to_tools_and_is_remembered() -> None:
    transport = ScriptedTransport(default=reject_mode("response_format", answer()))
    first, second = asyncio.run(judge_calls(transport, claims=(CLAIM, CLAIM)))

    assert first.verdict.label == second.verdict.label == "SUPPORTED"
    assert [(a.mode, a.outcome, a.status) for a in first.trace.attempt_log] == [
        ("json_schema", "fallback", 500),
        ("tools", "ok", 200),
    ]
    assert (first.trace.mode, first.trace.retries) == ("tools", 0)
    tools_request = transport.requests[1]
    assert tools_request["tool_choice"]["function"]["name"] == "submit_verdict"
    assert tools_request["tools"][0]["function"]["parameters"]["additionalProperties"] is False
    # The second call goes straight to the mode that worked.
    assert [a.mode for a in second.trace.attempt_log] == ["tools"]
    assert len(transport.requests) == 3


def test_the_chain_ends_in_plain_json_text() -> None:
    transport = ScriptedTransport(error(500), error(400), answer())
    result = judge_once(transport)
    assert result.verdict.label == "SUPPORTED"
    assert [a.mode for a in result.trace.attempt_log] == ["json_schema", "tools", "json_text"]
    plain = transport.requests[2]
    assert "response_format" not in plain
    assert "tools" not in plain


def test_a_preferred_mode_is_where_the_chain_starts() -> None:
    transport = ScriptedTransport(answer())
    assert judge_once(transport, mode="json_text").trace.mode == "json_text"
    assert "response_format" not in transport.requests[0]


def test_a_tools_request_answered_in_plain_text_is_accepted() -> None:
    transport = ScriptedTransport(content(json.dumps(GOOD_VERDICT)))
    assert judge_once(transport, mode="tools").verdict.label == "SUPPORTED"


@pytest.mark.parametrize(("status", "mode"), [(400, "json_text"), (401, "json_schema"), (404, "tools")])
def test_final_client_errors_are_neither_retried_nor_fallen_back(status: int, mode: str) -> None:
    transport = ScriptedTransport(default=error(status))
    result = judge_once(transport, mode=mode)
    assert (result.verdict.label, result.verdict.confidence) == ("NOT_ENOUGH_INFO", 0.0)
    assert result.verdict.error is not None and result.verdict.error.startswith(
        f"JudgeHTTPError: HTTP {status}"
    )
    assert [a.outcome for a in result.trace.attempt_log] == ["failed"]
    assert len(transport.requests) == 1


def test_overload_is_retried_in_the_same_mode() -> None:
    transport = ScriptedTransport(error(503), error(502), answer())
    result = judge_once(transport)
    assert result.verdict.label == "SUPPORTED"
    assert [(a.mode, a.outcome) for a in result.trace.attempt_log] == [
        ("json_schema", "retry"),
        ("json_schema", "retry"),
        ("json_schema", "ok"),
    ]
    assert result.trace.retries == 2


def test_retry_after_is_honoured_and_capped() -> None:
    transport = ScriptedTransport(
        error(429, headers=(("retry-after-ms", "50"),)),
        error(429, headers=(("Retry-After", "30"),)),
        answer(),
    )
    result = judge_once(transport, retry_after_max_s=0.1)
    waits = [a.wait_ms for a in result.trace.attempt_log]
    assert waits[0] == pytest.approx(50.0)
    assert waits[1] == pytest.approx(100.0)
    assert result.verdict.label == "SUPPORTED"


def test_malformed_output_is_retried_and_usage_adds_up() -> None:
    transport = ScriptedTransport(content("I'd say supported!"), answer())
    result = judge_once(transport)
    assert result.verdict.label == "SUPPORTED"
    first, second = result.trace.attempt_log
    assert (first.outcome, first.status, first.raw_reply) == ("retry", 200, "I'd say supported!")
    assert first.error is not None and first.error.startswith("JudgeOutputError: no JSON object")
    assert second.outcome == "ok"
    assert result.trace.usage["prompt_tokens"] == 22


def test_output_that_never_fits_the_schema_ends_in_not_enough_info() -> None:
    transport = ScriptedTransport(default=content('{"label": "SUPPORTED", "confidence": "high"}'))
    result = judge_once(transport, max_retries=3)
    v = result.verdict
    assert (v.label, v.confidence) == ("NOT_ENOUGH_INFO", 0.0)
    assert v.error is not None and "confidence" in v.error
    assert v.downgraded_reason == "no usable verdict from the model after 4 request(s)"
    assert (result.trace.attempts, result.trace.retries, len(result.trace.errors)) == (4, 3, 4)
    assert result.trace.parsed is None


def test_a_reply_cut_at_max_tokens_is_an_output_error() -> None:
    transport = ScriptedTransport(default=content(None, finish_reason="length"))
    result = judge_once(transport, max_retries=0)
    assert result.verdict.error == "JudgeOutputError: the reply was cut off at max_tokens before any text"


def test_dropped_connections_are_retried() -> None:
    transport = ScriptedTransport(truncated(), answer())
    result = judge_once(transport)
    assert result.verdict.label == "SUPPORTED"
    assert result.trace.attempt_log[0].error is not None
    assert result.trace.attempt_log[0].error.startswith("JudgeTransportError")


def test_a_body_that_is_not_json_is_retried() -> None:
    transport = ScriptedTransport(lambda request: Reply(body=b"<html>proxy error</html>"), answer())
    assert judge_once(transport).verdict.label == "SUPPORTED"


def test_a_timeout_is_a_transport_fault() -> None:
    transport = ScriptedTransport(
        default=lambda request: Reply(body=completion_body(content="{}"), delay_s=1.0)
    )
    result = judge_once(transport, timeout_s=0.05, max_retries=1)
    assert result.verdict.error == "JudgeTransportError: no complete reply within 0.05 s"
    assert result.trace.attempts == 2


def test_invented_citations_are_flagged_and_downgrade_the_verdict() -> None:
    invented = {"label": "REFUTED", "confidence": 0.9, "rationale": "See p7.", "citations": ["p7"]}
    result = judge_once(ScriptedTransport(answer(invented)))
    v = result.verdict
    assert (v.label, v.confidence, v.citations, v.invalid_citations) == ("NOT_ENOUGH_INFO", 0.0, (), ("p7",))
    assert v.downgraded_reason is not None and "cited unknown ids: p7" in v.downgraded_reason
    assert result.trace.parsed is not None and result.trace.parsed.label == "REFUTED"


@pytest.mark.parametrize(
    ("claim", "evidence", "reason"),
    [
        (CLAIM, (), "no evidence passages were given, so the claim cannot be checked"),
        ("   ", EVIDENCE, "the claim is empty"),
    ],
)
def test_nothing_to_judge_is_answered_without_calling_the_model(
    claim: str, evidence: tuple[EvidencePassage, ...], reason: str
) -> None:
    transport = ScriptedTransport(default=answer())
    result = judge_once(transport, claim=claim, evidence=evidence)
    assert transport.requests == []
    assert (result.verdict.label, result.verdict.confidence, result.verdict.downgraded_reason) == (
        "NOT_ENOUGH_INFO",
        0.0,
        reason,
    )
    assert (result.trace.skipped_reason, result.trace.attempts, result.trace.messages) == (reason, 0, ())


def test_an_injected_client_has_its_own_retries_switched_off() -> None:
    transport = ScriptedTransport(default=error(500))

    async def go() -> Any:
        async with transport.client() as http:
            client = AsyncOpenAI(
                api_key="k", base_url="http://llm.test/v1", http_client=cast(Any, http), max_retries=5
            )
            judge = LLMJudge(fast_settings(mode="json_text", max_retries=1), client=client)
            return await judge.judge(CLAIM, EVIDENCE)

    result = asyncio.run(go())
    assert result.verdict.label == "NOT_ENOUGH_INFO"
    assert len(transport.requests) == 2  # ours: one try and one retry; none from the openai client


def test_unexpected_failures_never_escape() -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("transport bug")

    async def go() -> list[Any]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(explode)) as http:
            judge = LLMJudge(fast_settings(max_retries=0), http_client=http)
            bad_evidence: Any = [{"id": "p1", "text": "not a passage object"}]
            return [await judge.judge(CLAIM, EVIDENCE), await judge.judge(CLAIM, bad_evidence)]

    broken_transport, bad_evidence = asyncio.run(go())
    for result in (broken_transport, bad_evidence):
        assert (result.verdict.label, result.verdict.confidence) == ("NOT_ENOUGH_INFO", 0.0)
        assert result.verdict.rationale == "the judge failed unexpectedly"
    assert broken_transport.verdict.error == "RuntimeError: transport bug"
    assert broken_transport.trace.errors == ("RuntimeError: transport bug",)
    assert bad_evidence.verdict.error is not None and bad_evidence.verdict.error.startswith("AttributeError")


def test_client_and_http_client_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either client or http_client"):
        LLMJudge(fast_settings(), client=AsyncOpenAI(api_key="k"), http_client=httpx.AsyncClient())
