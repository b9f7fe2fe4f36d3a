"""A learned claim-level aggregator: logistic regression over per-passage NLI probabilities and cheap cues.

The alternative to the hand rule of `graph.nli_rule`, fitted on dev claims only (``verifact nli tune
--aggregator learned|best``). Per claim, `claim_features` turns the calibrated per-passage
probabilities, the retrieval scores and the claim and passage texts into the values named in
`FEATURES` (see `graph.nli_features`); a multinomial logistic regression on standardised features
(balanced class weights, C chosen by cross-validation on dev) gives a probability per label. The
verdict is the most probable label and its probability, after one temperature fitted on the
out-of-fold logits, is the confidence.

`LearnedAggregator` is the whole fitted model as plain numbers (JSON in ``nli_judge.json``, never a
pickle); any pair model plugs in, as only its per-passage probabilities are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from classifier.metrics import FloatArray, IntArray, binned_calibration_error, multiclass_metrics, softmax
from graph.nli_calibration import fit_temperature
from graph.nli_features import FEATURES, claim_features
from graph.nli_rule import REFUTED, SUPPORTED, AggregationRule, Decision, claim_scores
from graph.schemas import LABELS, Label

__all__ = [
    "AGGREGATOR_NAME",
    "C_GRID",
    "FEATURES",
    "LearnedAggregator",
    "claim_features",
    "cross_validate",
    "decide_learned",
    "dev_folds",
    "fit_aggregator",
]

AGGREGATOR_NAME: Literal["logistic-v1"] = "logistic-v1"
C_GRID: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
"""Inverse regularisation strengths tried by cross-validation."""
DEFAULT_C = 1.0
"""Used when a class has too few dev claims to cross-validate."""
Folds = list[tuple[IntArray, IntArray]]


class LearnedAggregator(BaseModel):
    """A fitted logistic-regression aggregator, as plain numbers (the ``aggregator`` of nli_judge.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["logistic-v1"] = AGGREGATOR_NAME
    """Which features and model these numbers belong to."""
    features: list[str]
    """Feature names, in the order of the columns of `coef`, `mean` and `scale`."""
    classes: list[Label]
    """The labels the model knows, one per row of `coef`; any other label gets probability 0."""
    coef: list[list[float]]
    """Weights on the standardised features, one row per class."""
    intercept: list[float]
    """One bias per class."""
    mean: list[float]
    """Feature means on dev, subtracted before weighting."""
    scale: list[float]
    """Feature standard deviations on dev (1 for a constant feature), divided after."""
    C: float = Field(gt=0.0)
    """The inverse regularisation strength chosen by cross-validation."""
    temperature: float = Field(default=1.0, gt=0.0)
    """The logits are divided by it; fitted on out-of-fold dev logits, so the confidence is calibrated."""
    dev_metrics: dict[str, Any] = Field(default_factory=dict)
    """Cross-validated and training scores on dev, the C search and the calibration."""

    @model_validator(mode="after")
    def _shapes(self) -> LearnedAggregator:
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown}; this version computes {list(FEATURES)}")
        n, k = len(self.features), len(self.classes)
        if len(set(self.classes)) != k or k < 2:
            raise ValueError(f"classes must be two or three distinct labels, got {self.classes}")
        if len(self.intercept) != k or len(self.coef) != k or any(len(row) != n for row in self.coef):
            raise ValueError(f"coef must be {k} x {n} and intercept {k} long")
        if len(self.mean) != n or len(self.scale) != n or any(s <= 0 for s in self.scale):
            raise ValueError(f"mean and scale must have {n} entries, scale positive")
        return self

    def vector(self, values: dict[str, float]) -> FloatArray:
        """The feature values of one claim as this model's input row, in its feature order."""
        return np.array([values[name] for name in self.features], dtype=np.float64)

    def logits(self, x: FloatArray) -> FloatArray:
        """Logits over `classes` for feature rows, shape (claims, classes), before the temperature."""
        z = (np.asarray(x, dtype=np.float64).reshape(-1, len(self.features)) - self.mean) / self.scale
        out: FloatArray = z @ np.asarray(self.coef).T + np.asarray(self.intercept)
        return out

    def probabilities(self, x: FloatArray) -> FloatArray:
        """Calibrated probabilities over `LABELS` for feature rows, shape (claims, 3)."""
        p = softmax(self.logits(x) / self.temperature)
        out = np.zeros((len(p), len(LABELS)), dtype=np.float64)
        out[:, [LABELS.index(c) for c in self.classes]] = p
        return out

    def contributions(self, x: FloatArray, label: Label) -> dict[str, float]:
        """Each feature's weighted, standardised value towards `label`'s logit: what drove it."""
        if label not in self.classes:
            return {}
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        w = np.asarray(self.coef[self.classes.index(label)])
        return {name: float(v) for name, v in zip(self.features, z * w, strict=True)}


