"""The LLM judge: asks any OpenAI-compatible server for a verdict, and never raises doing so."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any, cast

import httpx
import openai
from openai import AsyncOpenAI

from graph.errors import JudgeError, JudgeHTTPError, JudgeOutputError, JudgeTransportError
from graph.judges import EMPTY_CLAIM_REASON, NO_EVIDENCE_REASON, abstain, check_citations, describe_error
from graph.llm_settings import (
    OPENAI_BASE_URL,
    PLACEHOLDER_API_KEY,
    LLMSettings,
    backoff_delay,
    decide,
    first_mode,
    next_mode,
    parse_retry_after,
)
from graph.parsing import parse_verdict
from graph.prompts import RenderedPrompt, render_judge_prompt
from graph.schemas import (
    EvidencePassage,
    Judgement,
    LLMVerdict,
    StructuredMode,
    Verdict,
    verdict_json_schema,
)
from graph.trace import TraceRecorder

TOOL_NAME = "submit_verdict"
_BODY_EXCERPT_CHARS = 300


class LLMJudge:
    """A `Judge` backed by a chat model behind an OpenAI-compatible API (OpenAI, vLLM, Ollama, llama.cpp).

    The openai client's own retries are off: one bounded loop here retries timeouts, connection
    faults, 429, 5xx and unusable replies with backoff, and falls back between structured-output modes
    when the server rejects one. After the budget the verdict is NOT_ENOUGH_INFO with the error kept.
    One call makes at most `max_retries + 3` requests (two fallbacks are not retries), each cut at
    `timeout_s`, with at most `max_retries` waits between them, so its duration is bounded.

    Calls may run concurrently; `max_concurrency` bounds the requests in flight. Bind one judge to one
    event loop: its semaphore and connection pool belong to the loop they first ran on.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        client: AsyncOpenAI | None = None,
        http_client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Build a judge.

        Args:
            settings: Server, model and limits.
            client: An openai client to use instead of building one (its retries and timeout are
                overridden by `settings`); the caller keeps ownership.
            http_client: An httpx client for the judge's own openai client (proxies, TLS, a mock
                transport in tests); the caller keeps ownership.
            rng: The jitter source, for reproducible backoff in tests.
        """
        if client is not None and http_client is not None:
            raise ValueError("pass either client or http_client, not both")
        self._settings = settings
        self._owns_client = client is None and http_client is None
        if client is None:
            client = AsyncOpenAI(
                # Explicit key and URL, so the openai client never falls back to OPENAI_* variables.
                api_key=settings.api_key or PLACEHOLDER_API_KEY,
                base_url=settings.base_url or OPENAI_BASE_URL,
                # openai >= 3 annotates httpx2 clients but accepts httpx ones; older versions take httpx.
                http_client=cast(Any, http_client),
            )
        self._client = client.with_options(max_retries=0, timeout=settings.timeout_s)
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        self._mode: StructuredMode = first_mode(settings.mode)
        self._rng = rng or random.Random()

    @property
    def name(self) -> str:
        """The judge's name in verdicts and traces."""
        return self._settings.name

    @property
    def settings(self) -> LLMSettings:
        """The settings it was built with."""
        return self._settings

    @property
    def mode(self) -> StructuredMode:
        """The structured-output mode the next call starts with: the last one the server accepted."""
        return self._mode

    async def aclose(self) -> None:
        """Close the openai client if the judge built it."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> LLMJudge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        """Judge `claim` against `evidence`; see `graph.judges.Judge`. Never raises an `Exception`."""
        run = TraceRecorder(judge=self.name, model=self._settings.model, started=time.perf_counter())
        try:
            verdict = await self._judge(claim, evidence, run)
        except Exception as exc:  # the judge's boundary: every failure becomes a recorded abstention
            run.errors.append(describe_error(exc))
            verdict = abstain(self.name, "the judge failed unexpectedly", error=describe_error(exc))
        return run.finish(verdict)

    async def _judge(self, claim: str, evidence: Sequence[EvidencePassage], run: TraceRecorder) -> Verdict:
        passages = list(evidence)
        if not claim.strip():
            run.skipped_reason = EMPTY_CLAIM_REASON
            return abstain(self.name, EMPTY_CLAIM_REASON)
        if not passages:
            run.skipped_reason = NO_EVIDENCE_REASON
            return abstain(self.name, NO_EVIDENCE_REASON)
        run.prompt = render_judge_prompt(
            claim,
            passages,
            max_passage_chars=self._settings.max_passage_chars,
            system_role=self._settings.system_role,
        )
        try:
            run.parsed = await self._ask(run.prompt, [p.id for p in passages], run)
        except JudgeError as exc:
            reason = f"no usable verdict from the model after {len(run.attempt_log)} request(s)"
            return abstain(self.name, reason, error=describe_error(exc))
        return check_citations(run.parsed, passages, judge=self.name)

    async def _ask(self, prompt: RenderedPrompt, evidence_ids: list[str], run: TraceRecorder) -> LLMVerdict:
        """Request until a valid verdict, a final error, or the retry budget runs out."""
        mode = self._mode
        retries = 0
        while True:
            started = time.perf_counter()
            failure: JudgeError
            reply: str | None = None
            try:
                reply = await self._request(prompt, mode, evidence_ids, run)
                run.raw_reply = reply
                parsed = parse_verdict(reply)
            except JudgeHTTPError as exc:
                failure, action = exc, decide(exc.status, mode)
            except (JudgeTransportError, JudgeOutputError) as exc:
                failure, action = exc, "retry"
            else:
                run.record(mode, "ok", started, reply=reply)
                return parsed
            run.errors.append(describe_error(failure))
            fallback = next_mode(mode) if action == "fallback" else None
            if fallback is not None:
                run.record(mode, "fallback", started, failure=failure, reply=reply)
                mode = fallback
                continue
            if action != "retry" or retries >= self._settings.max_retries:
                run.record(mode, "failed", started, failure=failure, reply=reply)
                raise failure
            retry_after = failure.retry_after_s if isinstance(failure, JudgeHTTPError) else None
            delay = backoff_delay(retries, self._settings, self._rng, retry_after)
            run.record(mode, "retry", started, failure=failure, reply=reply, wait_s=delay)
            retries += 1
            run.retries = retries
            await asyncio.sleep(delay)

    async def _request(
        self, prompt: RenderedPrompt, mode: StructuredMode, evidence_ids: list[str], run: TraceRecorder
    ) -> str:
        """One chat-completions request; returns the reply text or raises a `JudgeError`."""
        run.mode = mode
        run.status = None
        kwargs = self._request_args(prompt, mode, evidence_ids)
        async with self._semaphore:
            try:
                # httpx's timeouts apply per network operation; this bounds the whole request.
                async with asyncio.timeout(self._settings.timeout_s):
                    completion = await self._client.chat.completions.create(**kwargs)
            except TimeoutError as exc:
                raise JudgeTransportError(f"no complete reply within {self._settings.timeout_s:g} s") from exc
            except openai.APIConnectionError as exc:  # timeouts included
                raise JudgeTransportError(describe_error(exc.__cause__ or exc)) from exc
            except openai.APIStatusError as exc:
                run.status = exc.status_code
                raise JudgeHTTPError(
                    f"HTTP {exc.status_code}: {_excerpt(exc.response.text)}",
                    status=exc.status_code,
                    retry_after_s=parse_retry_after(exc.response.headers),
                ) from exc
            except (openai.APIResponseValidationError, ValueError) as exc:
                # openai lets json.JSONDecodeError through for a 200 whose body is cut or not JSON.
                raise JudgeTransportError(f"unreadable response body: {describe_error(exc)}") from exc
        run.status = 200
        # The server took this mode: later calls start here instead of failing over again.
        self._mode = mode
        return _reply_text(completion, mode, run)

    def _request_args(self, prompt: RenderedPrompt, mode: StructuredMode, evidence_ids: list[str]) -> Any:
        settings = self._settings
        args: dict[str, Any] = {
            "model": settings.model,
            "messages": [m.model_dump() for m in prompt.messages],
            "temperature": settings.temperature,
            settings.token_limit_param: settings.max_tokens,
        }
        schema = verdict_json_schema(evidence_ids)
        if mode == "json_schema":
            args["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "strict": True, "schema": schema},
            }
        elif mode == "tools":
            args["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": TOOL_NAME,
                        "description": "Submit the verdict on the claim.",
                        "parameters": schema,
                    },
                }
            ]
            args["tool_choice"] = {"type": "function", "function": {"name": TOOL_NAME}}
        return args


def _reply_text(completion: Any, mode: StructuredMode, run: TraceRecorder) -> str:
    """The verdict text of a completion: the tool call's arguments in tools mode, else the content."""
    try:
        run.add_usage(completion.usage)
        if isinstance(completion.model, str) and completion.model:
            run.model = completion.model
        choice = completion.choices[0]
        message = choice.message
        tool_calls = (message.tool_calls or ()) if mode == "tools" else ()
        for call in tool_calls:
            function = getattr(call, "function", None)
            if function is not None and isinstance(function.arguments, str) and function.arguments.strip():
                return function.arguments
        # A server may answer a tool request in plain text; parsing decides whether that will do.
        content = message.content
        finish_reason = choice.finish_reason
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise JudgeOutputError(f"malformed completion object: {describe_error(exc)}") from exc
    if isinstance(content, str) and content.strip():
        return content
    if finish_reason == "length":
        raise JudgeOutputError("the reply was cut off at max_tokens before any text")
    raise JudgeOutputError("empty reply")


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _BODY_EXCERPT_CHARS else flat[:_BODY_EXCERPT_CHARS] + "…"
