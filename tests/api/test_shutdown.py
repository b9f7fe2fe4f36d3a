"""SIGTERM with requests still running: the server stops within its grace and keeps their traces.

The real app under the uvicorn configuration of ``verifact serve`` (`api.main.uvicorn_config`), in its
own process, over the pipeline fakes with a judge that takes far longer than the grace.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.tracestore import TraceQuery, open_trace_store
from tests.api import serve_fakes

TEXT = "The Eiffel Tower is in Paris. It opened in 1889."

STOPPED = (0, -signal.SIGTERM)
"""Exit statuses of a clean stop: uvicorn raises the caught SIGTERM again once it has shut down."""

pytestmark = pytest.mark.slow


def _serve(store: Path, judge_delay_s: float, grace_s: float) -> Any:
    return serve_fakes.running(
        store, "--judge-delay-s", str(judge_delay_s), "--shutdown-timeout-s", str(grace_s)
    )


def _post_in_background(url: str, answers: list[int | str]) -> threading.Thread:
    def post() -> None:
        try:
            answers.append(httpx.post(f"{url}/verify", json={"text": TEXT}, timeout=60).status_code)
        except httpx.TransportError as exc:
            answers.append(type(exc).__name__)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def test_sigterm_cancels_runs_past_the_grace_and_stores_their_traces(tmp_path: Path) -> None:
    store_path = tmp_path / "traces.db"
    answers: list[int | str] = []
    with _serve(store_path, judge_delay_s=60.0, grace_s=1.0) as (proc, url):
        threads = [_post_in_background(url, answers) for _ in range(3)]
        time.sleep(1.5)  # the runs are in their judge, which sleeps for a minute
        assert answers == [], answers
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) in STOPPED
        stopped_after = time.monotonic() - stopping
    for thread in threads:
        thread.join(timeout=10)
    # The grace (1 s) and the app's shutdown, not the judge's minute, bound the stop.
    assert stopped_after < 8, stopped_after
    # The clients got no verdict (the connection closed, or 5xx): none of them was told "done".
    assert len(answers) == 3 and 200 not in answers, answers
    store = open_trace_store(str(store_path))
    try:
        page = store.list(TraceQuery(limit=10))
        assert len(page.items) == 3
        for item in page.items:
            trace = store.get(item.trace_id)
            assert trace is not None and trace.header.status == "error"
            assert "cancelled" in (trace.header.status_reason or ""), trace.header.status_reason
    finally:
        store.close()


def test_sigterm_lets_runs_inside_the_grace_finish(tmp_path: Path) -> None:
    store_path = tmp_path / "traces.db"
    answers: list[int | str] = []
    with _serve(store_path, judge_delay_s=1.0, grace_s=20.0) as (proc, url):
        thread = _post_in_background(url, answers)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) in STOPPED
    thread.join(timeout=10)
    assert answers == [200]
    store = open_trace_store(str(store_path))
    try:
        (item,) = store.list(TraceQuery(limit=10)).items
        trace = store.get(item.trace_id)
        assert trace is not None and trace.header.status == "ok"
    finally:
        store.close()
