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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier.ensemble import ENSEMBLE_FILE, is_ensemble, read_spec, write_spec
from classifier.metrics import FloatArray
from graph.errors import VerifierError
from graph.nli_model import LOG_FLOOR, NLISettings, PairModel, PairScorer
from graph.schemas import LABELS

__all__ = ["ENSEMBLE_FILE", "EnsembleScorer", "is_ensemble", "load_pair_scorer", "write_ensemble"]


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
    return write_spec(out, members, VerifierError)


def load_pair_scorer(settings: NLISettings) -> PairScorer:
    """The pair model ``settings`` names: an ensemble directory, else a single model (`PairModel.load`).

    Members load with the same settings (backend, device, batch size) and their own label maps.

    Raises:
        VerifierError: the ensemble file is unreadable or a member cannot be loaded.
    """
    root = Path(settings.model).expanduser()
    if not is_ensemble(root):
        return PairModel.load(settings)
    paths, _ = read_spec(root, VerifierError)
    members: list[PairScorer] = [
        PairModel.load(settings.model_copy(update={"model": str(path), "params_file": None}))
        for path in paths
    ]
    return EnsembleScorer(members, model_id=str(root))
