"""Ensembles of saved classifiers: the mean of several models' probabilities, used as one model.

An ensemble is a directory holding ``ensemble.json``: its member model directories (stored relative
to the ensemble's directory, so a runs folder can move as a whole), the decision threshold on the
members' mean positive probability, and what that threshold was tuned on.
`CheckWorthinessClassifier.load` opens such a directory like any model, so ``verifact predict``,
``verifact evaluate``, the service and the benchmarks take one wherever they take a model. It costs
the sum of its members' time.

    verifact ensemble runs/a/model runs/b/model runs/c/model --out runs/ens \\
        --tune-config configs/cpu-minilm-drift.json

The members' own thresholds were tuned for each of them alone; the mean of their probabilities is
a new score, so its threshold is tuned again on data the members did not train on (the run file's
validation split, or a labelled file). Without tuning data the mean of the members' thresholds is
used, and the file says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from classifier.errors import ModelLoadError
from classifier.metrics import FloatArray, tune_threshold
from classifier.predict import CheckWorthinessClassifier, Encoded

ENSEMBLE_FILE = "ensemble.json"


def is_ensemble(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` is an ensemble directory."""
    return (Path(model_dir).expanduser() / ENSEMBLE_FILE).is_file()


def check_members(
    members: Sequence[str | Path], error: type[Exception], out: str | Path | None = None
) -> list[Path]:
    """The members as resolved paths, once each is known to be a saved model (not an ensemble)
    and ``out``, when given, is not a model directory that an ensemble file would take over.

    Raises:
        error: fewer than two members, a member that is an ensemble or no model directory, or
            an ``out`` that holds a model.
    """
    if out is not None and (Path(out) / "config.json").is_file():
        raise error(f"{out} holds a model; write the ensemble to a directory of its own")
    paths = [Path(m).expanduser().resolve() for m in members]
    if len(paths) < 2:
        raise error(f"an ensemble needs at least two members, got {len(paths)}")
    for path in paths:
        if is_ensemble(path):
            raise error(f"an ensemble member may not be an ensemble itself: {path}")
        if not (path / "config.json").is_file():
            raise error(f"not a model directory (no config.json): {path}")
    return paths