def dev_folds(y: IntArray, n_splits: int = 5, seed: int = 13) -> Folds:
    """Stratified folds over dev claims (one row per claim); fewer folds when a class is small.

    Raises:
        ValueError: fewer than two labels, or a label with fewer than two claims.
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(LABELS))
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        raise ValueError(f"cross-validation needs two labels with two claims each; counts {counts.tolist()}")
    splitter = StratifiedKFold(n_splits=int(min(n_splits, present.min())), shuffle=True, random_state=seed)
    return [
        (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        for a, b in splitter.split(np.zeros(len(y)), y)
    ]


def _fit_lr(x: FloatArray, y: IntArray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # lbfgs on three classes is the multinomial model that `LearnedAggregator.logits` reproduces.
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    return make_pipeline(StandardScaler(), lr).fit(x, y)


def _lr_logits(model: Any, x: FloatArray) -> FloatArray:
    """Logits over the fitted classes; a binary model's one score becomes (0, score)."""
    d = np.asarray(model.decision_function(x), dtype=np.float64)
    return np.stack([np.zeros_like(d), d], axis=1) if d.ndim == 1 else d


def _choose_c(
    x: FloatArray, y: IntArray, c_grid: Sequence[float], seed: int
) -> tuple[float, dict[str, float]]:
    """The C with the best cross-validated macro-F1 (ties: the smaller C), and every C's score."""
    try:
        folds = dev_folds(y, seed=seed)
    except ValueError:
        return DEFAULT_C, {}
    scores: dict[str, float] = {}
    for c in c_grid:
        predicted = np.zeros(len(y), dtype=np.int64)
        for train, test in folds:
            predicted[test] = _fit_lr(x[train], y[train], c).predict(x[test])
        scores[str(c)] = multiclass_metrics(y, predicted, LABELS)["macro_f1"]
    best = max(c_grid, key=lambda c: (scores[str(c)], -c))
    return float(best), scores


def _to_aggregator(model: Any, c: float, temperature: float, metrics: dict[str, Any]) -> LearnedAggregator:
    scaler, lr = model[0], model[-1]
    classes = [LABELS[int(k)] for k in lr.classes_]
    coef, intercept = np.asarray(lr.coef_), np.asarray(lr.intercept_)
    if len(classes) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
    return LearnedAggregator(
        features=list(FEATURES),
        classes=classes,
        coef=coef.tolist(),
        intercept=intercept.tolist(),
        mean=scaler.mean_.tolist(),
        scale=scaler.scale_.tolist(),
        C=c,
        temperature=temperature,
        dev_metrics=metrics,
    )


def cross_validate(
    x: FloatArray, y: IntArray, folds: Folds, c_grid: Sequence[float] = C_GRID, seed: int = 13
) -> tuple[IntArray, FloatArray]:
    """Out-of-fold labels and probabilities over `LABELS` of the whole fitting procedure.

    Nested: inside each outer fold, C is chosen by cross-validation on the training part alone, so
    the held-out claims never influence their own model. This is the score to compare with others.
    """
    predicted = np.zeros(len(y), dtype=np.int64)
    probs = np.zeros((len(y), len(LABELS)), dtype=np.float64)
    for train, test in folds:
        c, _ = _choose_c(x[train], y[train], c_grid, seed)
        model = _fit_lr(x[train], y[train], c)
        p = np.zeros((len(test), len(LABELS)), dtype=np.float64)
        p[:, model[-1].classes_] = model.predict_proba(x[test])
        probs[test] = p
        predicted[test] = p.argmax(axis=1)
    return predicted, probs


