"""A scripted `httpx.MockTransport` for SDK tests: canned answers in order, requests recorded."""

from __future__ import annotations

import httpx
from verifact import Client

HEALTH = {"status": "ok", "ready": True}
"""A minimal `/healthz` answer."""


def error(status: int, code: str = "x", headers: dict[str, str] | None = None) -> httpx.Response:
    """An answer in the service's error shape."""
    body = {"error": {"code": code, "message": f"{code} happened", "details": [], "trace_id": None}}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """A transport that answers from a list, one item per request (the last one repeats), recording each."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **kwargs: object) -> tuple[Client, list[float]]:
        """A `Client` over this script whose sleeps are recorded instead of slept."""
        http = httpx.Client(transport=httpx.MockTransport(self), base_url="http://svc")
        client = Client(http_client=http, **kwargs)  # type: ignore[arg-type]
        slept: list[float] = []
        client._sleep = slept.append  # type: ignore[method-assign]
        return client, slept
