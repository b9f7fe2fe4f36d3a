"""The ``verifact`` CLI: train, predict, evaluate and export, with clear errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main
from tests.conftest import toy_overrides


@pytest.fixture(scope="module")
def cli_model(tiny_base: Path, toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train through ``verifact train`` with a run file and overrides."""
    out = tmp_path_factory.mktemp("cli-run")
    run_file = out / "run.json"
    run_file.write_text(json.dumps(toy_overrides(tiny_base, toy_data, out / "o", plots=False)))
    assert main(["train", "--config", str(run_file), "--set", "num_train_epochs=2"]) == 0
    metrics = json.loads((out / "o" / "metrics.json").read_text())
    assert metrics["config"]["training"]["num_train_epochs"] == 2
    return out / "o" / "model"


def test_predict_prints_scores_and_labels(cli_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "predict",
            "--model",
            str(cli_model),
            "--backend",
            "torch",
            "the tax rate was cut by 5 percent.",
            "thank you folks.",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert "CLAIM" in lines[0] and "CLAIM" not in lines[1]
    assert lines[-1].startswith("threshold ")


def test_predict_json(cli_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(cli_model), "--json", "hello."]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["label"] in ("Yes", "No") and 0 <= rows[0]["score"] <= 1


def test_evaluate_reports_both_thresholds(
    cli_model: Path, toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "evaluate",
            "--model",
            str(cli_model),
            "--data",
            str(toy_data / "test.tsv"),
            "--json",
            "--out",
            str(tmp_path),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["n"] == 80 and result["at_threshold"]["f1"] > 0.7
    assert {"at_0.5", "threshold"} <= set(result)
    assert (tmp_path / "confusion.png").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--model", "/nonexistent/model", "hi"], "model directory not found"),
        (["train", "--config", "/nonexistent.json"], "run file not found"),
        (["evaluate", "--model", "{model}", "--data", "/nonexistent.tsv"], "data file not found"),
        (
            ["evaluate", "--model", "{model}", "--data", "{data}", "--label-column", "nope"],
            "no column 'nope'",
        ),
        (
            ["export", "--model", "{model}", "--check-file", "{data}", "--pair-column", "Text"],
            "this model reads single sentences",
        ),
        (
            ["export", "--model", "{model}", "--check-file", "{data}", "--text-column", "nope"],
            "no column nope",
        ),
    ],
)
def test_user_errors_exit_2_with_one_line(
    argv: list[str], message: str, cli_model: Path, toy_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(model=cli_model, data=toy_data / "dev.tsv") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_export_prints_only_its_json_report(
    cli_model: Path, toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(cli_model, copy)
    code = main(
        ["export", "--model", str(copy), "--check-file", str(toy_data / "dev.tsv"), "--min-agreement", "0.9"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["checked"] == 80 and report["label_agreement"] >= 0.9
    assert (copy / "onnx" / "model.int8.onnx").is_file()
