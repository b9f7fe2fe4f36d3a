"""Reranker training data: gold against annotated near misses and mined hits, from train claims only."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.climate_fever import corpus_passages, load_claims
from retrieval.errors import EncoderError
from retrieval.index import EvidenceIndex
from retrieval.rerank_tune import RerankExample, RerankTuneConfig, reranker_examples, tune_reranker
from retrieval.retriever import CrossEncoderReranker, Retriever
from retrieval.types import Passage
from tests.conftest import build_tiny_bert
from tests.fakes import HashEncoder
from tests.retrieval.test_tune import write_climate_fever


def test_examples_label_gold_one_and_near_misses_zero_for_train_claims_only(tmp_path: Path) -> None:
    data = write_climate_fever(tmp_path, n_claims=30)
    extra = [Passage(f"other-{i}", f"claim {i} unrelated filler sentence {i}") for i in range(30)]
    index = EvidenceIndex(HashEncoder())
    claims = load_claims(data)
    index.add([Passage(e.id, e.text, e.article) for c in claims for e in c.evidences] + extra)
    examples = reranker_examples(data, Retriever(index), mined_negatives=2)
    train = {c.text: c for c in load_claims(data, "train")}
    assert {e.query for e in examples} == set(train)
    for claim_text, claim in train.items():
        mine = [e for e in examples if e.query == claim_text]
        positives = {e.passage for e in mine if e.label == 1.0}
        assert positives == {f"{ev.article}: {ev.text}" for ev in claim.evidences if ev.id in claim.gold_ids}
        assert len(mine) == 5 + 2  # five annotated sentences, two mined non-annotated hits
        annotated = {f"{ev.article}: {ev.text}" for ev in claim.evidences}
        mined = [e for e in mine if e.passage not in annotated]
        assert len(mined) == 2 and all(e.label == 0.0 for e in mined)
    assert corpus_passages  # the benchmark corpus loader stays importable from here


@pytest.mark.slow
def test_a_tuned_reranker_saves_and_scores_pairs(tmp_path: Path) -> None:
    base = build_tiny_bert(tmp_path / "tiny")
    examples = [RerankExample("tax cut", "tax cut", 1.0), RerankExample("tax cut", "hello night", 0.0)] * 8
    report = tune_reranker(str(base), examples, tmp_path / "rr", RerankTuneConfig(epochs=1, batch_size=4))
    assert report["examples"] == 16 and report["positives"] == 8
    scores = CrossEncoderReranker(str(tmp_path / "rr")).score("tax cut", ["tax cut", "hello night"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)


def test_no_examples_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="no reranker training examples"):
        tune_reranker("anything", [], tmp_path / "rr")
