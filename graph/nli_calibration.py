"""Temperature scaling of a pair model's logits, and mapping its labels onto ours.

One temperature T divides every logit before the softmax: it changes how sure the model sounds,
never which label it prefers. T is fitted on dev pairs by minimising the negative log-likelihood of
our labels; with a one-to-one label map that NLL is convex in 1/T, and a coarse grid followed by a
golden-section search finds its minimum without any optimiser state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from classifier.metrics import (
    FloatArray,
    IntArray,
    binned_calibration_error,
    expected_calibration_error,
    softmax,
)
from graph.errors import VerifierError
from graph.schemas import LABELS, Label

__all__ = [
    "DEFAULT_LABEL_MAP",
    "apply_temperature",
    "binned_calibration_error",
    "expected_calibration_error",
    "fit_temperature",
    "label_matrix",
    "negative_log_likelihood",
    "verdict_probabilities",
]

DEFAULT_LABEL_MAP: dict[str, Label] = {
    "supported": "SUPPORTED",
    "supports": "SUPPORTED",
    "entailment": "SUPPORTED",
    "refuted": "REFUTED",
    "refutes": "REFUTED",
    "contradiction": "REFUTED",
    "not_enough_info": "NOT_ENOUGH_INFO",
    "not enough info": "NOT_ENOUGH_INFO",
    "nei": "NOT_ENOUGH_INFO",
    "neutral": "NOT_ENOUGH_INFO",
}
"""Model label names (compared casefolded) that mean one of ours: our own and the usual NLI ones."""
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
_PROB_FLOOR = 1e-12


def label_matrix(model_labels: Sequence[str], label_map: Mapping[str, Label] | None = None) -> FloatArray:
    """A (model labels x 3) 0/1 matrix sending each model label to one of `LABELS`.

    Several model labels may map to one of ours (their probabilities add up); one of ours may have
    none (its probability is 0, e.g. REFUTED for a binary supported/unsupported model).

    Args:
        model_labels: The model's label names in id order.
        label_map: Extra or overriding names -> our label, compared casefolded, on top of
            `DEFAULT_LABEL_MAP`.

    Raises:
        VerifierError: a model label maps to nothing, or no label maps to SUPPORTED.
    """
    names = {k.casefold(): v for k, v in DEFAULT_LABEL_MAP.items()}
    names.update({k.casefold(): v for k, v in (label_map or {}).items()})
    unknown = [m for m in model_labels if m.casefold() not in names]
    if unknown:
        raise VerifierError(
            f"the model's labels {unknown} have no meaning here; map each to one of {list(LABELS)} "
            'with label_map, e.g. {"entailment": "SUPPORTED", "contradiction": "REFUTED", '
            '"neutral": "NOT_ENOUGH_INFO"}'
        )
    matrix = np.zeros((len(model_labels), len(LABELS)), dtype=np.float64)
    for i, m in enumerate(model_labels):
        matrix[i, LABELS.index(names[m.casefold()])] = 1.0
    if not matrix[:, 0].any():
        raise VerifierError(f"none of the model's labels {list(model_labels)} maps to SUPPORTED")
    return matrix


def apply_temperature(logits: FloatArray, temperature: float) -> FloatArray:
    """Softmax of ``logits / temperature``, row-wise."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature)


def verdict_probabilities(logits: FloatArray, matrix: FloatArray, temperature: float = 1.0) -> FloatArray:
    """Calibrated probabilities over `LABELS`, shape (n, 3), from model logits (or log-probabilities)."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1, matrix.shape[0])
    out: FloatArray = apply_temperature(logits, temperature) @ matrix
    return out


def negative_log_likelihood(
    logits: FloatArray, labels: Sequence[int] | IntArray, matrix: FloatArray, temperature: float = 1.0
) -> float:
    """Mean NLL of our label ids under the calibrated, mapped probabilities."""
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        return 0.0
    p = verdict_probabilities(logits, matrix, temperature)[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.maximum(p, _PROB_FLOOR))))


def fit_temperature(
    logits: FloatArray, labels: Sequence[int] | IntArray, matrix: FloatArray | None = None
) -> float:
    """The temperature in [0.05, 20] that minimises the NLL of `labels` (our label ids) on these pairs.

    Args:
        logits: Model logits or log-probabilities, shape (n, model labels).
        labels: Our label id of each pair (index into `LABELS`).
        matrix: The model-to-our label map from `label_matrix`; None for a model whose labels are
            ours, in `LABELS` order.
    """
    z = np.asarray(logits, dtype=np.float64)
    m = np.eye(len(LABELS)) if matrix is None else matrix
    if len(z) == 0:
        return 1.0

    def loss(log_t: float) -> float:
        return negative_log_likelihood(z, labels, m, math.exp(log_t))

    lo, hi = math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)
    grid = np.linspace(lo, hi, 41)
    values = [loss(float(g)) for g in grid]
    k = int(np.argmin(values))
    a, b = float(grid[max(k - 1, 0)]), float(grid[min(k + 1, len(grid) - 1)])
    # Golden-section search inside the grid cell pair around the best grid point.
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(40):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    best = min((values[k], float(grid[k])), (fc, c), (fd, d))
    return math.exp(best[1])
