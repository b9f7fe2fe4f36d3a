"""Metrics for binary and multi-class runs, decision-threshold tuning and calibration error."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def softmax(logits: NDArray[Any]) -> FloatArray:
    """Row-wise softmax, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return out


def binary_metrics(labels: Sequence[int] | IntArray, predicted: Sequence[int] | IntArray) -> dict[str, float]:
    """F1, precision and recall of class 1, plus accuracy."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(predicted, dtype=np.int64)
    tp = float(np.sum((p == 1) & (y == 1)))
    fp = float(np.sum((p == 1) & (y == 0)))
    fn = float(np.sum((p == 0) & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float(np.mean(p == y)) if len(y) else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "accuracy": accuracy}


def multiclass_metrics(
    labels: Sequence[int] | IntArray, predicted: Sequence[int] | IntArray, label_names: Sequence[str]
) -> dict[str, float]:
    """Accuracy, macro-F1 (reported as ``f1``) and one F1 per class."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(predicted, dtype=np.int64)
    out: dict[str, float] = {"accuracy": float(np.mean(p == y)) if len(y) else 0.0}
    f1s = []
    for k, name in enumerate(label_names):
        per = binary_metrics((y == k).astype(np.int64), (p == k).astype(np.int64))
        out[f"f1_{name}"] = per["f1"]
        f1s.append(per["f1"])
    out["f1"] = float(np.mean(f1s))
    out["macro_f1"] = out["f1"]
    return out


def classify(probs: FloatArray, positive_index: int | None, threshold: float | None) -> IntArray:
    """Label ids from probabilities: a threshold on the positive class, else the argmax."""
    if positive_index is None or threshold is None:
        return np.asarray(np.argmax(probs, axis=-1), dtype=np.int64)
    positive = probs[:, positive_index] >= threshold
    negative_index = 1 - positive_index
    return np.where(positive, positive_index, negative_index).astype(np.int64)


def evaluate_probs(
    probs: FloatArray,
    labels: Sequence[int] | IntArray,
    label_names: Sequence[str],
    positive_index: int | None,
    threshold: float | None,
) -> dict[str, float]:
    """Metrics of ``probs`` against ``labels``; binary tasks score the positive class."""
    predicted = classify(probs, positive_index, threshold)
    if positive_index is None:
        return multiclass_metrics(labels, predicted, label_names)
    y = np.asarray(labels, dtype=np.int64)
    return binary_metrics(
        (y == positive_index).astype(np.int64), (predicted == positive_index).astype(np.int64)
    )


def tune_threshold(
    scores: Sequence[float] | FloatArray, is_positive: Sequence[int] | IntArray
) -> tuple[float, float]:
    """Return the threshold that maximises F1 on these scores, and that F1.

    The threshold sits halfway between the lowest accepted score and the next one below it,
    so a score a hair under the chosen one on new data is not flipped by rounding.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_positive, dtype=np.int64)
    if len(s) == 0 or y.sum() == 0:
        return 0.5, 0.0
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    # Only the last position of each run of equal scores is a valid cut.
    last_of_run = np.append(s_sorted[1:] != s_sorted[:-1], True)
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(last_of_run, f1, -1.0)
    best = int(np.argmax(f1))
    lower = s_sorted[best + 1] if best + 1 < len(s_sorted) else 0.0
    threshold = float((s_sorted[best] + lower) / 2)
    return threshold, float(f1[best])


def expected_calibration_error(probs: FloatArray, labels: Sequence[int] | IntArray, bins: int = 15) -> float:
    """ECE of the top-class confidence over equal-width bins."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        return 0.0
    return binned_calibration_error(p.max(axis=-1), p.argmax(axis=-1) == y, bins)


def binned_calibration_error(
    confidence: Sequence[float] | FloatArray, correct: Sequence[bool] | NDArray[np.bool_], bins: int = 15
) -> float:
    """ECE of any stated confidence against whether the decision it belongs to was right.

    For decisions that are not the argmax of a probability vector (a thresholded verdict, say).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if len(conf) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        # The first bin is closed below, so a confidence of exactly 0 is counted too.
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            ece += float(mask.mean()) * abs(float(hit[mask].mean()) - float(conf[mask].mean()))
    return ece


def confusion(
    labels: Sequence[int] | IntArray, predicted: Sequence[int] | IntArray, n_classes: int
) -> IntArray:
    """Confusion counts: rows are true labels, columns predicted labels."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(np.asarray(labels), np.asarray(predicted), strict=True):
        m[int(t), int(p)] += 1
    return m
