"""API fixtures: a hermetic environment, the pipeline fakes, and a TestClient on them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import fake_app
from tests.pipeline_fakes import KeywordScorer, OverlapSearcher


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``VERIFACT_*`` variable or .env file of the machine, nor its runs/ folder, leaks into a test."""
    for name in list(os.environ):
        if name.startswith("VERIFACT_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """The SQLite trace store file of the test's app."""
    return tmp_path / "traces.db"


@pytest.fixture
def scorer() -> KeywordScorer:
    """The keyword classifier fake (set ``.fail`` to make it raise)."""
    return KeywordScorer()


@pytest.fixture
def searcher() -> OverlapSearcher:
    """The word-overlap evidence searcher fake (set ``.fail`` to make it raise)."""
    return OverlapSearcher()


@pytest.fixture
def client(store_path: Path, scorer: KeywordScorer, searcher: OverlapSearcher) -> Iterator[TestClient]:
    """A started app on the fakes with default settings."""
    with TestClient(fake_app(store_path, scorer=scorer, searcher=searcher)) as c:
        yield c
