"""Request limits: body size as the bytes arrive, and concurrent requests per caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import APIError

RETRY_AFTER_S = 1
"""What a 429 asks the client to wait: a verification takes about that long."""


class ConcurrencyLimiter:
    """Counts each caller's running requests; one past the limit is refused with 429 and Retry-After.

    Used from the event loop only (async dependencies), so the counts need no lock.
    """

    def __init__(self, per_caller: int) -> None:
        """Allow ``per_caller`` requests at once per caller."""
        self.per_caller = per_caller
        self._active: dict[str, int] = {}

    def active(self, caller: str) -> int:
        """How many requests ``caller`` has running."""
        return self._active.get(caller, 0)

    @contextmanager
    def hold(self, caller: str) -> Iterator[None]:
        """Count a request of ``caller`` while the block runs.

        Raises:
            APIError: 429, the caller already has `per_caller` requests running.
        """
        running = self._active.get(caller, 0)
        if running >= self.per_caller:
            raise APIError(
                429,
                f"{running} requests of this caller are running; the limit is {self.per_caller} at once",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._active[caller] = running + 1
        try:
            yield
        finally:
            left = self._active[caller] - 1
            if left:
                self._active[caller] = left
            else:
                del self._active[caller]  # no entry per caller that ever came: the dict stays small


class BodyLimitMiddleware:
    """Answers 413 (or 400 for a bad Content-Length) in the API's error shape, before parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        """Wrap ``app``; bodies over ``max_bytes`` are refused."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes as they are read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _error(send, 400, "bad_request", "invalid Content-Length")
                return
            if int(declared) > self.max_bytes:
                await _error(send, 413, "too_large", self._message(int(declared)))
                return
        # Read the body here, up to the limit, then replay it: a body without a Content-Length
        # (chunked) is refused as soon as it passes the limit, before anything parses it.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await _error(send, 413, "too_large", self._message(received, "at least "))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _message(self, size: int, qualifier: str = "") -> str:
        return f"request body of {qualifier}{size} bytes; the limit is {self.max_bytes}"


async def _error(send: Send, status: int, code: str, message: str) -> None:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "details": [], "trace_id": None}}
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
