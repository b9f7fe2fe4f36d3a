"""Temperature scaling and label maps: fitted temperatures lower the NLL, and labels map as configured."""

from __future__ import annotations

import numpy as np
import pytest

from graph.errors import VerifierError
from graph.nli_calibration import (
    binned_calibration_error,
    expected_calibration_error,
    fit_temperature,
    label_matrix,
    negative_log_likelihood,
    verdict_probabilities,
)

IDENTITY = np.eye(3)


def synthetic(
    scale: float, accuracy: float = 0.7, n: int = 600, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Logits that pick the right label `accuracy` of the time, with a spread of `scale`."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    right = rng.random(n) < accuracy
    picked = np.where(right, labels, (labels + rng.integers(1, 3, size=n)) % 3)
    logits = rng.normal(0.0, 0.3, size=(n, 3))
    logits[np.arange(n), picked] += scale
    return logits, labels


def test_an_overconfident_model_gets_a_temperature_above_one_and_a_lower_nll() -> None:
    logits, labels = synthetic(scale=8.0)
    t = fit_temperature(logits, labels)
    assert t > 2.0
    assert negative_log_likelihood(logits, labels, IDENTITY, t) < negative_log_likelihood(
        logits, labels, IDENTITY
    )
    before = expected_calibration_error(verdict_probabilities(logits, IDENTITY), labels)
    after = expected_calibration_error(verdict_probabilities(logits, IDENTITY, t), labels)
    assert after < before / 2


def test_an_underconfident_model_gets_a_temperature_below_one() -> None:
    logits, labels = synthetic(scale=0.5, accuracy=0.95)
    t = fit_temperature(logits, labels)
    assert t < 1.0
    assert negative_log_likelihood(logits, labels, IDENTITY, t) < negative_log_likelihood(
        logits, labels, IDENTITY
    )


def test_the_fit_is_the_minimum_of_the_nll() -> None:
    logits, labels = synthetic(scale=5.0, seed=3)
    t = fit_temperature(logits, labels)
    best = negative_log_likelihood(logits, labels, IDENTITY, t)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert best <= negative_log_likelihood(logits, labels, IDENTITY, other) + 1e-9


def test_temperature_never_changes_the_preferred_label() -> None:
    logits, _ = synthetic(scale=4.0)
    assert (verdict_probabilities(logits, IDENTITY, 7.0).argmax(1) == logits.argmax(1)).all()
    assert fit_temperature(np.zeros((0, 3)), []) == 1.0


def test_nli_label_names_map_to_ours_case_insensitively() -> None:
    m = label_matrix(["ENTAILMENT", "neutral", "Contradiction"])
    assert m.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    logits = np.log(np.array([[0.7, 0.2, 0.1]]))
    assert verdict_probabilities(logits, m)[0].tolist() == pytest.approx([0.7, 0.1, 0.2])


def test_a_custom_map_can_merge_labels_and_leave_one_of_ours_empty() -> None:
    m = label_matrix(
        ["supported", "unsupported", "partly"], {"unsupported": "NOT_ENOUGH_INFO", "partly": "SUPPORTED"}
    )
    probs = verdict_probabilities(np.log(np.array([[0.5, 0.2, 0.3]])), m)
    assert probs[0].tolist() == pytest.approx([0.8, 0.0, 0.2])


def test_unmapped_labels_are_refused_with_a_hint() -> None:
    with pytest.raises(VerifierError, match="label_map"):
        label_matrix(["LABEL_0", "LABEL_1"])
    with pytest.raises(VerifierError, match="SUPPORTED"):
        label_matrix(["neutral", "contradiction"])


def test_calibration_error_of_stated_confidences() -> None:
    assert binned_calibration_error([0.9, 0.9], [True, True]) == pytest.approx(0.1)
    assert binned_calibration_error([0.0, 1.0], [False, True]) == pytest.approx(0.0)
    assert binned_calibration_error([], []) == 0.0
