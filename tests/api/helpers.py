"""Helpers for the API tests: an app on the pipeline fakes, the one error shape, an SSE reader."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.cli import main
from api.config import Settings
from api.main import create_app
from graph.services import LoadedServices
from tests.pipeline_fakes import KeywordScorer, OverlapSearcher, ScriptedJudge, fake_context

CLAIM_0 = "Global temperatures rose 1.1 degrees since 1880."
CLAIM_2 = "Unemployment fell to 3.5 percent in 2019."
CHATTER = ("Thank you all for coming tonight.", "What a wonderful crowd!")
ERROR_KEYS = {"code", "message", "details", "trace_id"}
ALICE = "alice-7Hq2VbX9kLm4Pz8R"
"""An API key (named alice in the tests' settings)."""
BOB = "bob-Np3Wc6Yt1Rs5Dg0J"
"""Another API key (named bob)."""
SECURITY_HEADERS = ("x-content-type-options", "content-security-policy", "x-frame-options", "referrer-policy")
"""Headers every answer carries (api/security.py)."""


def bearer(key: str) -> dict[str, str]:
    """The header that carries an API key."""
    return {"Authorization": f"Bearer {key}"}


def fake_app(
    store: Path | None,
    settings: Settings | None = None,
    *,
    scorer: KeywordScorer | None = None,
    searcher: Any = None,
    llm: ScriptedJudge | None = None,
) -> FastAPI:
    """An app whose pipeline runs on the fakes, with a SQLite trace store at ``store``."""
    context = fake_context(store, scorer=scorer, searcher=searcher or OverlapSearcher(), llm=llm)
    return create_app(settings or Settings(), services=LoadedServices(context, []))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Check the one error shape (and that no stack trace leaked); return its ``error`` object.

    ``response`` is the TestClient's (an httpx or httpx2 response, depending on the Starlette version).
    """
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    assert "Traceback" not in response.text and 'File "' not in response.text
    return error


def parse_sse(lines: Iterable[str]) -> list[tuple[str, Any]]:
    """Server-Sent Events as (event, parsed JSON data), comments (pings) skipped."""
    events: list[tuple[str, Any]] = []
    name = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].removeprefix(" "))
    if data:
        events.append((name, json.loads("\n".join(data))))
    return events


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``verifact ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The single ``verifact: error: ...`` line a user error prints, checked to be alone."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("verifact: error: ")
    return lines[0]
