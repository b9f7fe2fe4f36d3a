"""Retry, backoff and fallback policy, and settings that never demand or leak a key."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from graph.llm_settings import LLMSettings, backoff_delay, decide, first_mode, next_mode, parse_retry_after
from graph.schemas import StructuredMode
from tests.graph.harness import fast_settings


@pytest.mark.parametrize(
    ("status", "mode", "action"),
    [
        (401, "json_schema", "fatal"),
        (404, "tools", "fatal"),
        (429, "json_schema", "retry"),
        (503, "json_schema", "retry"),
        (408, "json_text", "retry"),
        (500, "json_schema", "fallback"),
        (400, "json_schema", "fallback"),
        (422, "tools", "fallback"),
        (500, "json_text", "retry"),
        (400, "json_text", "fatal"),
    ],
)
def test_what_an_error_status_leads_to(status: int, mode: StructuredMode, action: str) -> None:
    assert decide(status, mode) == action


def test_modes_fall_back_from_most_to_least_constrained() -> None:
    assert first_mode("auto") == "json_schema"
    assert first_mode("tools") == "tools"
    assert [next_mode("json_schema"), next_mode("tools"), next_mode("json_text")] == [
        "tools",
        "json_text",
        None,
    ]


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "150", "retry-after": "9"}, 0.15),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:10 GMT"}, 4.0),
    ],
)
def test_retry_after_is_read_in_every_form(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=6.0) == seconds


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    settings = fast_settings(backoff_base_s=0.1, backoff_max_s=0.3, retry_after_max_s=1.0)
    rng = random.Random(0)
    for retry, step in [(0, 0.1), (1, 0.2), (2, 0.3), (5, 0.3)]:
        delays = [backoff_delay(retry, settings, rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
    assert backoff_delay(0, settings, rng, retry_after_s=0.4) == 0.4
    assert backoff_delay(0, settings, rng, retry_after_s=60.0) == 1.0


def test_settings_need_no_key_and_never_show_one() -> None:
    assert LLMSettings(model="m").api_key == ""
    settings = LLMSettings(model="m", api_key="sk-secret")
    assert "sk-secret" not in repr(settings)
    assert "sk-secret" not in settings.model_dump_json()


@pytest.mark.parametrize(
    "bad",
    [
        {"max_concurrency": 0},
        {"timeout_s": 0},
        {"max_retries": -1},
        {"mode": "xml"},
        {"max_tokens": 0},
        {"x": 1},
    ],
)
def test_settings_reject_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LLMSettings.model_validate({"model": "m", **bad})
