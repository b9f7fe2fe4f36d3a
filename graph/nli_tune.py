"""Fitting the NLI judge on dev (temperature on pairs, rule and aggregator on claims) and scoring it.

`tune_judge` is the only place any of them is chosen, and it reads dev files only; `evaluate_claims`
scores a fitted judge on any claim file (test claims for benchmarks) with the metrics the verdict
benchmark reports.

Rule or learned aggregator (``aggregator="best"``): both are scored by the same stratified
cross-validation over the dev claims, each refitted on the training folds alone (the rule's grid
search, the logistic regression's C search nested inside), and the one with the higher
out-of-fold macro-F1 is kept, refitted on all dev claims; a tie keeps the rule. The rule's score on
the very claims it was tuned on is reported too, but it is a training score and not compared.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from classifier.errors import DataError
from classifier.metrics import FloatArray, IntArray, multiclass_metrics
from graph.nli_aggregator import LearnedAggregator, cross_validate, dev_folds, fit_aggregator
from graph.nli_calibration import (
    binned_calibration_error,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    verdict_probabilities,
)
from graph.nli_features import feature_matrix
from graph.nli_judge import NLIJudgeParams, decide_claim
from graph.nli_model import PairScorer
from graph.nli_records import ClaimRecord, evidence_text, read_claims
from graph.nli_rule import LABEL_INDEX, aggregate, tune_aggregation
from graph.schemas import LABELS

AggregatorChoice = Literal["rule", "learned", "best"]


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


def claim_texts(claims: Sequence[ClaimRecord]) -> list[list[str]]:
    """Every claim's passage texts as the pair model sees them."""
    return [[evidence_text(e.title, e.text) for e in c.evidences] for c in claims]


def compare_aggregators(
    probs: Sequence[FloatArray], claims: Sequence[ClaimRecord], seed: int = 13, **grid: Any
) -> tuple[LearnedAggregator, dict[str, Any]]:
    """Cross-validate the rule and the learned aggregator on the same dev folds; fit the latter on all.

    Returns:
        The learned aggregator fitted on every scored claim, and the comparison: the folds, per
        aggregator its out-of-fold accuracy, macro-F1 and ECE, and the winner (``best``).
    """
    kept = [i for i, c in enumerate(claims) if c.claim_label in LABEL_INDEX]
    y = np.array([LABEL_INDEX[claims[i].claim_label] for i in kept], dtype=np.int64)
    texts = claim_texts([claims[i] for i in kept])
    x = feature_matrix([(probs[i], claims[i].claim, t, None) for i, t in zip(kept, texts, strict=True)])
    folds = dev_folds(y, seed=seed)
    rule_pred = np.zeros(len(y), dtype=np.int64)
    rule_conf = np.zeros(len(y), dtype=np.float64)
    for train, test in folds:
        rule = tune_aggregation([(probs[kept[i]], claims[kept[i]].claim_label) for i in train], **grid).rule
        for i in test:
            decision = aggregate(probs[kept[i]], rule)
            rule_pred[i], rule_conf[i] = LABEL_INDEX[decision.label], decision.confidence
    learned_pred, learned_probs = cross_validate(x, y, folds, seed=seed)
    aggregator = fit_aggregator(x, y, seed=seed)
    cv = {
        "rule": _cv_scores(y, rule_pred, rule_conf),
        "learned": _cv_scores(y, learned_pred, learned_probs.max(axis=1)),
    }
    winner = "learned" if cv["learned"]["macro_f1"] > cv["rule"]["macro_f1"] else "rule"
    info = {"folds": len(folds), "seed": seed, "n": len(y), "cross_validated": cv, "best": winner}
    aggregator = aggregator.model_copy(
        update={"dev_metrics": {**aggregator.dev_metrics, "cross_validated": cv["learned"]}}
    )
    return aggregator, info


def _cv_scores(y: IntArray, predicted: IntArray, confidence: FloatArray) -> dict[str, float]:
    m = multiclass_metrics(y, predicted, LABELS)
    ece = binned_calibration_error(confidence, predicted == y)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ece": ece}


def tune_judge(
    scorer: PairScorer,
    pairs_file: str | Path,
    claims_files: Sequence[str | Path],
    aggregator: AggregatorChoice = "best",
    **grid: Any,
) -> NLIJudgeParams:
    """Fit the temperature on dev pairs, then the rule and the learned aggregator on dev claims.

    Args:
        scorer: The pair model.
        pairs_file: Dev pairs (``dev.tsv``), for the temperature.
        claims_files: Dev claim files (``cf_claims_dev.jsonl``, ``covid_claims_dev.jsonl``), for the rule
            and the aggregator.
        aggregator: "rule": the hand rule decides; "learned": the logistic-regression aggregator;
            "best": whichever has the higher cross-validated dev macro-F1 (see the module docstring).
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
    ruled = NLIJudgeParams(temperature=temperature, rule=tuned.rule)
    learned: LearnedAggregator | None = None
    comparison: dict[str, Any] = {"requested": aggregator, "chosen": "rule"}
    if aggregator != "rule":
        try:
            fitted, info = compare_aggregators(probs, claims, **grid)
        except ValueError as exc:
            if aggregator == "learned":
                raise
            # "best" on dev claims too few to cross-validate: the rule is all that can be judged.
            fitted, info = None, {"skipped": str(exc)}
        comparison.update(info)
        if fitted is not None and (aggregator == "learned" or info["best"] == "learned"):
            learned, comparison["chosen"] = fitted, "learned"
    return NLIJudgeParams(
        temperature=temperature,
        rule=tuned.rule,
        aggregator=learned,
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
            "claims": _claim_metrics(probs, claims, ruled),
            "aggregation": comparison,
        },
    )


def evaluate_claims(
    scorer: PairScorer, params: NLIJudgeParams, claims: Sequence[ClaimRecord]
) -> dict[str, Any]:
    """Claim-level accuracy, macro-F1, per-class F1, ECE and majority-class accuracy of the judge.

    Claims labelled outside `LABELS` (DISPUTED) are left out of the scores; what the judge says about
    them is counted under ``other_labels``. The learned aggregator decides when `params` holds one.
    """
    probs = [
        verdict_probabilities(lp, scorer.matrix, params.temperature) for lp in score_claims(scorer, claims)
    ]
    return _claim_metrics(probs, claims, params)


def _claim_metrics(
    probs: Sequence[FloatArray], claims: Sequence[ClaimRecord], params: NLIJudgeParams
) -> dict[str, Any]:
    texts = claim_texts(claims)
    decisions = [decide_claim(params, p, c.claim, t)[0] for p, c, t in zip(probs, claims, texts, strict=True)]
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
