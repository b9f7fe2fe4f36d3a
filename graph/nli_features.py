"""Per-claim features for the learned aggregator: NLI probability statistics and claim/evidence cues.

All are cheap: statistics of the calibrated per-passage probabilities the pair model already gave,
retrieval scores, and surface consistency cues between the claim and the passage that supports it
best and the one that refutes it best. The cues target what a small cross-encoder misses: a number
or date in the claim that the evidence states differently, and a negation on one side only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from classifier.metrics import FloatArray
from graph.counterfactual import words
from graph.nli_rule import NOT_ENOUGH_INFO, REFUTED, SUPPORTED
from graph.schemas import LABELS

CUES: tuple[str, ...] = ("number_mismatch", "date_mismatch", "negation_mismatch", "overlap")
"""The claim/evidence consistency cues of `consistency`, in order."""
FEATURES: tuple[str, ...] = (
    *(f"{col}_{stat}" for col in ("sup", "ref", "nei") for stat in ("max", "mean", "second")),
    "top_share",
    "log_passages",
    "score_max",
    "score_mean",
    *(f"{side}_{cue}" for side in ("sup", "ref") for cue in CUES),
)
"""Every feature `claim_features` computes, in a fixed order.

- ``{sup,ref,nei}_{max,mean,second}``: the highest, mean and second-highest probability of the label
  over the claim's passages (0 where there are too few passages);
- ``top_share``: the decisive mass (SUPPORTED + REFUTED) of the most decisive passage over that of
  all passages: near 1 when one passage carries the claim, 1/n when all say the same;
- ``log_passages``: log(1 + passages);
- ``score_max``, ``score_mean``: the retrieval scores (0 without them: gold-evidence claim files
  have none, so an aggregator fitted on those gives them weight 0);
- ``{sup,ref}_{cue}``: the cues of `consistency` between the claim and the passage with the highest
  SUPPORTED (``sup_``) or REFUTED (``ref_``) probability.
"""

_TOKEN = re.compile(r"\w+(?=n['’]t\b)|n['’]t\b|\w+")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\w)")
_NEGATORS = frozenset({"not", "no", "never", "n't", "n’t", "cannot", "none", "nor", "neither", "nothing"})
# "may" is left out: in claims it is mostly the modal.
_MONTHS = frozenset(
    words("january february march april june july august september october november december")
)
_STOP = frozenset(
    words(
        "the and for are was were has have had that this with from its their his her our they them than "
        "into onto over under about after before been being will would can could may might also more "
        "most some such what which who whom whose when where while there these those then not"
    )
)


def _numbers(text: str) -> tuple[set[float], set[str]]:
    """The numbers of a text as values, and the years among them (four bare digits, 1800 to 2100)."""
    values: set[float] = set()
    years: set[str] = set()
    for m in _NUMBER.finditer(text):
        digits, decimals = m.group(1), m.group(2)
        values.add(float(digits.replace(",", "") + (decimals or "")))
        if not decimals and len(digits) == 4 and 1800 <= int(digits) <= 2100:
            years.add(digits)
    return values, years


def consistency(claim: str, evidence: str) -> dict[str, float]:
    """Surface cues between a claim and one evidence text, each in [0, 1] (see `CUES`).

    - ``number_mismatch``: 1 when a number of the claim (not a year) is absent from the evidence;
    - ``date_mismatch``: 1 when a year or month of the claim is absent from the evidence while the
      evidence names another one (it dates the event differently, rather than not at all);
    - ``negation_mismatch``: 1 when exactly one of the two contains a negation;
    - ``overlap``: the share of the claim's content words (3+ letters, not stop words) found in the
      evidence.
    """
    c_tokens, e_tokens = _TOKEN.findall(claim.lower()), _TOKEN.findall(evidence.lower())
    (c_numbers, c_years), (e_numbers, e_years) = _numbers(claim), _numbers(evidence)
    c_dates = c_years | {t for t in c_tokens if t in _MONTHS}
    e_dates = e_years | {t for t in e_tokens if t in _MONTHS}
    # Years are dates, not quantities: they count under date_mismatch only.
    plain = {v for v in c_numbers if not (v.is_integer() and str(int(v)) in c_years)}
    content = {t for t in c_tokens if len(t) >= 3 and t not in _STOP}
    c_neg, e_neg = any(t in _NEGATORS for t in c_tokens), any(t in _NEGATORS for t in e_tokens)
    return {
        "number_mismatch": float(bool(plain - e_numbers)),
        "date_mismatch": float(bool(c_dates - e_dates) and bool(e_dates - c_dates)),
        "negation_mismatch": float(c_neg != e_neg),
        "overlap": len(content & set(e_tokens)) / len(content) if content else 0.0,
    }


def _stats(column: FloatArray) -> tuple[float, float, float]:
    if len(column) == 0:
        return 0.0, 0.0, 0.0
    ordered = np.sort(column)[::-1]
    return float(ordered[0]), float(column.mean()), float(ordered[1]) if len(ordered) > 1 else 0.0


def claim_features(
    probs: FloatArray,
    claim: str,
    texts: Sequence[str] | None = None,
    scores: Sequence[float | None] | None = None,
) -> dict[str, float]:
    """Every value of `FEATURES` for one claim.

    Args:
        probs: Calibrated per-passage probabilities, shape (passages, 3) in `LABELS` order.
        claim: The claim text.
        texts: The passage texts, in the order of `probs`; None when unknown (the cues are 0).
        scores: Retrieval scores per passage; None, or None entries, where there are none.

    Raises:
        ValueError: `texts` or `scores` do not have one entry per passage.
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1, len(LABELS))
    n = len(p)
    if texts is not None and len(texts) != n:
        raise ValueError(f"got {len(texts)} passage texts for {n} probability rows")
    if scores is not None and len(scores) != n:
        raise ValueError(f"got {len(scores)} retrieval scores for {n} probability rows")
    out: dict[str, float] = {}
    for name, col in (("sup", SUPPORTED), ("ref", REFUTED), ("nei", NOT_ENOUGH_INFO)):
        out[f"{name}_max"], out[f"{name}_mean"], out[f"{name}_second"] = _stats(p[:, col])
    decisive = p[:, SUPPORTED] + p[:, REFUTED]
    out["top_share"] = float(decisive.max() / decisive.sum()) if n and decisive.sum() > 0 else 0.0
    out["log_passages"] = math.log1p(n)
    given = [float(s) for s in scores or () if s is not None]
    out["score_max"] = max(given) if given else 0.0
    out["score_mean"] = float(np.mean(given)) if given else 0.0
    for name, col in (("sup", SUPPORTED), ("ref", REFUTED)):
        cues = (
            consistency(claim, texts[int(p[:, col].argmax())])
            if texts is not None and n
            else dict.fromkeys(CUES, 0.0)
        )
        out.update({f"{name}_{cue}": cues[cue] for cue in CUES})
    return out


def feature_matrix(
    rows: Sequence[tuple[FloatArray, str, Sequence[str] | None, Sequence[float | None] | None]],
) -> FloatArray:
    """`claim_features` of many claims as a (claims, len(FEATURES)) array in `FEATURES` order."""
    values = [claim_features(*row) for row in rows]
    return np.array([[v[name] for name in FEATURES] for v in values], dtype=np.float64).reshape(
        len(values), len(FEATURES)
    )
