"""From per-passage NLI probabilities to one claim verdict: the rule, and tuning it on dev claims.

The rule ("max-threshold-margin"), on calibrated probabilities with columns in `LABELS` order:

- ``support`` is the highest SUPPORTED probability of any passage, ``refute`` the highest REFUTED one;
- SUPPORTED when ``support >= t_sup`` and ``support - refute >= margin``;
- REFUTED when ``refute >= t_ref`` and ``refute - support >= margin``;
- otherwise NOT_ENOUGH_INFO: nothing clears its threshold, or support and refutation are both strong
  and within ``margin`` of each other (conflicting evidence).

One decisive passage is enough, as in FEVER: the other passages of a claim are usually about
something else, so averaging would drown the one that matters. The confidence is the claim-level
probability of the chosen label: ``support`` or ``refute``, or ``1 - max(support, refute)`` for
NOT_ENOUGH_INFO (how likely it is that no passage decides). The citations are the passages whose
probability of the chosen label clears its threshold, best first; NOT_ENOUGH_INFO cites none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from classifier.metrics import FloatArray, IntArray, multiclass_metrics
from graph.schemas import LABELS, Label

SUPPORTED, REFUTED, NOT_ENOUGH_INFO = 0, 1, 2
"""Column indices of `LABELS` in probability arrays."""
LABEL_INDEX: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
RULE_NAME: Literal["max-threshold-margin"] = "max-threshold-margin"
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""Thresholds tried by `tune_aggregation`: 0.05 to 0.95 by 0.05."""
MARGIN_GRID: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
"""Margins tried by `tune_aggregation`."""


class AggregationRule(BaseModel):
    """The parameters of the claim-level rule (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["max-threshold-margin"] = RULE_NAME
    """The rule's name, so a settings file says which rule its numbers belong to."""
    t_sup: float = Field(default=0.5, ge=0.0, le=1.0)
    """The SUPPORTED probability a passage needs for a SUPPORTED verdict."""
    t_ref: float = Field(default=0.5, ge=0.0, le=1.0)
    """The REFUTED probability a passage needs for a REFUTED verdict."""
    margin: float = Field(default=0.0, ge=0.0, le=1.0)
    """How far the winning side must lead the other; closer calls are NOT_ENOUGH_INFO."""


@dataclass(frozen=True)
class Decision:
    """The rule's verdict on one claim."""

    label: Label
    confidence: float
    """The claim-level probability of `label` (see the module docstring)."""
    support: float
    """The highest SUPPORTED probability of any passage (0 without passages)."""
    refute: float
    """The highest REFUTED probability of any passage (0 without passages)."""
    cited: tuple[int, ...]
    """Indices of the passages that drove the decision, best first."""
    reason: str
    """The decision in words."""


def claim_scores(probs: FloatArray) -> tuple[float, float]:
    """(support, refute): the highest SUPPORTED and REFUTED probabilities over a claim's passages."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1, len(LABELS))
    if len(p) == 0:
        return 0.0, 0.0
    return float(p[:, SUPPORTED].max()), float(p[:, REFUTED].max())


def decide_many(support: FloatArray, refute: FloatArray, rule: AggregationRule) -> IntArray:
    """The rule's label index for many claims at once, from their support and refute scores."""
    s = np.asarray(support, dtype=np.float64)
    r = np.asarray(refute, dtype=np.float64)
    supported = (s >= rule.t_sup) & (s - r >= rule.margin)
    refuted = (r >= rule.t_ref) & (r - s >= rule.margin)
    # Both can hold only when support == refute with margin 0: a tie is conflicting evidence.
    out = np.full(s.shape, NOT_ENOUGH_INFO, dtype=np.int64)
    out[supported & ~refuted] = SUPPORTED
    out[refuted & ~supported] = REFUTED
    return out


