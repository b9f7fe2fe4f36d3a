"""Evaluate a saved classifier on a labelled file, at its stored threshold and at 0.5."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier.data import read_rows
from classifier.errors import DataError
from classifier.metrics import IntArray, classify, evaluate_probs
from classifier.predict import CheckWorthinessClassifier
from classifier.reporting import classification_report, plot_confusion, write_json


def read_labelled(
    path: str | Path,
    names: Sequence[str],
    text_column: str = "Text",
    label_column: str = "class_label",
    pair_column: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str] | None, IntArray]:
    """Texts, pair texts and label ids (indexes into ``names``) of a labelled file.

    Raises:
        DataError: for an unreadable file, a missing column or a label not in ``names``.
    """
    rows = read_rows(Path(path))
    for col in (text_column, label_column, pair_column):
        if col is not None and col not in rows[0]:
            raise DataError(f"{path}: no column {col!r}; the columns are: {', '.join(sorted(rows[0]))}")
    alias = dict(aliases or {})
    raw = [alias.get(str(r[label_column]).strip(), str(r[label_column]).strip()) for r in rows]
    unknown = sorted({v for v in raw if v not in names})
    if unknown:
        raise DataError(f"{path}: labels {unknown[:5]} are not among the model's classes {list(names)}")
    labels: IntArray = np.array([list(names).index(v) for v in raw], dtype=np.int64)
    texts = [str(r[text_column]) for r in rows]
    pairs = [str(r[pair_column]) for r in rows] if pair_column else None
    return texts, pairs, labels


def evaluate_file(
    clf: CheckWorthinessClassifier,
    path: str | Path,
    text_column: str = "Text",
    label_column: str = "class_label",
    pair_column: str | None = None,
    aliases: Mapping[str, str] | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Score every row of ``path`` and return metrics; with ``out_dir``, also write reports.

    Raises:
        DataError: for an unreadable file, a missing column or a label the model does not know.
    """
    names = clf.meta.label_names
    texts, pairs, labels = read_labelled(path, names, text_column, label_column, pair_column, aliases)
    probs = clf.probabilities(texts, pairs)
    pos = (
        names.index(clf.meta.positive_label)
        if clf.threshold is not None and clf.meta.positive_label
        else None
    )
    result: dict[str, Any] = {
        "n": len(texts),
        "backend": clf.backend.name,
        "threshold": clf.threshold,
        "at_0.5": evaluate_probs(probs, labels, names, pos, None),
    }
    if clf.threshold is not None:
        result["at_threshold"] = evaluate_probs(probs, labels, names, pos, clf.threshold)
    if out_dir is not None:
        out = Path(out_dir)
        predicted = classify(probs, pos, clf.threshold)
        out.mkdir(parents=True, exist_ok=True)
        (out / "classification_report.txt").write_text(
            classification_report(labels, predicted, names) + "\n", encoding="utf-8"
        )
        plot_confusion(labels, predicted, names, out / "confusion.png", f"{Path(path).name}")
        write_json(out / "evaluation.json", result)
    return result
