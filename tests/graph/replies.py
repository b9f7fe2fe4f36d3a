"""Scripted chat-completions replies, spoken both by the mock transport and by the fault server.

A behaviour maps the request's JSON body to a `Reply`; a `Script` hands out one behaviour per request
(then its default) and records every request, so tests can assert on what the judge sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

GOOD_VERDICT: dict[str, Any] = {
    "label": "SUPPORTED",
    "confidence": 0.9,
    "rationale": "Passage p1 states it.",
    "citations": ["p1"],
}


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    """Wait this long before answering."""
    truncate_at: int | None = None
    """Announce the whole body's length but send only this many bytes, then close."""


Behaviour = Callable[[Mapping[str, Any]], Reply]


def completion_body(
    *,
    content: str | None = None,
    tool_arguments: str | None = None,
    model: str = "scripted-model",
    finish_reason: str = "stop",
    usage: tuple[int, int] | None = (11, 7),
) -> bytes:
    """A chat-completions response body in OpenAI's shape."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_arguments is not None:
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "submit_verdict", "arguments": tool_arguments},
            }
        ]
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        }
    return json.dumps(body).encode()


def answer(verdict: Mapping[str, Any] | str = GOOD_VERDICT, **body: Any) -> Behaviour:
    """Answer in the form the request asked for: a tool call when it offered tools, else content."""
    text = verdict if isinstance(verdict, str) else json.dumps(verdict)

    def behave(request: Mapping[str, Any]) -> Reply:
        if request.get("tools"):
            return Reply(body=completion_body(tool_arguments=text, finish_reason="tool_calls", **body))
        return Reply(body=completion_body(content=text, **body))

    return behave


def content(text: str | None, **body: Any) -> Behaviour:
    """Answer with this message content whatever was asked."""
    return lambda request: Reply(body=completion_body(content=text, **body))


def error(
    status: int, message: str = "scripted failure", headers: tuple[tuple[str, str], ...] = ()
) -> Behaviour:
    """Answer an error status with an OpenAI-shaped error body."""
    body = json.dumps({"error": {"message": message, "type": "server_error", "code": status}}).encode()
    return lambda request: Reply(status=status, body=body, headers=headers)


def slow(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Wait, then behave like `then` (a good answer by default)."""
    inner = then or answer()

    def behave(request: Mapping[str, Any]) -> Reply:
        reply = inner(request)
        return Reply(reply.status, reply.body, reply.headers, seconds, reply.truncate_at)

    return behave


def truncated(keep: int = 40) -> Behaviour:
    """A 200 whose body stops after `keep` bytes although its Content-Length promises more."""
    return lambda request: Reply(body=completion_body(content=json.dumps(GOOD_VERDICT)), truncate_at=keep)


def reject_mode(mode_key: str, then: Behaviour, status: int = 500) -> Behaviour:
    """Fail requests carrying `mode_key` ("response_format" or "tools") as llama.cpp does; else `then`."""
    rejected = error(status, f"{mode_key} is not supported")
    return lambda request: rejected(request) if mode_key in request else then(request)


class Script:
    """Hands out scripted replies in order, then the default one; records requests. Thread-safe."""

    def __init__(self, *behaviours: Behaviour, default: Behaviour | None = None) -> None:
        self._queue: deque[Behaviour] = deque(behaviours)
        self._default = default
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        """Every request body received, in order."""
        self.headers: list[dict[str, str]] = []
        """Every request's headers (lower-case names), in order."""

    def push(self, *behaviours: Behaviour) -> None:
        """Queue more behaviours."""
        with self._lock:
            self._queue.extend(behaviours)

    def next_reply(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """The reply to one request."""
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = {}
        with self._lock:
            self.requests.append(request)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            behaviour = self._queue.popleft() if self._queue else self._default
        if behaviour is None:
            return error(599, "script exhausted")(request)
        return behaviour(request)


class ScriptedTransport:
    """An `httpx.MockTransport` that answers from a `Script`: the hermetic seam for unit tests."""

    def __init__(self, *behaviours: Behaviour, default: Behaviour | None = None) -> None:
        self.script = Script(*behaviours, default=default)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request body received, in order."""
        return self.script.requests

    def client(self) -> httpx.AsyncClient:
        """An httpx client whose every request is answered by the script."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle))

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        reply = self.script.next_reply(request.content, request.headers)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.truncate_at is not None:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        headers = {"content-type": "application/json", **dict(reply.headers)}
        return httpx.Response(reply.status, content=reply.body, headers=headers)
