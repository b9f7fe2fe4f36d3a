"""Training with both engines on a tiny BERT: the loss falls, reports are written, models reload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classifier.args import parse_run_config
from classifier.train import MODEL_SUBDIR, run_training
from tests.conftest import toy_overrides


@pytest.fixture(scope="module")
def trained(tiny_base: Path, toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Trainer run on the toy data, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("run-trainer")
    summary = run_training(parse_run_config(None, toy_overrides(tiny_base, toy_data, out)))
    assert summary is not None
    return {"summary": summary, "out": out}


def _losses(history: list[dict[str, Any]]) -> list[float]:
    return [h["loss"] for h in history if "loss" in h]


def test_trainer_lowers_the_loss_and_learns(trained: dict[str, Any]) -> None:
    losses = _losses(trained["summary"]["history"])
    assert len(losses) >= 4
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    # The toy labels are learnable from the words; a working loop gets far above chance.
    assert trained["summary"]["results"]["test"]["at_threshold"]["f1"] > 0.8


def test_run_writes_every_report(trained: dict[str, Any]) -> None:
    out: Path = trained["out"]
    for name in (
        "metrics.json",
        "training_curves.png",
        "confusion_validation.png",
        "confusion_test.png",
        "classification_report.txt",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    evals = [h for h in metrics["history"] if "eval_f1" in h]
    assert len(evals) >= 2, "every evaluation step is recorded"
    assert {"eval_loss", "eval_accuracy"} <= set(evals[0])
    assert "precision" in (out / "classification_report.txt").read_text()


def test_label_map_and_threshold_are_saved_in_the_config(trained: dict[str, Any]) -> None:
    cfg = json.loads((trained["out"] / MODEL_SUBDIR / "config.json").read_text())
    assert cfg["id2label"] == {"0": "No", "1": "Yes"}
    meta = cfg["verifact"]
    assert meta["positive_label"] == "Yes"
    assert meta["threshold"] == pytest.approx(trained["summary"]["results"]["threshold"])
    assert 0.0 < meta["threshold"] < 1.0


@pytest.mark.parametrize("sgd_switch", [None, 50])
def test_custom_loop_lowers_the_loss(
    tiny_base: Path, toy_data: Path, tmp_path: Path, sgd_switch: int | None
) -> None:
    overrides = toy_overrides(
        tiny_base,
        toy_data,
        tmp_path,
        engine="custom_loop",
        gradient_accumulation_steps=2,
        num_train_epochs=6,
        sgd_switch_step=sgd_switch,
        sgd_learning_rate=0.05,
    )
    summary = run_training(parse_run_config(None, overrides))
    assert summary is not None
    losses = _losses(summary["history"])
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    assert summary["results"]["validation"]["at_threshold"]["f1"] > 0.7
    assert (tmp_path / MODEL_SUBDIR / "model.safetensors").is_file()


def test_class_weighting_changes_the_run(tiny_base: Path, toy_data: Path, tmp_path: Path) -> None:
    overrides = toy_overrides(tiny_base, toy_data, tmp_path, class_weighting="balanced", num_train_epochs=1)
    summary = run_training(parse_run_config(None, overrides))
    assert summary is not None
    assert summary["config"]["engine"]["class_weighting"] == "balanced"
    assert summary["results"]["validation"]["at_threshold"]["f1"] > 0.5


@pytest.mark.parametrize("engine", ["trainer", "custom_loop"])
def test_tensorboard_reporting_writes_event_files(
    engine: str, tiny_base: Path, toy_data: Path, tmp_path: Path
) -> None:
    overrides = toy_overrides(
        tiny_base, toy_data, tmp_path, engine=engine, report_to="tensorboard", num_train_epochs=1, plots=False
    )
    assert run_training(parse_run_config(None, overrides)) is not None
    assert list(tmp_path.rglob("events.out.tfevents.*")), "no TensorBoard event file was written"
