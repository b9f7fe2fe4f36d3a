"""The app with fakes at its seams, and what tests need to drive it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from api.config import Settings
from api.main import create_app
from graph.context import Context
from graph.services import LoadedServices
from tests.pipeline_fakes import KeywordScorer, fake_context

MAX_TEXT_CHARS = 400
"""The servers' text limit in these tests: `TEXT` (148 characters) fits, 401 characters do not."""


def make_app(tmp: Path, **settings: Any) -> tuple[FastAPI, Context]:
    """The real app over a context of fakes with a real SQLite trace store; no .env file."""
    context = fake_context(tmp / "traces.db")
    values: dict[str, Any] = {"trace_db": str(tmp / "t.db"), "max_text_chars": MAX_TEXT_CHARS, **settings}
    app = create_app(Settings(_env_file=None, **values), services=LoadedServices(context, []))
    return app, context


@contextmanager
def scorer_failing(context: Context, message: str = "scorer broke") -> Iterator[None]:
    """Make the fake classifier raise, so whole runs fail, for the duration of a block."""
    scorer = context.scorer
    assert isinstance(scorer, KeywordScorer)
    scorer.fail = RuntimeError(message)
    try:
        yield
    finally:
        scorer.fail = None


@dataclass
class LiveServer:
    """A uvicorn server on 127.0.0.1 in a background thread."""

    url: str
    context: Context
    """The fakes it runs with (tests may tell the scorer to fail)."""
