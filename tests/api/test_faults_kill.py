"""``kill -9`` faults: of the server during a burst of writes, and of a process saving the index.

Both kill real processes (subprocesses of the test) with SIGKILL, so no cleanup code runs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from graph.tracestore import open_trace_store
from retrieval.index import EvidenceIndex
from retrieval.types import Passage
from tests.api import serve_fakes
from tests.api.helpers import fake_app
from tests.api.index_crash import NEW, POINTS
from tests.fakes import HashEncoder
from tests.pipeline_fakes import DOCS, TEXT

pytestmark = pytest.mark.slow  # subprocesses

ROOT = Path(__file__).resolve().parents[2]
BURST = 40
KILL_AFTER = 10
"""Answers to wait for before the kill; the rest of the burst is in flight or not yet sent."""


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def server(store_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A uvicorn server on the fakes in a subprocess, its judge slow enough to keep runs in flight."""
    with serve_fakes.running(store_path, "--judge-delay-s", "0.2") as served:
        yield served


def test_every_answered_trace_survives_a_kill_9_during_a_burst(
    server: tuple[subprocess.Popen[str], str], store_path: Path
) -> None:
    proc, url = server
    answered: list[str] = []
    lost = 0
    lock = threading.Lock()
    enough = threading.Event()

    def one(i: int) -> None:
        nonlocal lost
        time.sleep(i * 0.02)  # a burst spread over ~0.8 s, so the kill lands in its middle
        try:
            response = httpx.post(f"{url}/verify", json={"text": f"{TEXT} Request {i}."}, timeout=20)
        except httpx.TransportError:
            with lock:
                lost += 1
            return
        assert response.status_code == 200, response.text[:200]
        with lock:
            answered.append(response.json()["trace_id"])
            if len(answered) >= KILL_AFTER:
                enough.set()

    with ThreadPoolExecutor(BURST) as pool:
        futures = [pool.submit(one, i) for i in range(BURST)]
        assert enough.wait(timeout=30), "too few answers before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        for future in futures:
            future.result()
    assert proc.wait(timeout=10) == -signal.SIGKILL

    assert len(answered) >= KILL_AFTER and lost >= 1, (len(answered), lost)
    with sqlite3.connect(store_path) as db:  # "the store opens cleanly"
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute("SELECT count(*) FROM traces").fetchone()[0]
    # Runs stored whose answer the kill cut off are fine; an answer without its trace is not.
    print(f"kill -9 mid-burst: {len(answered)} answered, {lost} cut off, {rows} traces on disk")
    store = open_trace_store(str(store_path))  # the restart
    try:
        missing = [t for t in answered if store.get(t) is None]
    finally:
        store.close()
    assert missing == []
    with TestClient(fake_app(store_path)) as restarted:
        assert all(restarted.get(f"/traces/{t}").status_code == 200 for t in answered)


def _saved_index(target: Path) -> dict[str, str]:
    index = EvidenceIndex(HashEncoder())
    index.add([Passage(id=d.id, text=d.text, title=d.title) for d in DOCS[:3]])
    index.save(target)
    return _contents(target)


def _contents(target: Path) -> dict[str, str]:
    return {p.id: p.text for _, p in EvidenceIndex.load(target, HashEncoder()).store.iter_all()}


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_9_while_the_index_is_saved_leaves_a_loadable_index(point: str, tmp_path: Path) -> None:
    target = tmp_path / "index"
    old = _saved_index(target)

    crashed = subprocess.run(
        _python("tests.api.index_crash", str(target), point),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    # The old index until the new copy has taken its place; then the new one. Never a mix.
    expected = {**old, NEW.id: NEW.text} if point == "done" else old
    assert _contents(target) == expected
    leftovers = list(tmp_path.glob(f".{target.name}.tmp-*"))
    # Killed before its new copy took the index's place, the save left that copy behind.
    assert len(leftovers) == (0 if point == "done" else 1), leftovers
    # The next save recovers from whatever the crash left, and the index is whole again.
    index = EvidenceIndex.load(target, HashEncoder())
    index.add([Passage(id="later", text="A passage added after the crash.")])
    index.save(target)
    assert _contents(target) == {**expected, "later": "A passage added after the crash."}
    assert (target / "manifest.json").is_file()
    assert not target.with_name(f".{target.name}.previous").exists()
    assert not list(tmp_path.glob(f".{target.name}.tmp-*")), "the dead save's copy is still there"