def write_spec(
    out: str | Path,
    members: Sequence[str | Path],
    error: type[Exception],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Create ``out/ensemble.json`` naming ``members`` (plus ``extra`` keys); returns its path.

    Raises:
        error: the members or ``out`` fail `check_members`.
    """
    root = Path(out)
    paths = check_members(members, error, root)
    root.mkdir(parents=True, exist_ok=True)
    stored = [os.path.relpath(path, root.resolve()) for path in paths]
    target = root / ENSEMBLE_FILE
    target.write_text(json.dumps({"members": stored, **(extra or {})}, indent=2) + "\n", encoding="utf-8")
    return target


def read_spec(model_dir: str | Path, error: type[Exception]) -> tuple[list[Path], dict[str, Any]]:
    """The member directories an ensemble names (resolved against it) and its whole spec.

    Raises:
        error: the file is unreadable or malformed, or a member is itself an ensemble.
    """
    root = Path(model_dir).expanduser()
    try:
        spec = json.loads((root / ENSEMBLE_FILE).read_text(encoding="utf-8"))
        names = [str(m) for m in spec["members"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise error(f"unreadable ensemble file {root / ENSEMBLE_FILE}: {exc}") from exc
    paths = [Path(n) if Path(n).is_absolute() else root / n for n in names]
    for path in paths:
        if is_ensemble(path):
            raise error(f"an ensemble member may not be an ensemble itself: {path}")
    return paths, spec


class ClassifierEnsemble(CheckWorthinessClassifier):
    """Several binary classifiers with the same labels, scored as the mean of their probabilities."""

    def __init__(
        self, members: Sequence[CheckWorthinessClassifier], threshold: float, model_dir: Path | None = None
    ) -> None:
        """Average ``members`` (two or more, same labels) and cut the mean at ``threshold``.

        Raises:
            ModelLoadError: fewer than two members, members with different labels, or not binary.
        """
        if len(members) < 2:
            raise ModelLoadError(f"an ensemble needs at least two members, got {len(members)}")
        first = members[0]
        for m in members[1:]:
            if (m.meta.label_names, m.meta.positive_label) != (
                first.meta.label_names,
                first.meta.positive_label,
            ):
                raise ModelLoadError(
                    f"ensemble members disagree on labels: {list(first.meta.label_names)} "
                    f"(positive {first.meta.positive_label!r}) against {list(m.meta.label_names)} "
                    f"(positive {m.meta.positive_label!r}) in {m.model_dir}"
                )
        if first._positive_index is None:
            raise ModelLoadError("an ensemble needs binary members with a positive label")
        meta = replace(
            first.meta, threshold=threshold, extra={**first.meta.extra, "ensemble_size": len(members)}
        )
        super().__init__(
            first.backend, first.tokenizer, meta, model_dir, first.batch_size, first.max_batch_tokens
        )
        self.members = list(members)

    def _score(self, texts: Sequence[str], pairs: Sequence[str] | None) -> tuple[Encoded, FloatArray]:
        # Token counts and truncation are reported as the first member saw them.
        scored = [m._score(texts, pairs) for m in self.members]
        mean: FloatArray = np.mean([probs for _, probs in scored], axis=0)
        return scored[0][0], mean

    def close(self) -> None:
        """Stop the members' threads."""
        for m in self.members:
            m.close()


def load_ensemble(model_dir: str | Path, **load_args: Any) -> ClassifierEnsemble:
    """Open an ensemble directory; every member loads with the same ``load_args`` (backend, threads).

    Raises:
        ModelLoadError: an unreadable spec, a missing threshold, or a member that fails to load.
    """
    root = Path(model_dir).expanduser()
    paths, spec = read_spec(root, ModelLoadError)
    threshold = spec.get("threshold")
    if not isinstance(threshold, (int, float)):
        raise ModelLoadError(
            f"{root / ENSEMBLE_FILE} has no numeric threshold; rebuild it with 'verifact ensemble'"
        )
    members = [CheckWorthinessClassifier.load(p, **load_args) for p in paths]
    return ClassifierEnsemble(members, float(threshold), root)


def build_ensemble(
    members: Sequence[str | Path],
    out: str | Path,
    tune: tuple[Sequence[str], Sequence[int]] | None = None,
    tuned_on: str = "",
    backend: str = "auto",
) -> dict[str, Any]:
    """Write an ensemble of ``members`` to ``out`` and return its spec.

    ``tune`` is (texts, is_positive) to tune the threshold on, described by ``tuned_on``; without
    it the threshold is the mean of the members' own thresholds.

    Raises:
        ModelLoadError: a member that is missing, an ensemble, or unlike the others.
    """
    check_members(members, ModelLoadError, out)  # before paying for the models
    loaded = [CheckWorthinessClassifier.load(m, backend=backend) for m in members]
    try:
        ensemble = ClassifierEnsemble(loaded, 0.5)
        extra: dict[str, Any]
        if tune is not None:
            texts, labels = tune
            probs = ensemble.scores(list(texts))
            threshold, f1 = tune_threshold(probs, list(labels))
            extra = {
                "threshold": threshold,
                "threshold_tuned_on": tuned_on,
                "tune_f1": f1,
                "tune_n": len(texts),
            }
        else:
            threshold = float(np.mean([0.5 if m.threshold is None else m.threshold for m in loaded]))
            extra = {"threshold": threshold, "threshold_tuned_on": "mean of the members' own thresholds"}
    finally:
        for m in loaded:
            m.close()
    write_spec(out, members, ModelLoadError, extra)
    return {"members": [str(m) for m in members], **extra}
