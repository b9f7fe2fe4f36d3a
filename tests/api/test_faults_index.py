"""Index faults: missing or corrupt at start (/readyz says why), and a save that fails mid-way.

The start-up tests run the real loader (`graph.services.load_services`) on a real index directory;
only the classifier and the encoder's weights, which load before and beside the index, are stood in
for (a fake classifier, the hash encoder), since the index is what is under test.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from classifier.predict import CheckWorthinessClassifier
from graph.services import IndexSearcher
from retrieval.index import EvidenceIndex
from retrieval.lexical import LexicalIndex
from retrieval.retriever import Retriever
from retrieval.types import Passage
from tests.api.helpers import CLAIM_2, assert_error, fake_app
from tests.fakes import HashEncoder
from tests.pipeline_fakes import DOCS, TEXT

JOBS = {"id": "jobs-2019", "text": DOCS[1].text, "title": "Jobs report"}


def _build(target: Path, docs: int = 3) -> None:
    index = EvidenceIndex(HashEncoder())
    index.add([Passage(id=d.id, text=d.text, title=d.title) for d in DOCS[:docs]])
    index.save(target)


def _write(name: str, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(index: Path) -> None:
        path = index / name
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)

    return damage


def _remove(name: str) -> Callable[[Path], None]:
    def damage(index: Path) -> None:
        path = index / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return damage


def _other_passages(index: Path) -> None:
    _build(index.parent / "smaller", docs=1)
    shutil.copy(index.parent / "smaller" / "passages.sqlite", index / "passages.sqlite")


def _other_format(index: Path) -> None:
    manifest = json.loads((index / "manifest.json").read_text())
    (index / "manifest.json").write_text(json.dumps({**manifest, "format": "someone-else/9"}))


DAMAGE: dict[str, tuple[Callable[[Path], None] | None, str]] = {
    "missing": (None, "no such index directory"),
    "empty-directory": (lambda index: shutil.rmtree(index) or index.mkdir(), "no manifest.json"),
    "manifest-garbage": (_write("manifest.json", b"{not json"), "manifest.json: corrupt manifest"),
    "manifest-truncated": (_write("manifest.json", lambda b: b[: len(b) // 2]), "corrupt manifest"),
    "manifest-binary": (_write("manifest.json", b"\xff\xfe\x00\x01"), "corrupt manifest"),
    "manifest-other-format": (_other_format, "unknown index format 'someone-else/9'"),
    "vectors-garbage": (_write("vectors.faiss", b"garbage" * 20), "vectors.faiss: unreadable FAISS index"),
    "vectors-truncated": (_write("vectors.faiss", lambda b: b[:40]), "unreadable FAISS index"),
    "vectors-missing": (_remove("vectors.faiss"), "vectors.faiss: unreadable FAISS index"),
    "passages-garbage": (_write("passages.sqlite", b"x" * 4096), "not a readable passage store"),
    "passages-missing": (_remove("passages.sqlite"), "passages.sqlite: passage store missing"),
    "bm25-missing": (_remove("bm25"), "unreadable BM25 index"),
    "files-disagree": (_other_passages, "files disagree"),
}


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake classifier and the hash encoder in place of model weights; the index loads for real."""
    fake = SimpleNamespace(threshold=0.5, predict=lambda sentences: [], close=lambda: None)
    monkeypatch.setattr(CheckWorthinessClassifier, "load", classmethod(lambda cls, *a, **k: fake))
    monkeypatch.setattr("retrieval.encoder.load_encoder", lambda *a, **k: HashEncoder())


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.usefixtures("stand_ins")
def test_a_missing_or_corrupt_index_at_start_makes_readyz_say_why(damage: str, tmp_path: Path) -> None:
    index = tmp_path / "index"
    mutate, expected = DAMAGE[damage]
    if mutate is not None:
        _build(index)
        mutate(index)
    settings = Settings(index_dir=str(index), trace_db=str(tmp_path / "traces.db"))
    app = create_app(settings)
    with TestClient(app) as client:
        client.portal.call(app.state.services.wait_ready)
        ready = client.get("/readyz")
        health = client.get("/healthz")
        verify = client.post("/verify", json={"text": TEXT})

    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "failed" and body["ready"] is False
    reason = body["reason"]
    assert reason.startswith(f"IndexLoadError: {index}"), reason
    assert expected in reason, reason
    assert "\n" not in reason and "Traceback" not in reason
    assert health.status_code == 200 and health.json()["reason"] == reason
    error = assert_error(verify, 503, "unavailable")
    assert error["message"] == f"not ready: {reason}"
    assert "retry-after" not in verify.headers  # waiting will not mend the index


