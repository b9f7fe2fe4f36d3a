"""Fitting the NLI judge on dev (temperature on pairs, rule on claims) and scoring it on claim files.

`tune_judge` is the only place either is chosen, and it reads dev files only; `evaluate_claims`
scores a fitted judge on any claim file (test claims for benchmarks) with the metrics the verdict
benchmark reports.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier.errors import DataError
from classifier.metrics import FloatArray, multiclass_metrics
from graph.nli_calibration import (
    binned_calibration_error,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    verdict_probabilities,
)
from graph.nli_judge import NLIJudgeParams
from graph.nli_model import PairScorer
from graph.nli_records import ClaimRecord, evidence_text, read_claims
from graph.nli_rule import LABEL_INDEX, AggregationRule, aggregate, tune_aggregation
from graph.schemas import LABELS


def read_pairs(path: str | Path) -> tuple[list[str], list[str], list[int]]:
    """Claims, evidence texts and our label ids of a pair TSV written by `graph.nli_data`."""
    from classifier.data import read_rows

    rows = read_rows(Path(path))
    unknown = sorted({str(r.get("label")) for r in rows} - set(LABELS))
    if unknown:
        raise DataError(f"{path}: labels {unknown} are not among {list(LABELS)}")
    return (
        [str(r["claim"]) for r in rows],
        [str(r["evidence"]) for r in rows],
        [LABEL_INDEX[str(r["label"])] for r in rows],
    )


def score_claims(scorer: PairScorer, claims: Sequence[ClaimRecord]) -> list[FloatArray]:
    """The model's log-probabilities for every evidence passage of every claim, in one batched call."""
    firsts = [c.claim for c in claims for _ in c.evidences]
    texts = [evidence_text(e.title, e.text) for c in claims for e in c.evidences]
    logits = scorer.log_probs(firsts, texts)
    bounds = np.cumsum([0] + [len(c.evidences) for c in claims])
    return [logits[a:b] for a, b in itertools.pairwise(bounds)]


def tune_judge(
    scorer: PairScorer,
    pairs_file: str | Path,
    claims_files: Sequence[str | Path],
    **grid: Any,
) -> NLIJudgeParams:
    """Fit the temperature on dev pairs, then the rule on dev claims with calibrated probabilities.

    Args:
        scorer: The pair model.
        pairs_file: Dev pairs (``dev.tsv``), for the temperature.
        claims_files: Dev claim files (``cf_claims_dev.jsonl``, ``covid_claims_dev.jsonl``), for the rule.
        grid: ``thresholds`` and ``margins`` for `tune_aggregation`, to narrow or widen its search.
    """
    claims_text, evidences, labels = read_pairs(pairs_file)
    logits = scorer.log_probs(claims_text, evidences)
    m = scorer.matrix
    temperature = fit_temperature(logits, labels, m)
    before, after = verdict_probabilities(logits, m, 1.0), verdict_probabilities(logits, m, temperature)

    claims = [c for f in claims_files for c in read_claims(f)]
    probs = [verdict_probabilities(lp, m, temperature) for lp in score_claims(scorer, claims)]
    tuned = tune_aggregation([(p, c.claim_label) for p, c in zip(probs, claims, strict=True)], **grid)
    dev_claims = _claim_metrics(probs, claims, tuned.rule)
    return NLIJudgeParams(
        temperature=temperature,
        rule=tuned.rule,
        tuned=True,
        model_hash=str(scorer.describe().get("model_hash", "")),
        fitted_on={
            "pairs_file": str(pairs_file),
            "n_pairs": len(labels),
            "claims_files": [str(f) for f in claims_files],
            "n_claims": tuned.n_claims,
            "n_claims_skipped": tuned.n_skipped,
        },
        dev_metrics={
            "pairs": {
                "nll_before": negative_log_likelihood(logits, labels, m, 1.0),
                "nll_after": negative_log_likelihood(logits, labels, m, temperature),
                "ece_before": expected_calibration_error(before, labels),
                "ece_after": expected_calibration_error(after, labels),
                "accuracy": float(np.mean(after.argmax(axis=1) == np.asarray(labels))) if labels else 0.0,
            },
            "claims": dev_claims,
        },
    )


def evaluate_claims(
    scorer: PairScorer, params: NLIJudgeParams, claims: Sequence[ClaimRecord]
) -> dict[str, Any]:
    """Claim-level accuracy, macro-F1, per-class F1, ECE and majority-class accuracy of the judge.

    Claims labelled outside `LABELS` (DISPUTED) are left out of the scores; what the judge says about
    them is counted under ``other_labels``.
    """
    probs = [
        verdict_probabilities(lp, scorer.matrix, params.temperature) for lp in score_claims(scorer, claims)
    ]
    return _claim_metrics(probs, claims, params.rule)


def _claim_metrics(
    probs: Sequence[FloatArray], claims: Sequence[ClaimRecord], rule: AggregationRule
) -> dict[str, Any]:
    decisions = [aggregate(p, rule) for p in probs]
    scored = [(d, c) for d, c in zip(decisions, claims, strict=True) if c.claim_label in LABEL_INDEX]
    other: dict[str, Counter[str]] = {}
    for d, c in zip(decisions, claims, strict=True):
        if c.claim_label not in LABEL_INDEX:
            other.setdefault(c.claim_label, Counter())[d.label] += 1
    gold = np.array([LABEL_INDEX[c.claim_label] for _, c in scored], dtype=np.int64)
    predicted = np.array([LABEL_INDEX[d.label] for d, _ in scored], dtype=np.int64)
    metrics: dict[str, Any] = {"n": len(scored), **multiclass_metrics(gold, predicted, LABELS)}
    metrics["ece"] = binned_calibration_error([d.confidence for d, _ in scored], predicted == gold)
    counts = Counter(gold.tolist())
    metrics["majority_accuracy"] = max(counts.values()) / len(gold) if len(gold) else 0.0
    metrics["predicted"] = {label: int(np.sum(predicted == i)) for i, label in enumerate(LABELS)}
    metrics["other_labels"] = {k: dict(v) for k, v in sorted(other.items())}
    return metrics
