"""The int8 export of a sentence-pair (NLI) model is checked on pairs, never on single sentences."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from api.cli import main
from classifier.errors import ExportError
from classifier.export import PROBE_PAIRS, export_onnx
from tests.graph.conftest import NLIRun


@pytest.fixture
def pair_model(nli_run: NLIRun, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(nli_run.model, copy)
    return copy


def test_with_no_check_inputs_a_pair_model_is_probed_on_pairs(pair_model: Path) -> None:
    report = export_onnx(pair_model, min_agreement=0.0)
    assert report["pairs"] is True and report["checked"] == len(PROBE_PAIRS)
    assert 0 <= report["decisive"] <= report["checked"]
    assert (pair_model / "onnx" / "model.int8.onnx").is_file()


def test_single_sentences_are_refused_for_a_pair_model(pair_model: Path) -> None:
    with pytest.raises(ExportError, match="checked on pairs"):
        export_onnx(pair_model, ["the tax increased 5."], min_agreement=0.0)
    with pytest.raises(ExportError, match="1 check texts but 2 second texts"):
        export_onnx(pair_model, ["the tax increased 5."], ["a", "b"], min_agreement=0.0)
    assert not (pair_model / "onnx").exists()


def test_the_cli_checks_a_pair_model_on_the_nli_dev_pairs(
    nli_run: NLIRun,
    pair_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no runs/nli-data here
    assert main(["export", "--model", str(pair_model)]) == 2
    err = capsys.readouterr().err
    assert "sentence-pair model" in err and "verifact data nli" in err and "Traceback" not in err
    # The default columns of a pair model (claim, evidence) are those `verifact data nli` writes.
    argv = ["export", "--model", str(pair_model), "--check-file", str(nli_run.data / "dev.tsv")]
    assert main([*argv, "--min-agreement", "0.0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pairs"] is True and report["checked"] == 45
    assert report["decisive_agreement"] >= report["min_agreement"]