@pytest.mark.usefixtures("stand_ins")
def test_an_intact_index_passes_the_same_loader_as_far_as_the_nli_model(tmp_path: Path) -> None:
    # The control for the test above: with the index whole, loading fails only later, at the NLI model.
    _build(tmp_path / "index")
    settings = Settings(
        index_dir=str(tmp_path / "index"), nli_model=str(tmp_path / "no-nli"), trace_db=str(tmp_path / "t.db")
    )
    app = create_app(settings)
    with TestClient(app) as client:
        client.portal.call(app.state.services.wait_ready)
        reason = client.get("/readyz").json()["reason"]

    assert "no-nli" in reason and "IndexLoadError" not in reason


def test_a_part_that_fails_to_close_does_not_hide_the_load_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken_close() -> None:
        raise RuntimeError("close failed")

    fake = SimpleNamespace(threshold=0.5, predict=lambda sentences: [], close=broken_close)
    monkeypatch.setattr(CheckWorthinessClassifier, "load", classmethod(lambda cls, *a, **k: fake))
    settings = Settings(index_dir=str(tmp_path / "no-index"), trace_db=str(tmp_path / "t.db"))
    app = create_app(settings)
    with TestClient(app) as client:
        client.portal.call(app.state.services.wait_ready)
        reason = client.get("/readyz").json()["reason"]

    assert reason.startswith("IndexLoadError:") and "close failed" not in reason, reason


# -- a save that fails mid-way, through POST /documents -------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A saved hash-encoded index holding only the climate passage."""
    _build(tmp_path / "index", docs=1)
    return tmp_path / "index"


@pytest.fixture
def searcher(saved: Path) -> Iterator[IndexSearcher]:
    """The real searcher over the saved index; POST /documents saves through it."""
    found = IndexSearcher(Retriever(EvidenceIndex.load(saved, HashEncoder())), index_dir=str(saved))
    try:
        yield found
    finally:
        found.close()


def _fail_writing_bm25(monkeypatch: pytest.MonkeyPatch, index: Path) -> None:
    def disk_full(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LexicalIndex, "save", disk_full)


def _fail_the_swap(monkeypatch: pytest.MonkeyPatch, index: Path) -> None:
    real_rename = Path.rename

    def rename(self: Path, target: Any) -> Any:
        if self.name.startswith(f".{index.name}.tmp-"):  # the old copy is already moved aside
            raise OSError(5, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)


@pytest.mark.parametrize("failure", [_fail_writing_bm25, _fail_the_swap], ids=["writing", "swapping"])
def test_a_save_failing_mid_way_answers_503_and_keeps_the_old_index_on_disk_and_in_memory(
    failure: Callable[[pytest.MonkeyPatch, Path], None],
    saved: Path,
    searcher: IndexSearcher,
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with TestClient(fake_app(store_path, searcher=searcher), raise_server_exceptions=False) as client:
        with monkeypatch.context() as patch:
            failure(patch, saved)
            failed = client.post("/documents", json={"documents": [JOBS]})
        after = client.post("/verify", json={"text": TEXT}).json()
        on_disk = {p.id for _, p in EvidenceIndex.load(saved, HashEncoder()).store.iter_all()}
        retry = client.post("/documents", json={"documents": [JOBS]})

    error = assert_error(failed, 503, "unavailable")
    assert "could not be added" in error["message"] and failed.headers["retry-after"] == "5"
    assert on_disk == {"d1"}  # loadable, and the old content (after a failed swap: the previous copy)
    claim_2 = next(c for c in after["claims"] if c["text"] == CLAIM_2)
    assert [e["id"] for e in claim_2["evidence"]] == ["d1"]  # nor is it searchable in memory
    assert retry.status_code == 200 and retry.json() == {"added": 1, "skipped_duplicates": 0, "total": 2}
    assert {p.id for _, p in EvidenceIndex.load(saved, HashEncoder()).store.iter_all()} == {"d1", "jobs-2019"}


def test_a_passage_the_store_refuses_leaves_no_vector_behind(tmp_path: Path) -> None:
    index = EvidenceIndex(HashEncoder())
    index.add([Passage(id="d1", text=DOCS[0].text)])

    # A lone surrogate (once let through by the API) is one thing SQLite cannot store.
    with pytest.raises(UnicodeEncodeError):
        index.add([Passage(id="bad", text="Ice melts.", title="\ud800")])

    assert index.vectors.ntotal == len(index) == 1
    index.save(tmp_path / "index")
    assert len(EvidenceIndex.load(tmp_path / "index", HashEncoder())) == 1  # "files disagree" before
