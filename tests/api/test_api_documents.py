"""POST /documents (fake and real hash-encoded index) and POST /predict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from graph.services import IndexSearcher
from retrieval.index import EvidenceIndex
from retrieval.retriever import Retriever
from retrieval.types import Passage, content_id
from tests.api.helpers import CLAIM_2, assert_error, fake_app
from tests.fakes import HashEncoder
from tests.pipeline_fakes import DOCS, TEXT, KeywordScorer

JOBS = {"id": "jobs-2019", "text": DOCS[1].text, "title": "Jobs report", "source": "bls"}


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    """A saved hash-encoded index holding only the climate passage."""
    index = EvidenceIndex(HashEncoder())
    index.add([Passage(id="d1", text=DOCS[0].text, title=DOCS[0].title)])
    target = tmp_path / "index"
    index.save(target)
    return target


@pytest.fixture
def real_client(index_dir: Path, store_path: Path) -> Iterator[TestClient]:
    """An app whose searcher is a real index on disk that accepts documents."""
    searcher = IndexSearcher(
        Retriever(EvidenceIndex.load(index_dir, HashEncoder())), index_dir=str(index_dir)
    )
    try:
        with TestClient(fake_app(store_path, searcher=searcher)) as client:
            yield client
    finally:
        searcher.close()


def _on_disk(index_dir: Path) -> dict[str, str]:
    index = EvidenceIndex.load(index_dir, HashEncoder())
    return {p.id: p.text for _, p in index.store.iter_all()}


def _claim_2(client: TestClient) -> dict[str, Any]:
    response = client.post("/verify", json={"text": TEXT})
    assert response.status_code == 200, response.text
    claim: dict[str, Any] = next(c for c in response.json()["claims"] if c["text"] == CLAIM_2)
    return claim


def test_documents_with_a_searcher_that_cannot_add_get_501(client: TestClient) -> None:
    error = assert_error(client.post("/documents", json={"documents": [JOBS]}), 501, "not_implemented")

    assert "does not accept documents" in error["message"]


def test_an_added_document_is_saved_to_disk_and_then_cited_as_evidence(
    real_client: TestClient, index_dir: Path
) -> None:
    before = _claim_2(real_client)
    assert before["verdict"] == "NOT_ENOUGH_INFO"
    assert [e["id"] for e in before["evidence"]] == ["d1"]

    added = real_client.post("/documents", json={"documents": [JOBS]})

    assert added.status_code == 200
    assert added.json() == {"added": 1, "skipped_duplicates": 0, "total": 2}
    assert _on_disk(index_dir) == {"d1": DOCS[0].text, "jobs-2019": DOCS[1].text}
    after = _claim_2(real_client)
    assert after["verdict"] == "SUPPORTED"
    assert after["citations"] == ["jobs-2019"]
    cited = next(e for e in after["evidence"] if e["cited"])
    assert cited["title"] == "Jobs report" and cited["source"] == "bls"


def test_a_repeated_document_is_skipped_and_a_reused_id_gets_409(
    real_client: TestClient, index_dir: Path
) -> None:
    assert real_client.post("/documents", json={"documents": [JOBS]}).status_code == 200

    again = real_client.post("/documents", json={"documents": [JOBS]})
    clash = real_client.post(
        "/documents", json={"documents": [{"id": "jobs-2019", "text": "Something else."}]}
    )

    assert again.status_code == 200
    assert again.json() == {"added": 0, "skipped_duplicates": 1, "total": 2}
    error = assert_error(clash, 409, "conflict")
    assert "jobs-2019" in error["message"]
    assert _on_disk(index_dir)["jobs-2019"] == DOCS[1].text


def test_a_document_without_an_id_gets_its_content_hash(real_client: TestClient, index_dir: Path) -> None:
    text = "Arctic sea ice reached a record low in 2012."
    response = real_client.post("/documents", json={"documents": [{"text": text}]})

    assert response.json()["added"] == 1
    assert _on_disk(index_dir)[content_id(text)] == text


def test_a_document_whose_save_failed_is_saved_by_the_retry(
    real_client: TestClient, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: EvidenceIndex, directory: Any) -> dict[str, Any]:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(EvidenceIndex, "save", disk_full)
        # A second client on the same app, so the failure answers instead of raising into the test.
        failed = TestClient(real_client.app, raise_server_exceptions=False).post(
            "/documents", json={"documents": [JOBS]}
        )
    assert failed.status_code == 503 and "could not be added" in failed.json()["error"]["message"]

    retry = real_client.post("/documents", json={"documents": [JOBS]})

    assert retry.status_code == 200
    assert "jobs-2019" in _on_disk(index_dir)


def test_too_many_documents_get_413_and_an_empty_list_422(store_path: Path) -> None:
    with TestClient(fake_app(store_path, Settings(max_documents=1))) as client:
        too_many = client.post("/documents", json={"documents": [JOBS, {"text": "Another."}]})
        empty = client.post("/documents", json={"documents": []})
        blank = client.post("/documents", json={"documents": [{"text": ""}]})

    assert "limit is 1" in assert_error(too_many, 413, "too_large")["message"]
    assert_error(empty, 422, "invalid_input")
    assert_error(blank, 422, "invalid_input")


def test_predict_scores_each_sentence_in_order(client: TestClient, scorer: KeywordScorer) -> None:
    sentences = ["Hello there.", "Prices rose 5 percent.", "Thanks, everyone."]
    response = client.post("/predict", json={"sentences": sentences})

    assert response.status_code == 200
    body = response.json()
    assert [p["text"] for p in body["predictions"]] == sentences
    assert [p["score"] for p in body["predictions"]] == [0.2, 0.99, 0.2]
    assert [p["check_worthy"] for p in body["predictions"]] == [False, True, False]
    assert body["threshold"] == 0.5
    assert scorer.calls == [sentences]


def test_predict_takes_a_threshold_override(client: TestClient) -> None:
    body = client.post(
        "/predict", json={"sentences": ["Hello there.", "Prices rose."], "threshold": 0.1}
    ).json()
    strict = client.post("/predict", json={"sentences": ["Prices rose."], "threshold": 0.9}).json()

    assert body["threshold"] == 0.1
    assert [p["check_worthy"] for p in body["predictions"]] == [True, True]
    assert [p["check_worthy"] for p in strict["predictions"]] == [False]


def test_predict_refuses_too_many_sentences_or_characters_and_an_empty_list(store_path: Path) -> None:
    settings = Settings(max_predict_sentences=2, max_text_chars=30)
    with TestClient(fake_app(store_path, settings)) as client:
        at_limit = client.post("/predict", json={"sentences": ["One.", "Two."]})
        too_many = client.post("/predict", json={"sentences": ["One.", "Two.", "Three."]})
        too_long = client.post("/predict", json={"sentences": ["x" * 20, "y" * 20]})
        empty = client.post("/predict", json={"sentences": []})
        extra = client.post("/predict", json={"sentences": ["One."], "top_k": 3})

    assert at_limit.status_code == 200
    assert "3 sentences" in assert_error(too_many, 413, "too_large")["message"]
    assert "40 characters" in assert_error(too_long, 413, "too_large")["message"]
    assert assert_error(empty, 422, "invalid_input")["message"].startswith("sentences: ")
    assert assert_error(extra, 422, "invalid_input")["message"].startswith("top_k: ")
