"""Classifier ensembles: mean probabilities, a threshold tuned on held-out data, the directory
format, and use through the CLI wherever a model directory is taken."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from api.cli import main
from classifier.args import parse_run_config
from classifier.ensemble import ENSEMBLE_FILE, ClassifierEnsemble, build_ensemble, is_ensemble
from classifier.errors import ModelLoadError
from classifier.evaluate import read_labelled
from classifier.metrics import tune_threshold
from classifier.modeling import model_files_hash
from classifier.predict import CheckWorthinessClassifier
from classifier.train import MODEL_SUBDIR, run_training
from tests.conftest import toy_overrides

SENTENCES = [
    "the unemployment rate was cut by 5 percent this year.",
    "thank you folks, what a wonderful night.",
    "we doubled jobs and tax by 7 million in our year.",
    "",
]


@pytest.fixture(scope="module")
def members(tiny_base: Path, toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two toy classifiers trained with different seeds, in one runs folder."""
    root = tmp_path_factory.mktemp("ens-runs")
    out = []
    for seed in (1, 2):
        run = root / f"seed{seed}"
        run_training(parse_run_config(None, toy_overrides(tiny_base, toy_data, run, plots=False, seed=seed)))
        out.append(run / MODEL_SUBDIR)
    return out


def _dev(toy_data: Path) -> tuple[list[str], list[int]]:
    texts, _, ids = read_labelled(toy_data / "dev.tsv", ("No", "Yes"))
    return texts, [int(i) for i in ids]


def test_the_ensemble_scores_the_mean_of_its_members(
    members: list[Path], toy_data: Path, tmp_path: Path
) -> None:
    spec = build_ensemble(members, tmp_path / "ens", _dev(toy_data), "dev.tsv", backend="torch")
    ens = CheckWorthinessClassifier.load(tmp_path / "ens", backend="torch")
    assert isinstance(ens, ClassifierEnsemble) and len(ens.members) == 2
    singles = [CheckWorthinessClassifier.load(m, backend="torch").probabilities(SENTENCES) for m in members]
    assert not np.allclose(singles[0], singles[1])  # two seeds: averaging has something to do
    np.testing.assert_allclose(ens.probabilities(SENTENCES), (singles[0] + singles[1]) / 2, atol=1e-6)
    # The threshold is the one that maximises F1 of the mean score on the tuning data.
    texts, labels = _dev(toy_data)
    expected, f1 = tune_threshold(ens.scores(texts), labels)
    assert spec["threshold"] == pytest.approx(expected) and spec["tune_f1"] == pytest.approx(f1)
    assert ens.threshold == pytest.approx(expected)
    preds = ens.predict(SENTENCES)
    assert [p.label for p in preds] == ["Yes" if p.score >= expected else "No" for p in preds]
    assert preds[3].n_tokens > 0 and ens.meta.extra["ensemble_size"] == 2


def test_without_tuning_data_the_threshold_is_the_members_mean(members: list[Path], tmp_path: Path) -> None:
    spec = build_ensemble(members, tmp_path / "ens", backend="torch")
    own = [CheckWorthinessClassifier.load(m, backend="torch").threshold for m in members]
    assert all(t is not None for t in own)
    assert spec["threshold"] == pytest.approx(np.mean(own))
    assert "mean of the members" in spec["threshold_tuned_on"]


