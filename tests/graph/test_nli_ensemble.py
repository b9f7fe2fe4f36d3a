"""NLI ensembles: averaging over our labels, the directory format, and use by the judge and `nli tune`."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.cli import main
from classifier.metrics import FloatArray
from graph.errors import VerifierError
from graph.nli_calibration import label_matrix
from graph.nli_ensemble import ENSEMBLE_FILE, EnsembleScorer, is_ensemble, load_pair_scorer, write_ensemble
from graph.nli_judge import PARAMS_FILE, NLIJudge
from graph.nli_model import NLISettings, PairModel
from graph.schemas import LABELS, EvidencePassage
from tests.graph.conftest import NLIRun


class FixedScorer:
    """Returns the same probabilities over its own labels for every pair."""

    def __init__(self, labels: Sequence[str], probs: Sequence[float], model_hash: str) -> None:
        self._matrix = label_matrix(list(labels))
        self._probs = np.asarray(probs, dtype=np.float64)
        self._hash = model_hash

    @property
    def matrix(self) -> FloatArray:
        return self._matrix

    def log_probs(self, claims: Sequence[str], evidences: Sequence[str]) -> FloatArray:
        out: FloatArray = np.log(np.tile(self._probs, (len(claims), 1)))
        return out

    def describe(self) -> dict[str, Any]:
        return {"model": "fixed", "model_hash": self._hash, "max_length": 64}


def test_the_ensemble_averages_probabilities_after_mapping_each_member_to_our_labels() -> None:
    ours = FixedScorer(LABELS, [0.6, 0.3, 0.1], "a")
    # An MNLI-style member with its labels in another order: entailment, neutral, contradiction.
    mnli = FixedScorer(["entailment", "neutral", "contradiction"], [0.2, 0.2, 0.6], "b")
    ensemble = EnsembleScorer([ours, mnli], model_id="e")
    probs = np.exp(ensemble.log_probs(["claim", "claim"], ["one", "two"]))
    # SUPPORTED (0.6 + 0.2) / 2, REFUTED (0.3 + 0.6) / 2, NOT_ENOUGH_INFO (0.1 + 0.2) / 2.
    np.testing.assert_allclose(probs, [[0.4, 0.45, 0.15]] * 2)
    np.testing.assert_array_equal(ensemble.matrix, np.eye(3))
    described = ensemble.describe()
    assert described["model_hash"].startswith("ensemble:") and len(described["members"]) == 2
    assert EnsembleScorer([ours, mnli]).model_hash != EnsembleScorer([ours, ours]).model_hash


def test_an_ensemble_needs_two_members() -> None:
    with pytest.raises(VerifierError, match="at least two"):
        EnsembleScorer([FixedScorer(LABELS, [0.5, 0.25, 0.25], "a")])


def _two_models(nli_run: NLIRun, tmp_path: Path) -> tuple[Path, Path]:
    twin = tmp_path / "twin"
    shutil.copytree(nli_run.model, twin)
    (twin / PARAMS_FILE).unlink(missing_ok=True)
    return nli_run.model, twin


def test_an_ensemble_directory_loads_its_members_from_relative_paths(nli_run: NLIRun, tmp_path: Path) -> None:
    first, twin = _two_models(nli_run, tmp_path)
    out = tmp_path / "ensembles" / "e"
    spec = json.loads(write_ensemble(out, [first, twin]).read_text())
    assert not Path(spec["members"][1]).is_absolute()  # the folder can move as a whole
    assert is_ensemble(out) and not is_ensemble(first)

    scorer = load_pair_scorer(NLISettings(model=str(out)))
    single = PairModel.load(NLISettings(model=str(first)))
    claims, evidence = ["Arctic ice is melting."] * 2, ["Arctic sea ice shrank.", "Paris is in France."]
    assert isinstance(scorer, EnsembleScorer)
    # Two copies of one model average to that model.
    np.testing.assert_allclose(
        np.exp(scorer.log_probs(claims, evidence)),
        np.exp(single.log_probs(claims, evidence)) @ single.matrix,
        atol=1e-6,
    )
    assert isinstance(load_pair_scorer(NLISettings(model=str(first))), PairModel)


def test_bad_ensembles_are_refused_with_the_reason(nli_run: NLIRun, tmp_path: Path) -> None:
    first, twin = _two_models(nli_run, tmp_path)
    with pytest.raises(VerifierError, match="at least two"):
        write_ensemble(tmp_path / "one", [first])
    with pytest.raises(VerifierError, match="not a model directory"):
        write_ensemble(tmp_path / "bad", [first, tmp_path])
    write_ensemble(tmp_path / "inner", [first, twin])
    with pytest.raises(VerifierError, match="may not be an ensemble"):
        write_ensemble(tmp_path / "outer", [first, tmp_path / "inner"])
    (tmp_path / "outer" / ENSEMBLE_FILE).parent.mkdir(exist_ok=True)
    (tmp_path / "outer" / ENSEMBLE_FILE).write_text(json.dumps({"members": [str(first), "../inner"]}))
    with pytest.raises(VerifierError, match="may not be an ensemble"):
        load_pair_scorer(NLISettings(model=str(tmp_path / "outer")))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / ENSEMBLE_FILE).write_text("{not json")
    with pytest.raises(VerifierError, match="unreadable ensemble"):
        load_pair_scorer(NLISettings(model=str(tmp_path / "broken")))


def test_the_cli_builds_and_tunes_an_ensemble_the_judge_then_uses(
    nli_run: NLIRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, twin = _two_models(nli_run, tmp_path)
    out = tmp_path / "e"
    assert main(["nli", "ensemble", str(first), str(twin), "--out", str(out)]) == 0
    assert main(
        ["nli", "tune", "--model", str(out), "--nli-data", str(nli_run.data),
         "--claims", "claims_dev.jsonl", "--aggregator", "rule"]
    ) == 0  # fmt: skip
    assert "ensemble of 2 models" in capsys.readouterr().out
    judge = NLIJudge.load(NLISettings(model=str(out)))
    assert judge.params.tuned and judge.params.model_hash.startswith("ensemble:")
    evidence = [EvidencePassage(id="p1", text="Arctic sea ice shrank to a record low.")]
    judgement = asyncio.run(judge.judge("Arctic sea ice is shrinking.", evidence))
    assert judgement.verdict.label in LABELS
    assert judgement.trace.details["model_hash"] == judge.params.model_hash
    assert len(judgement.trace.details["members"]) == 2
    # A member missing later is a clear error, not a stack trace.
    shutil.rmtree(twin)
    assert main(["nli", "tune", "--model", str(out), "--nli-data", str(nli_run.data)]) == 2
    assert "NLI model" in capsys.readouterr().err
