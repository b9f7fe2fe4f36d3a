"""Trace store faults: a store that refuses writes or stays locked costs the record, never the answer.

The choice (README, "Faults"): /verify still answers 200 with ``trace_stored: false``; the failure
is logged and counted in ``trace_store_failures`` on /healthz and /readyz.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from graph.errors import TraceStoreError
from graph.services import LoadedServices
from graph.tracestore import SqlTraceStore, TraceStore, open_trace_store
from tests.api.helpers import assert_error
from tests.pipeline_fakes import TEXT, KeywordScorer, fake_context

BUSY_TIMEOUT_MS = 200
"""How long a save waits for a lock another connection holds; the default (5 s) would slow the test."""


def store_client(store: TraceStore, scorer: KeywordScorer | None = None) -> TestClient:
    """A TestClient (not yet started) on the fakes with this trace store; server errors answer 500."""
    context = dataclasses.replace(fake_context(None, scorer=scorer), trace_store=store)
    app = create_app(Settings(), services=LoadedServices(context, []))
    return TestClient(app, raise_server_exceptions=False)


def _failures(client: TestClient) -> tuple[int, int]:
    """``trace_store_failures`` as /healthz and /readyz report it."""
    health, ready = client.get("/healthz"), client.get("/readyz")
    assert health.status_code == ready.status_code == 200
    return health.json()["trace_store_failures"], ready.json()["trace_store_failures"]


def _verify(client: TestClient) -> dict[str, Any]:
    response = client.post("/verify", json={"text": TEXT})
    assert response.status_code == 200, response.text[:300]
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def read_only_store(store_path: Path) -> Iterator[SqlTraceStore]:
    """A real store opened read-only (SQLite's mode=ro), its table already made: every save fails.

    Permissions cannot make a file unwritable for root, who runs CI; SQLite's read-only mode can.
    """
    open_trace_store(str(store_path)).close()
    store = open_trace_store(f"sqlite:///file:{store_path}?mode=ro&uri=true")
    try:
        yield store
    finally:
        store.close()


def test_an_unwritable_store_answers_200_unstored_logged_and_counted(
    read_only_store: SqlTraceStore, caplog: pytest.LogCaptureFixture
) -> None:
    with store_client(read_only_store) as client, caplog.at_level(logging.ERROR):
        assert _failures(client) == (0, 0)
        first, second = _verify(client), _verify(client)
        counted = _failures(client)
        missing = client.get(f"/traces/{first['trace_id']}")

    assert first["trace_stored"] is False and second["trace_stored"] is False
    assert [c["verdict"] for c in first["claims"]] == ["SUPPORTED", "SUPPORTED"]  # the answer is whole
    assert counted == (2, 2)
    logged = [r.getMessage() for r in caplog.records if r.name == "graph.nodes"]
    assert len(logged) == 2
    assert first["trace_id"] in logged[0] and "readonly database" in logged[0]
    assert_error(missing, 404, "not_found")


def test_a_failed_run_whose_trace_cannot_be_stored_either_is_counted_too(
    read_only_store: SqlTraceStore, caplog: pytest.LogCaptureFixture
) -> None:
    scorer = KeywordScorer()
    scorer.fail = RuntimeError("scorer broke")
    with store_client(read_only_store, scorer) as failing, caplog.at_level(logging.ERROR):
        response = failing.post("/verify", json={"text": TEXT})
        counted = _failures(failing)

    assert_error(response, 503, "unavailable")
    assert counted == (1, 1)
    assert any("was not stored either" in r.getMessage() for r in caplog.records)


def test_a_store_that_raises_on_save_is_counted_and_the_next_good_save_is_not(store_path: Path) -> None:
    store = open_trace_store(str(store_path))
    real_save = store.save
    broken = [True]

    def save(trace: Any) -> None:
        if broken[0]:
            raise TraceStoreError("trace store: cannot save: disk I/O error")
        real_save(trace)

    store.save = save  # type: ignore[method-assign]
    with store_client(store) as client:
        failed = _verify(client)
        broken[0] = False
        stored = _verify(client)
        counted = _failures(client)
        found = client.get(f"/traces/{stored['trace_id']}")
    store.close()

    assert failed["trace_stored"] is False and stored["trace_stored"] is True
    assert counted == (1, 1)
    assert found.status_code == 200


def test_a_store_locked_beyond_its_busy_timeout_answers_in_bounded_time_unstored(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_trace_store(str(store_path), busy_timeout_ms=BUSY_TIMEOUT_MS)
    blocker = sqlite3.connect(store_path, isolation_level=None)
    try:
        with store_client(store) as client, caplog.at_level(logging.ERROR):
            blocker.execute("BEGIN EXCLUSIVE")  # another process's writer, holding the lock throughout
            started = time.monotonic()
            locked = _verify(client)
            elapsed = time.monotonic() - started
            blocker.execute("ROLLBACK")
            unlocked = _verify(client)
            counted = _failures(client)
    finally:
        blocker.close()
        store.close()

    assert locked["trace_stored"] is False
    assert BUSY_TIMEOUT_MS / 1000 <= elapsed < 3.0, f"/verify took {elapsed:.2f} s under the lock"
    assert any("database is locked" in r.getMessage() for r in caplog.records if r.name == "graph.nodes")
    assert unlocked["trace_stored"] is True
    assert counted == (1, 1)


def test_the_busy_timeout_defaults_to_five_seconds(store_path: Path) -> None:
    store = open_trace_store(str(store_path))
    quick = open_trace_store(str(store_path), busy_timeout_ms=BUSY_TIMEOUT_MS)
    try:
        with store._engine.connect() as a, quick._engine.connect() as b:
            timeouts = [c.exec_driver_sql("PRAGMA busy_timeout").scalar() for c in (a, b)]
    finally:
        store.close()
        quick.close()

    assert timeouts == [5000, BUSY_TIMEOUT_MS]
