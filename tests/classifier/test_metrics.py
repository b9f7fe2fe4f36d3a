"""Metrics and threshold tuning on hand-checkable numbers."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.metrics import (
    binary_metrics,
    classify,
    expected_calibration_error,
    multiclass_metrics,
    tune_threshold,
)


def test_binary_metrics_by_hand() -> None:
    m = binary_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)


def test_threshold_maximises_f1_and_sits_between_scores() -> None:
    scores = [0.9, 0.8, 0.35, 0.3, 0.2, 0.1]
    labels = [1, 1, 1, 0, 0, 0]
    t, f1 = tune_threshold(scores, labels)
    assert f1 == pytest.approx(1.0)
    assert 0.3 < t < 0.35


def test_threshold_handles_ties_and_no_positives() -> None:
    t, f1 = tune_threshold([0.5, 0.5, 0.5], [1, 0, 0])
    assert f1 == pytest.approx(0.5) and t <= 0.5
    assert tune_threshold([0.2, 0.4], [0, 0]) == (0.5, 0.0)


def test_classify_uses_threshold_for_binary_and_argmax_otherwise() -> None:
    probs = np.array([[0.7, 0.3], [0.4, 0.6]])
    assert classify(probs, 1, 0.25).tolist() == [1, 1]
    assert classify(probs, 1, None).tolist() == [0, 1]
    three = np.array([[0.1, 0.2, 0.7]])
    assert classify(three, None, None).tolist() == [2]


def test_multiclass_macro_f1() -> None:
    m = multiclass_metrics([0, 1, 2, 2], [0, 1, 1, 2], ["a", "b", "c"])
    assert m["f1_a"] == 1.0 and m["f1_b"] == pytest.approx(2 / 3) and m["f1_c"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, [0, 1]) == pytest.approx(0.0)
    assert expected_calibration_error(probs, [1, 0]) == pytest.approx(1.0)
