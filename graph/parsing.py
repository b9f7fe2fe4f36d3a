"""Reading a verdict out of a model's reply: find the JSON, then validate it. Never `eval`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from graph.errors import JudgeOutputError
from graph.schemas import LLMVerdict

_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.DOTALL)
# Reasoning models wrap their thoughts in <think> tags, which may hold braces of their own.
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
# Replies are bounded by max_tokens, but a reply full of stray braces should not cost much either.
_MAX_CANDIDATES = 64


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON object found in `text`, in order: inside fenced code blocks first, then anywhere.

    Each `{` is tried as the start of a JSON value with `json.JSONDecoder.raw_decode`, so leading
    prose, trailing text and several objects in one reply are all fine.
    """
    decoder = json.JSONDecoder()
    text = _THINK.sub("", text)
    chunks = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    tried = 0
    for chunk in chunks:
        start = chunk.find("{")
        while start != -1 and tried < _MAX_CANDIDATES:
            tried += 1
            try:
                value, end = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                start = chunk.find("{", start + 1)
                continue
            if isinstance(value, dict):
                yield value
            start = chunk.find("{", end)


def parse_verdict(text: str | None) -> LLMVerdict:
    """The first JSON object in `text` that validates as an `LLMVerdict`.

    Raises:
        JudgeOutputError: The reply is empty, holds no JSON object, or none matches the schema.
    """
    if text is None or not text.strip():
        raise JudgeOutputError("empty reply")
    first_error: ValidationError | None = None
    for candidate in json_objects(text):
        try:
            return LLMVerdict.model_validate(candidate)
        except ValidationError as exc:
            first_error = first_error or exc
    if first_error is None:
        raise JudgeOutputError(f"no JSON object in reply: {_excerpt(text)}")
    raise JudgeOutputError(f"reply does not match the verdict schema: {describe_validation(first_error)}")


def describe_validation(error: ValidationError) -> str:
    """A one-line summary of a pydantic error: `field: message` for each problem."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")