def _side(name: str, best: float, threshold: float, other_name: str, other: float, margin: float) -> str:
    """Why one side did not win: below its threshold, or over it without the lead the margin asks."""
    if best < threshold:
        return f"best {name} {best:.2f} is below {threshold:.2f}"
    return (
        f"best {name} {best:.2f} clears {threshold:.2f} but does not lead {other_name} "
        f"({other:.2f}) by {margin:.2f}"
    )


def aggregate(probs: FloatArray, rule: AggregationRule) -> Decision:
    """Apply the rule to one claim's per-passage probabilities, shape (passages, 3) in `LABELS` order."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1, len(LABELS))
    s, r = claim_scores(p)
    index = int(decide_many(np.array([s]), np.array([r]), rule)[0])
    label = LABELS[index]
    if index == NOT_ENOUGH_INFO:
        if s >= rule.t_sup and r >= rule.t_ref:
            reason = (
                f"conflicting evidence: support {s:.2f} and refutation {r:.2f} "
                f"within margin {rule.margin:.2f}"
            )
        else:
            reason = (
                f"no passage decides: {_side('support', s, rule.t_sup, 'refutation', r, rule.margin)}; "
                f"{_side('refutation', r, rule.t_ref, 'support', s, rule.margin)}"
            )
        return Decision(label, 1.0 - max(s, r), s, r, (), reason)
    threshold = rule.t_sup if index == SUPPORTED else rule.t_ref
    column = p[:, index]
    cited = tuple(int(i) for i in np.argsort(-column, kind="stable") if column[i] >= threshold)
    best, other = (s, r) if index == SUPPORTED else (r, s)
    verb = "support" if index == SUPPORTED else "refute"
    subject = f"1 passage {verb}s" if len(cited) == 1 else f"{len(cited)} passages {verb}"
    reason = (
        f"{subject} the claim: best {best:.2f} >= {threshold:.2f}, "
        f"leading the other side ({other:.2f}) by at least {rule.margin:.2f}"
    )
    return Decision(label, best, s, r, cited, reason)


@dataclass(frozen=True)
class TuningResult:
    """The rule chosen on dev claims and how it scored there."""

    rule: AggregationRule
    macro_f1: float
    accuracy: float
    n_claims: int
    """Claims scored (those with a label in `LABELS`; DISPUTED ones are left out)."""
    n_skipped: int
    """Claims left out for a label outside `LABELS`."""


def tune_aggregation(
    claims: Sequence[tuple[FloatArray, str]],
    thresholds: Sequence[float] = THRESHOLD_GRID,
    margins: Sequence[float] = MARGIN_GRID,
) -> TuningResult:
    """Pick the rule parameters that maximise claim-level macro-F1 over `LABELS` on these claims.

    Give it dev claims only. Ties go to the higher accuracy, then to the first in grid order (lowest
    thresholds, then smallest margin).

    Args:
        claims: Per claim, its calibrated per-passage probabilities and its gold label; claims whose
            label is not in `LABELS` (Climate-FEVER's DISPUTED) are skipped and counted.
        thresholds: Candidate values of `t_sup` and of `t_ref`.
        margins: Candidate margins.
    """
    kept = [(p, label) for p, label in claims if label in LABELS]
    if not kept:
        raise ValueError("no claims with a label in SUPPORTED/REFUTED/NOT_ENOUGH_INFO to tune on")
    scores = np.array([claim_scores(p) for p, _ in kept], dtype=np.float64)
    gold = np.array([LABEL_INDEX[label] for _, label in kept], dtype=np.int64)
    best: tuple[float, float, AggregationRule] | None = None
    for t_sup in thresholds:
        for t_ref in thresholds:
            for margin in margins:
                rule = AggregationRule(t_sup=t_sup, t_ref=t_ref, margin=margin)
                metrics = multiclass_metrics(gold, decide_many(scores[:, 0], scores[:, 1], rule), LABELS)
                key = (metrics["macro_f1"], metrics["accuracy"])
                if best is None or key > best[:2]:
                    best = (key[0], key[1], rule)
    assert best is not None
    return TuningResult(best[2], best[0], best[1], len(kept), len(claims) - len(kept))