def fit_aggregator(
    x: FloatArray, y: IntArray, *, c_grid: Sequence[float] = C_GRID, seed: int = 13
) -> LearnedAggregator:
    """Fit the aggregator on dev claims: C by cross-validation, then all of dev, then the temperature.

    Args:
        x: One `FEATURES` row per dev claim (`claim_features`).
        y: Gold label ids (indices into `LABELS`).
        c_grid: Candidate values of C.
        seed: Fold shuffling seed.

    Raises:
        ValueError: fewer than two labels among the claims.
    """
    y = np.asarray(y, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError("the learned aggregator needs dev claims of at least two labels")
    c, c_scores = _choose_c(x, y, c_grid, seed)
    model = _fit_lr(x, y, c)
    known = np.asarray(model[-1].classes_, dtype=np.int64)
    position = {int(k): i for i, k in enumerate(known)}
    temperature, oof = 1.0, None
    if c_scores:
        oof = np.zeros((len(y), len(known)), dtype=np.float64)
        for train, test in dev_folds(y, seed=seed):
            oof[test] = _lr_logits(_fit_lr(x[train], y[train], c), x[test])
        temperature = fit_temperature(oof, [position[int(k)] for k in y], np.eye(len(known)))
    in_sample = multiclass_metrics(y, model.predict(x), LABELS)
    metrics: dict[str, Any] = {
        "n": len(y),
        "c_cv_macro_f1": c_scores,
        "train": {"accuracy": in_sample["accuracy"], "macro_f1": in_sample["macro_f1"]},
    }
    if oof is not None:
        hits = oof.argmax(axis=1) == np.array([position[int(k)] for k in y])
        metrics["calibration"] = {
            "temperature": temperature,
            "oof_ece_before": binned_calibration_error(softmax(oof).max(axis=1), hits),
            "oof_ece_after": binned_calibration_error(softmax(oof / temperature).max(axis=1), hits),
        }
    return _to_aggregator(model, c, temperature, metrics)


def decide_learned(
    aggregator: LearnedAggregator,
    probs: FloatArray,
    claim: str,
    texts: Sequence[str] | None,
    scores: Sequence[float | None] | None,
    rule: AggregationRule,
) -> tuple[Decision, dict[str, float]]:
    """The learned aggregator's decision on one claim, and the feature values it saw.

    Citations are the passages whose probability of the chosen label clears the rule's threshold
    for it, best first, or else the single best one; NOT_ENOUGH_INFO cites none.

    Args:
        aggregator: The fitted model.
        probs: Calibrated per-passage probabilities, shape (passages, 3) in `LABELS` order.
        claim: The claim text.
        texts: The passage texts as the pair model saw them; None when unknown (text cues are 0).
        scores: Retrieval scores per passage (None entries or None: no scores).
        rule: The hand rule, whose thresholds decide which passages are cited.
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1, len(LABELS))
    values = claim_features(p, claim, texts, scores)
    x = aggregator.vector(values)
    claim_p = aggregator.probabilities(x)[0]
    index = int(claim_p.argmax())
    label = LABELS[index]
    s, r = claim_scores(p)
    drivers = sorted(aggregator.contributions(x, label).items(), key=lambda kv: -kv[1])[:2]
    why = ", ".join(f"{name} {values[name]:.2f}" for name, _ in drivers)
    cited: tuple[int, ...] = ()
    if index in (SUPPORTED, REFUTED) and len(p):
        threshold = rule.t_sup if index == SUPPORTED else rule.t_ref
        order = [int(i) for i in np.argsort(-p[:, index], kind="stable")]
        cited = tuple(i for i in order if p[i, index] >= threshold) or (order[0],)
    reason = (
        f"learned aggregator {aggregator.name}: P({label}) {claim_p[index]:.2f}; best support {s:.2f}, "
        f"best refutation {r:.2f}; strongest cues: {why or 'none'}"
    )
    return Decision(label, float(claim_p[index]), s, r, cited, reason), values
