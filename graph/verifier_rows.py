"""Verifier train rows: the row type, its TSV, and the quality-control steps applied to rows.

Every step records what it drops in a `Drops` counter keyed by (reason, origin), so the report can
say for each origin (annotated, an edit kind, a negative kind) how many rows were made, dropped for
which reason, and written.
"""

from __future__ import annotations

import csv
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.nli_data import dedupe
from graph.nli_records import PAIR_COLUMNS, NLIPair, as_label, claim_key
from graph.schemas import LABELS

TRAIN_COLUMNS = (*PAIR_COLUMNS, "augmentation")
NEI_KINDS = (
    "annotated",
    "wice_partially_supported",
    "wice_not_supported",
    "other_sentence",
    "hard_negative",
    "easy_negative",
)
"""Where train NOT_ENOUGH_INFO rows come from (annotated: Climate-FEVER's own NEI evidence)."""
# Down-sampling takes generated negatives first (easy and hard alike, so both kinds stay in the
# mix), then other WiCE sentences, then edits; annotated rows go last.
_DROP_RANK = {"easy_negative": 0, "hard_negative": 0, "other_sentence": 1}
_DROP_RANK.update(dict.fromkeys(("entity", "number", "antonym", "negation"), 2))
Drops = Counter[tuple[str, str]]
"""(reason, origin) -> rows dropped."""


@dataclass(frozen=True)
class TrainRow:
    """One train pair with how it was made."""

    pair: NLIPair
    augmentation: str = "none"
    """The file's augmentation column: "none", an edit kind or a negative kind."""
    origin: str = "annotated"
    """Finer than `augmentation`, for the report (wice_partial, wice_supported, ...)."""


def length_filter(
    rows: Iterable[TrainRow], claim_chars: tuple[int, int], evidence_chars: tuple[int, int], drops: Drops
) -> list[TrainRow]:
    """Rows whose claim and evidence lengths (characters) are within the (min, max) bounds."""
    kept = []
    for r in rows:
        c, e = len(r.pair.claim), len(r.pair.evidence)
        checks = (
            ("claim_too_short", c < claim_chars[0]),
            ("claim_too_long", c > claim_chars[1]),
            ("evidence_too_short", e < evidence_chars[0]),
            ("evidence_too_long", e > evidence_chars[1]),
        )
        reason = next((name for name, failed in checks if failed), None)
        if reason:
            drops[(reason, r.origin)] += 1
        else:
            kept.append(r)
    return kept


def clean(rows: Sequence[TrainRow], blocked: dict[str, set[str]], drops: Drops) -> list[TrainRow]:
    """De-duplicate with `dedupe` (the first row wins) and drop rows whose claim is `blocked`."""
    kept_pairs, _, conflicts = dedupe([r.pair for r in rows])
    kept_ids = {id(p) for p in kept_pairs}
    drops[("conflicting_duplicates", "all")] += conflicts
    out = []
    for r in rows:
        where = next((name for name, keys in blocked.items() if claim_key(r.pair.claim) in keys), None)
        if id(r.pair) not in kept_ids:
            drops[("duplicate", r.origin)] += 1
        elif where:
            drops[(f"claim_in_{where}", r.origin)] += 1
        else:
            out.append(r)
    return out


def balance(rows: list[TrainRow], share: float | None, rng: random.Random, drops: Drops) -> list[TrainRow]:
    """Drop rows of any label above `share` of all rows, generated rows first (`_DROP_RANK`)."""
    if share is None or share >= 1:
        return rows
    for _ in LABELS:
        counts = Counter(r.pair.label for r in rows)
        if share * len(counts) < 1:
            break  # too few labels left for any of them to fall to `share`
        label, n = counts.most_common(1)[0]
        excess = math.ceil((n - share * len(rows)) / (1 - share))
        if excess <= 0:
            break
        order = [i for i, r in enumerate(rows) if r.pair.label == label]
        rng.shuffle(order)
        order.sort(key=lambda i: _DROP_RANK.get(rows[i].origin, 3))
        gone = set(order[:excess])
        drops.update(("label_balance", rows[i].origin) for i in sorted(gone))
        rows = [r for i, r in enumerate(rows) if i not in gone]
    return rows


def write_train(path: Path, rows: Sequence[TrainRow]) -> None:
    """Write train rows as a TSV with `TRAIN_COLUMNS` (read back by `classifier.data.read_rows`)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(TRAIN_COLUMNS)
        writer.writerows((*(getattr(r.pair, c) for c in PAIR_COLUMNS), r.augmentation) for r in rows)


def read_pairs(path: Path) -> list[NLIPair]:
    """The pairs of a pair file as nli_data writes it."""
    from classifier.data import read_rows

    return [
        NLIPair(r["claim"], r["evidence"], as_label(r["label"]), r["source"], r["claim_id"])
        for r in read_rows(path)
    ]


def row_report(rows: Sequence[TrainRow], made: Counter[str], drops: Drops) -> dict[str, Any]:
    """Row counts for the report: per origin made and written, drops by reason, train labels."""
    written = Counter(r.origin for r in rows)
    labels = Counter(r.pair.label for r in rows)
    by_source: dict[str, Counter[str]] = {}
    for r in rows:
        by_source.setdefault(r.pair.source, Counter())[r.pair.label] += 1
    removed: dict[str, dict[str, int]] = {}
    for (reason, origin), n in sorted(drops.items()):
        if n:
            removed.setdefault(reason, {})[origin] = n
    nei = Counter(r.origin for r in rows if r.pair.label == "NOT_ENOUGH_INFO")
    return {
        "origins": {o: {"made": n, "written": written[o]} for o, n in sorted(made.items())},
        "not_enough_info": {k: nei[k] for k in NEI_KINDS},
        "removed": removed,
        "train": {
            "rows": len(rows),
            "by_label": {k: labels[k] for k in LABELS},
            "label_shares": {k: round(labels[k] / max(1, len(rows)), 4) for k in LABELS},
            "by_source": {s: {k: c[k] for k in LABELS} for s, c in sorted(by_source.items())},
        },
    }
