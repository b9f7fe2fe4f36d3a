"""The retrieval benchmark's arithmetic and corpora: recall@k, MRR, and de-duplicated padding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.retrieval_quality
from bench.retrieval_data import padded_corpus
from bench.retrieval_quality import open_index, rank_metrics
from retrieval.index import EvidenceIndex, IndexConfig
from retrieval.types import Passage
from tests.fakes import HashEncoder


def test_recall_is_the_share_of_gold_in_the_top_k_and_mrr_the_first_gold_rank() -> None:
    ranked = [["a", "x", "b"] + ["y"] * 97, ["x", "y", "z"] + ["w"] * 97]
    gold = [frozenset({"a", "b"}), frozenset({"z", "q"})]
    m = rank_metrics(ranked, gold)
    assert m["recall@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["recall@5"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["recall@100"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["mrr"] == pytest.approx((1.0 + 1 / 3) / 2)


def test_padding_keeps_climate_fever_ids_when_a_distractor_repeats_their_text(tmp_path: Path) -> None:
    (tmp_path / "climate_fever").mkdir()
    (tmp_path / "covid_fact").mkdir()
    (tmp_path / "wice").mkdir()
    (tmp_path / "climate_fever" / "corpus.jsonl").write_text(
        json.dumps({"id": "Sea:1", "article": "Sea", "text": "Seas rise."}) + "\n"
    )
    (tmp_path / "covid_fact" / "corpus.jsonl").write_text(
        json.dumps({"id": "cf1", "text": "Seas rise."})
        + "\n"
        + json.dumps({"id": "cf2", "text": "Masks help."})
        + "\n"
    )
    wice = {"evidence": ["(meta data) TITLE: Page", "First line.", " ", "Masks help."], "meta": {"id": 7}}
    (tmp_path / "wice" / "claim_dev.jsonl").write_text(json.dumps(wice) + "\n")
    (tmp_path / "wice" / "claim_test.jsonl").write_text("")
    passages, sizes = padded_corpus(tmp_path)
    assert [p.id for p in passages] == ["Sea:1", "cf2", "wice-dev-7:1"]
    assert passages[0].title == "Sea" and passages[2].title == "Page"
    assert sizes == {"climate-fever": 1, "covid-fact": 1, "wice": 1, "duplicates_skipped": 2}


def test_a_reused_index_keeps_its_vectors_and_takes_todays_bm25_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.retrieval_quality, "WORK", tmp_path)
    passages = [Passage(f"p{i}", f"passage number {i} about topic {i % 3}") for i in range(12)]
    old = EvidenceIndex(HashEncoder(), IndexConfig(bm25_k1=1.2, bm25_b=0.75))
    old.add(passages)
    old.save(tmp_path / "demo")
    reused = open_index("demo", passages, HashEncoder(), reuse=True)
    defaults = IndexConfig()
    saved = EvidenceIndex.read_manifest(tmp_path / "demo")
    assert (saved["lexical"]["k1"], saved["lexical"]["b"]) == (defaults.bm25_k1, defaults.bm25_b)
    assert (reused.config.bm25_k1, reused.config.bm25_b) == (defaults.bm25_k1, defaults.bm25_b)
    assert saved["built_at"] == old.built_at  # not re-encoded


def test_a_tuning_rerun_keeps_the_hand_written_sections_of_its_report(tmp_path: Path) -> None:
    from bench.retrieval_tune import kept_notes

    report = tmp_path / "retrieval_tune.md"
    assert kept_notes(report) == ""
    report.write_text("# Encoder tuning tries\n\n| try |\n\nChosen: x.\n\n## More tries\n\nnotes\n")
    assert kept_notes(report) == "\n## More tries\n\nnotes\n"
    report.write_text("# Encoder tuning tries\n\n| try |\n")
    assert kept_notes(report) == ""
