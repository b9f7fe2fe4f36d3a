"""The verifier benchmark's pieces on tiny inputs: WiCE evidence, scores, training pairs, error reasons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.verifier_quality import judge_claims, redecide, score_set, training_pairs, wice_claims
from bench.verifier_report import is_wrong, pick_errors, reason
from graph.nli_judge import NLIJudgeParams
from graph.nli_records import ClaimRecord, EvidenceRecord
from graph.nli_rule import AggregationRule
from graph.schemas import Label
from tests.bench.test_verdict_quality import KeywordScorer
from tests.graph.test_nli_aggregator import hand_made

PARAMS = NLIJudgeParams(rule=AggregationRule(t_sup=0.5, t_ref=0.5, margin=0.0), tuned=True)


def record(
    cid: str, label: str, claim: str, *texts: str, labels: tuple[Label | None, ...] = ()
) -> ClaimRecord:
    """A claim whose passages are `texts`, with ids "<cid>-<i>"."""
    given = labels or (None,) * len(texts)
    evidences = tuple(
        EvidenceRecord(f"{cid}-{i}", t, "", lab) for i, (t, lab) in enumerate(zip(texts, given, strict=True))
    )
    return ClaimRecord(cid, claim, label, "toy", evidences)


def test_wice_evidence_is_the_best_bm25_sentences_of_the_article(tmp_path: Path) -> None:
    article = ["(meta data) TITLE: Glaciers", "Glaciers retreated in the Alps.", "Bread is tasty."]
    article += [f"Unrelated sentence number {i}." for i in range(30)]
    rows = [
        {"label": "supported", "supporting_sentences": [[1]], "claim": "Alpine glaciers retreated.",
         "evidence": article, "meta": {"id": "w1"}},
        {"label": "not_supported", "supporting_sentences": [], "claim": "Bread rises.",
         "evidence": article, "meta": {"id": "w2"}},
        {"label": "partially_supported", "supporting_sentences": [[2, 5]], "claim": "Tasty bread.",
         "evidence": article, "meta": {"id": "w3"}},
    ]  # fmt: skip
    path = tmp_path / "claim_test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    claims, recall = wice_claims(path, n_passages=3)
    assert [c.claim_label for c in claims] == ["SUPPORTED", "NOT_SUPPORTED", "PARTIAL"]
    assert claims[0].evidences[0].id == "w1:1" and len(claims[0].evidences) <= 3
    assert all(not e.text.startswith("(meta data)") for c in claims for e in c.evidences)
    # w1's gold set is kept; w3's also needs sentence 5, which shares no word with its claim.
    assert recall["claims_with_a_whole_gold_set"] == 0.5 and recall["gold_sentences_kept"] == pytest.approx(
        2 / 3
    )


def test_wice_is_scored_as_supported_against_the_rest_with_partial_apart() -> None:
    claims = [
        record("a", "SUPPORTED", "x", "confirms"),
        record("b", "NOT_SUPPORTED", "x", "denies"),  # REFUTED counts as not supported: right
        record("c", "NOT_SUPPORTED", "x", "confirms"),
        record("d", "PARTIAL", "x", "confirms"),
        record("e", "PARTIAL", "x", "nothing"),
    ]
    block = score_set("wice_test", judge_claims(KeywordScorer(), PARAMS, claims))
    assert (block["n"], block["accuracy"]) == (3, pytest.approx(2 / 3))
    assert block["f1_supported"] == pytest.approx(2 / 3) and block["f1_not_supported"] == pytest.approx(2 / 3)
    assert block["partially_supported"] == {
        "n": 2,
        "predicted": {"SUPPORTED": 1, "NOT_ENOUGH_INFO": 1},
        "called_supported": 0.5,
    }


def test_covid_macro_f1_averages_its_two_gold_labels_only() -> None:
    claims = [record("a", "SUPPORTED", "x", "confirms"), record("b", "REFUTED", "x", "nothing")]
    block = score_set("covid_fact_gold", judge_claims(KeywordScorer(), PARAMS, claims))
    assert block["macro_f1_over"] == ["SUPPORTED", "REFUTED"]
    assert block["macro_f1"] == pytest.approx(0.5) and block["macro_f1_3way"] == pytest.approx(1 / 3)
    # Always SUPPORTED (the tie goes to the first label): F1 2/3 for SUPPORTED, 0 for REFUTED.
    assert block["majority_macro_f1"] == pytest.approx(1 / 3)


def test_redeciding_with_a_learned_aggregator_reads_the_texts_and_the_temperature() -> None:
    claims = [record("a", "REFUTED", "the tax increased 7.", "the tax increased 5. confirms")]
    by_rule = judge_claims(KeywordScorer(), PARAMS, claims)
    assert by_rule[0].decision.label == "SUPPORTED"
    learned = redecide(
        by_rule, PARAMS.model_copy(update={"aggregator": hand_made(), "temperature": 2.0}), np.eye(3)
    )
    assert learned[0].decision.label == "REFUTED"
    assert learned[0].probs[0, 0] < by_rule[0].probs[0, 0]  # softened by the temperature


def test_training_pairs_read_both_report_shapes(tmp_path: Path) -> None:
    verifier = {"train": {"by_source": {"wice": {"SUPPORTED": 2, "NOT_ENOUGH_INFO": 3}}}}
    (tmp_path / "report.json").write_text(json.dumps(verifier))
    assert training_pairs(tmp_path / "model", tmp_path / "report.json")[0] == {"wice": 5}
    data = tmp_path / "nli-data"
    data.mkdir()
    nli = {
        "files": {
            "train.tsv": {"by_source": {"covid_fact": {"REFUTED": 4}, "climate_fever": {"SUPPORTED": 1}}}
        }
    }
    (data / "report.json").write_text(json.dumps(nli))
    run = {"config": {"data": {"data_dir": str(data), "extra_train_files": []}}}
    (tmp_path / "metrics.json").write_text(json.dumps(run))
    counts, info = training_pairs(tmp_path / "model", None)
    assert counts == {"covid_fact": 4, "climate_fever": 1} and info["report"] == str(data / "report.json")


def test_error_reasons_and_the_picked_examples() -> None:
    gold = record("g", "REFUTED", "x", "denies", labels=("REFUTED",))
    missed = ClaimRecord("g", "x", "REFUTED", "toy", (EvidenceRecord("elsewhere", "nothing at all"),))
    number = record("n", "REFUTED", "Cases rose 40 percent", "Cases rose 20 percent, confirms")
    present = record("p", "SUPPORTED", "x", "confirms")
    nei = record("q", "NOT_ENOUGH_INFO", "x", "confirms")
    strict = NLIJudgeParams(rule=AggregationRule(t_sup=0.9, t_ref=0.9))
    judged = judge_claims(KeywordScorer(), PARAMS, [number, nei]) + judge_claims(
        KeywordScorer(), strict, [present]
    )
    assert [reason(j) for j in judged] == [
        "number mismatch missed",
        "non-decisive evidence taken as decisive",
        "NEI predicted though decisive passage present",
    ]
    (e2e,) = judge_claims(KeywordScorer(), PARAMS, [missed])
    assert is_wrong(e2e) and reason(e2e, gold) == "evidence not retrieved"
    found = ClaimRecord("g", "x", "REFUTED", "toy", (EvidenceRecord("g-0", "quiet"),))
    (seen,) = judge_claims(KeywordScorer(), PARAMS, [found])
    assert reason(seen, gold) == "decisive passage missed by the model"
    right = judge_claims(KeywordScorer(), PARAMS, [record("r", "SUPPORTED", "x", "confirms")])
    sets = {"a_gold": judged + right, "a_e2e": [e2e], "b_e2e": [e2e]}
    picked = pick_errors(sets, per_set=2, gold_sets=[gold])
    assert sum(picked["reason_counts"]["a_gold"].values()) == 3
    assert picked["reason_counts"]["b_e2e"] == {"evidence not retrieved": 1}
    # Two per set, and the claim shown for a_e2e is not shown again for b_e2e.
    assert [e["set"] for e in picked["examples"]] == ["a_gold", "a_gold", "a_e2e"]
    assert set(picked["examples"][0]["passages"][0]) == {"text", "SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}
