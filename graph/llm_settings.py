"""How the LLM judge talks to a server: its settings, and the retry and fallback policy."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.prompts import SystemRole
from graph.schemas import STRUCTURED_MODES, StructuredMode

ModePreference = Literal["auto", "json_schema", "tools", "json_text"]
"""Where the structured-output fallback chain starts; "auto" starts at the most constrained mode."""

OPENAI_BASE_URL = "https://api.openai.com/v1"
# The openai client insists on some key; local servers ignore the Authorization header.
PLACEHOLDER_API_KEY = "not-needed"

# A wrong key, model or URL: neither another try nor another mode can help.
FATAL_STATUSES = frozenset({401, 403, 404})
# Overload and gateway trouble: the same request may well succeed later.
TRANSIENT_STATUSES = frozenset({408, 409, 429, 502, 503, 504})

Action = Literal["fatal", "fallback", "retry"]


class LLMSettings(BaseModel):
    """Everything the LLM judge needs to reach a model; library code gets it passed in, never from env."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    """The model name the server knows (e.g. "gpt-4o-mini", "gemma-3-270m")."""
    base_url: str | None = None
    """The OpenAI-compatible API root, e.g. "http://127.0.0.1:8080/v1"; None for OpenAI itself."""
    api_key: str = Field(default="", repr=False, exclude=True)
    """The API key; empty for local servers that need none. Kept out of repr and dumps."""
    timeout_s: float = Field(default=30.0, gt=0)
    """The hard limit on one request, connection to last byte."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """Requests repeated after a retryable fault (timeout, connection, 429, 5xx, unusable output)."""
    max_concurrency: int = Field(default=4, ge=1)
    """Requests in flight at once from one judge; backoff sleeps do not hold a slot."""
    max_tokens: int = Field(default=512, ge=1)
    """The cap on generated tokens, always sent: a request without one can run to the context limit."""
    token_limit_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """The request field carrying `max_tokens`. llama.cpp and most local servers honour only
    `max_tokens`; OpenAI's reasoning models accept only `max_completion_tokens`."""
    system_role: SystemRole = "system"
    """Where the judge's rules go: a system message, or "user" for the head of the user message, for
    servers whose chat format has no system role and drops it (llama-cpp-python with
    ``--chat_format gemma``: the model would never see the rules)."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature; 0 for reproducible verdicts."""
    mode: ModePreference = "auto"
    """The first structured-output mode to try; the judge falls back down json_schema -> tools ->
    json_text when the server rejects one, and keeps using the mode that worked."""
    backoff_base_s: float = Field(default=0.5, ge=0.0)
    """The first backoff; it doubles on each retry, with jitter."""
    backoff_max_s: float = Field(default=8.0, ge=0.0)
    """The longest backoff between two requests."""
    retry_after_max_s: float = Field(default=30.0, ge=0.0)
    """The longest wait a server's Retry-After can impose."""
    max_passage_chars: int | None = Field(default=2000, ge=1)
    """Passage texts are cut to this many characters in the prompt; None keeps them whole."""
    name: str = Field(default="llm", min_length=1)
    """The judge's name in verdicts and traces."""


def first_mode(preference: ModePreference) -> StructuredMode:
    """The mode a fresh judge starts with."""
    return "json_schema" if preference == "auto" else preference


def next_mode(mode: StructuredMode) -> StructuredMode | None:
    """The next, less constrained mode, or None after json_text."""
    index = STRUCTURED_MODES.index(mode)
    return STRUCTURED_MODES[index + 1] if index + 1 < len(STRUCTURED_MODES) else None


def decide(status: int, mode: StructuredMode) -> Action:
    """What to do after an HTTP error status in a given mode.

    Other 4xx and 5xx answers to a structured mode mean "fall back": servers reject what they do not
    support in many ways (llama.cpp answers 500 to a JSON-schema `response_format` but handles tool
    calls). In json_text mode there is nowhere to fall back to, so a 5xx is retried and a 4xx is final.
    """
    if status in FATAL_STATUSES:
        return "fatal"
    if status in TRANSIENT_STATUSES:
        return "retry"
    if next_mode(mode) is not None:
        return "fallback"
    return "retry" if status >= 500 else "fatal"


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), if given.

    Args:
        headers: Response headers; httpx's lookups ignore case.
        now: The current epoch time, for tests; defaults to `time.time()`.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _finite(raw_ms)
        if seconds is not None:
            return max(seconds / 1000.0, 0.0)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _finite(raw)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def backoff_delay(
    retry_index: int, settings: LLMSettings, rng: random.Random, retry_after_s: float | None = None
) -> float:
    """Seconds to sleep before retry number `retry_index` (0 for the first retry).

    A server's Retry-After wins, capped by `retry_after_max_s`. Otherwise exponential backoff with
    jitter in [half, all] of the step, so a crowd of clients does not retry in lockstep while each
    still waits a predictable minimum.
    """
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), settings.retry_after_max_s)
    step = min(settings.backoff_max_s, settings.backoff_base_s * 2.0**retry_index)
    return step * rng.uniform(0.5, 1.0)


def _finite(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
