"""An ensemble of NLI pair models that the judge, `verifact nli tune` and the benchmarks use as one.

An ensemble is a directory holding ``ensemble.json``, which names its member model directories
(relative to the ensemble's own directory, or absolute). Its verdict probabilities are the mean of
the members' probabilities, each first mapped to our labels; the judge then calibrates and aggregates
them like any single model's, with its own ``nli_judge.json`` tuned on dev for the ensemble. It costs
the sum of its members' time, so it is a measure of what averaging buys (and a teacher to distil from)
more than a model to serve on two cores.

    verifact nli ensemble runs/verifier-a/model runs/verifier-b/model --out runs/verifier-ensemble
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier.metrics import FloatArray
from graph.errors import VerifierError
from graph.nli_model import LOG_FLOOR, NLISettings, PairModel, PairScorer
from graph.schemas import LABELS

ENSEMBLE_FILE = "ensemble.json"


class EnsembleScorer:
    """The mean of several `PairScorer`s' probabilities over `LABELS`, behind the same seam."""

    def __init__(self, members: Sequence[PairScorer], *, model_id: str = "") -> None:
        """Average ``members`` (at least two).

        Raises:
            VerifierError: fewer than two members.
        """
        if len(members) < 2:
            raise VerifierError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = list(members)
        self.model_id = model_id
        self._matrix = np.eye(len(LABELS), dtype=np.float64)
        hashes = [str(m.describe().get("model_hash", "")) for m in self.members]
        self.model_hash = "ensemble:" + hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:16]

    @property
    def matrix(self) -> FloatArray:
        """Identity: the ensemble's rows are already over `LABELS`."""
        return self._matrix

    def log_probs(self, claims: Sequence[str], evidences: Sequence[str]) -> FloatArray:
        """Log of the members' mean probabilities over `LABELS`, one row per pair."""
        total = np.zeros((len(claims), len(LABELS)), dtype=np.float64)
        for member in self.members:
            total += np.exp(member.log_probs(claims, evidences)) @ member.matrix
        out: FloatArray = np.log(np.maximum(total / len(self.members), LOG_FLOOR))
        return out

    def close(self) -> None:
        """Close the members that hold threads of their own."""
        for member in self.members:
            close = getattr(member, "close", None)
            if close is not None:
                close()

    def describe(self) -> dict[str, Any]:
        """The ensemble's id and hash, and each member's own description."""
        members = [m.describe() for m in self.members]
        return {
            "model": self.model_id,
            "model_hash": self.model_hash,
            "model_labels": list(LABELS),
            "label_map": {label: label for label in LABELS},
            "pair_order": "per member",
            "max_length": max(int(m.get("max_length", 0)) for m in members),
            "members": members,
        }


def write_ensemble(out: str | Path, members: Sequence[str | Path]) -> Path:
    """Create the ensemble directory ``out`` naming ``members``; returns its ``ensemble.json``.

    Members are stored relative to ``out``, so the runs folder can move as a whole.

    Raises:
        VerifierError: fewer than two members, or a member that is an ensemble or no model directory.
    """
    out = Path(out)
    paths = [Path(m).resolve() for m in members]
    if len(paths) < 2:
        raise VerifierError(f"an ensemble needs at least two members, got {len(paths)}")
    for path in paths:
        if is_ensemble(path):
            raise VerifierError(f"an ensemble member may not be an ensemble itself: {path}")
        if not (path / "config.json").is_file():
            raise VerifierError(f"not a model directory (no config.json): {path}")
    out.mkdir(parents=True, exist_ok=True)
    stored = [os.path.relpath(path, out.resolve()) for path in paths]
    target = out / ENSEMBLE_FILE
    target.write_text(json.dumps({"members": stored}, indent=2) + "\n", encoding="utf-8")
    return target


def is_ensemble(model: str | Path) -> bool:
    """Whether ``model`` is an ensemble directory."""
    return (Path(model).expanduser() / ENSEMBLE_FILE).is_file()


def load_pair_scorer(settings: NLISettings) -> PairScorer:
    """The pair model ``settings`` names: an ensemble directory, else a single model (`PairModel.load`).

    Members load with the same settings (backend, device, batch size) and their own label maps.

    Raises:
        VerifierError: the ensemble file is unreadable or a member cannot be loaded.
    """
    root = Path(settings.model).expanduser()
    if not is_ensemble(root):
        return PairModel.load(settings)
    try:
        spec = json.loads((root / ENSEMBLE_FILE).read_text(encoding="utf-8"))
        names = [str(m) for m in spec["members"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VerifierError(f"unreadable ensemble file {root / ENSEMBLE_FILE}: {exc}") from exc
    members: list[PairScorer] = []
    for name in names:
        path = Path(name) if Path(name).is_absolute() else root / name
        if is_ensemble(path):
            raise VerifierError(f"an ensemble member may not be an ensemble itself: {path}")
        member = settings.model_copy(update={"model": str(path), "params_file": None})
        members.append(PairModel.load(member))
    return EnsembleScorer(members, model_id=str(root))