def test_the_cli_tunes_on_a_run_files_validation_split(
    members: list[Path], toy_data: Path, tiny_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_file = tmp_path / "drift.json"
    keys = toy_overrides(tiny_base, toy_data, tmp_path / "unused", validation_holdout="Sentence_id:0.2")
    keys.pop("validation_file")
    run_file.write_text(json.dumps(keys))
    out = tmp_path / "ens"
    code = main(["ensemble", *map(str, members), "--out", str(out), "--tune-config", str(run_file)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Sentence_id:0.2" in printed and "2 models" in printed
    spec = json.loads((out / ENSEMBLE_FILE).read_text())
    # Members are stored relative to the ensemble, so the runs folder can move.
    assert all(not Path(m).is_absolute() for m in spec["members"])
    # The newest 20% of train by Sentence_id: the last 80 of 400 rows in the toy file.
    holdout = parse_run_config(run_file).data
    from classifier.data import load_dataset

    val = load_dataset(holdout).validation
    assert val is not None and len(val) == 80
    ens = CheckWorthinessClassifier.load(out, backend="torch")
    expected, _ = tune_threshold(ens.scores(list(val.texts)), [int(y == 1) for y in val.labels])
    assert spec["threshold"] == pytest.approx(expected) and spec["tune_n"] == 80


def test_evaluate_predict_and_export_take_an_ensemble(
    members: list[Path], toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(members[0].parents[1], runs)  # the whole runs folder, moved elsewhere
    copies = [runs / m.parent.name / MODEL_SUBDIR for m in members]
    out = runs / "ens"
    dev = str(toy_data / "dev.tsv")
    assert main(["ensemble", *map(str, copies), "--out", str(out), "--tune-data", dev]) == 0
    moved = tmp_path / "moved"
    shutil.move(runs, moved)
    ens_dir = moved / "ens"
    capsys.readouterr()
    assert main(["evaluate", "--model", str(ens_dir), "--data", str(toy_data / "test.tsv"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (
        result["n"] == 80
        and result["threshold"] == json.loads((ens_dir / ENSEMBLE_FILE).read_text())["threshold"]
    )
    assert 0.0 <= result["at_threshold"]["f1"] <= 1.0
    check = ["--check-file", str(toy_data / "dev.tsv"), "--min-agreement", "0.9"]
    assert main(["export", "--model", str(ens_dir), *check]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert len(reports) == 2 and all(r["argmax_agreement"] >= 0.9 for r in reports)
    onnx = CheckWorthinessClassifier.load(ens_dir)  # auto: every member now has its ONNX model
    assert isinstance(onnx, ClassifierEnsemble) and {m.backend.name for m in onnx.members} == {"onnx"}
    torch_scores = CheckWorthinessClassifier.load(ens_dir, backend="torch").scores(SENTENCES)
    assert np.allclose(onnx.scores(SENTENCES), torch_scores, atol=0.05)
    onnx.close()
    assert main(["predict", "--model", str(ens_dir), *SENTENCES[:2]]) == 0
    assert "threshold" in capsys.readouterr().out


def test_bad_ensembles_are_clear_errors(
    members: list[Path], toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(args: list[str], message: str) -> None:
        assert main(args) == 2
        assert message in capsys.readouterr().err

    one = str(members[0])
    fails(["ensemble", one, "--out", str(tmp_path / "a")], "at least two members")
    fails(["ensemble", one, str(tmp_path), "--out", str(tmp_path / "b")], "no config.json")
    dev = str(toy_data / "dev.tsv")
    both = ["--tune-data", dev, "--tune-config", "configs/cpu-minilm.json"]
    fails(["ensemble", one, str(members[1]), "--out", str(tmp_path / "c"), *both], "not both")
    bad_labels = ["--tune-data", dev, "--label-aliases", '{"Yes": "Maybe"}']
    fails(["ensemble", one, str(members[1]), "--out", str(tmp_path / "d"), *bad_labels], "Maybe")
    # A failed build leaves nothing behind that would load with an untuned threshold.
    assert not (tmp_path / "d").exists()
    fails(["ensemble", one, str(members[1]), "--out", one], "holds a model")
    assert not is_ensemble(one)
    build_ensemble(members, tmp_path / "inner", backend="torch")
    # The trace header's model hash covers the spec and every member.
    first_hash = model_files_hash(tmp_path / "inner")
    assert first_hash not in {model_files_hash(m) for m in members}
    spec = json.loads((tmp_path / "inner" / ENSEMBLE_FILE).read_text())
    (tmp_path / "inner" / ENSEMBLE_FILE).write_text(json.dumps({**spec, "threshold": 0.25}))
    assert model_files_hash(tmp_path / "inner") != first_hash
    fails(["ensemble", one, str(tmp_path / "inner"), "--out", str(tmp_path / "e")], "may not be an ensemble")
    assert is_ensemble(tmp_path / "inner") and not is_ensemble(members[0])
    # A hand-edited spec without a threshold, and members that disagree on the positive class.
    (tmp_path / "inner" / ENSEMBLE_FILE).write_text(json.dumps({"members": [one, str(members[1])]}))
    with pytest.raises(ModelLoadError, match="no numeric threshold"):
        CheckWorthinessClassifier.load(tmp_path / "inner")
    other = tmp_path / "other"
    shutil.copytree(members[1], other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["verifact"]["positive_label"] = "No"
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="disagree on labels"):
        build_ensemble([members[0], other], tmp_path / "f", backend="torch")
