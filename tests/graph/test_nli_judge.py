"""The NLI judge end to end on a tiny pair model trained by our module, plus its wiring on fixed scores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.cli import main
from classifier.args import parse_run_config
from classifier.metrics import softmax
from classifier.modeling import model_files_hash
from graph.judges import EMPTY_CLAIM_REASON, NO_EVIDENCE_REASON, Judge
from graph.nli_judge import PARAMS_FILE, NLIJudge, NLIJudgeParams, load_params, save_params
from graph.nli_model import NLISettings, PairModel
from graph.nli_records import read_claims
from graph.nli_rule import AggregationRule
from graph.nli_tune import evaluate_claims, tune_judge
from graph.schemas import LABELS, EvidencePassage
from tests.graph.conftest import NLI_CONFIG, NLIRun

EVIDENCE = (
    EvidencePassage(id="e1", text="the tax increased 5.", title="Toy"),
    EvidencePassage(id="e2", text="thank you folks great night.", title="Toy"),
    EvidencePassage(id="e3", text="the tax cut 5."),
)


def run(
    judge: Judge, claim: str = "the tax increased 5.", evidence: Sequence[EvidencePassage] = EVIDENCE
) -> Any:
    return asyncio.run(judge.judge(claim, evidence))


def test_the_run_file_is_accepted_in_sentence_pair_mode(nli_run: NLIRun) -> None:
    cfg = parse_run_config(NLI_CONFIG)
    assert (cfg.model.model_name_or_path, cfg.data.data_dir, cfg.training.output_dir) == (
        "packaged:all-MiniLM-L6-v2",
        "runs/nli-data",
        "runs/cpu-minilm-nli",
    )
    assert (cfg.data.text_column, cfg.data.text_pair_column, cfg.data.label_column) == (
        "claim",
        "evidence",
        "label",
    )
    assert cfg.data.class_names == list(LABELS)
    assert (cfg.data.test_file, cfg.data.positive_label, cfg.engine.class_weighting) == (None, None, "sqrt")
    config = json.loads((nli_run.model / "config.json").read_text())
    assert config["id2label"] == {"0": "SUPPORTED", "1": "REFUTED", "2": "NOT_ENOUGH_INFO"}
    assert config["verifact"]["pair_mode"] is True
    metrics = json.loads((nli_run.output / "metrics.json").read_text())
    assert metrics["sizes"] == {"train": 150, "validation": 45}


def test_an_untuned_judge_gives_a_verdict_with_a_full_trace(nli_run: NLIRun) -> None:
    judge = NLIJudge.load(NLISettings(model=str(nli_run.model)))
    assert isinstance(judge, Judge) and judge.name == "nli"
    result = run(judge)
    v, t = result.verdict, result.trace
    assert v.label in LABELS and 0.0 <= v.confidence <= 1.0 and v.error is None
    assert set(v.citations) <= {p.id for p in EVIDENCE}
    assert [p["id"] for p in t.details["passages"]] == ["e1", "e2", "e3"]
    for p in t.details["passages"]:
        assert sum(p[label] for label in LABELS) == pytest.approx(1.0, abs=1e-5)
    assert (t.judge, t.model, t.errors) == ("nli", str(nli_run.model), ())
    assert t.details["model_hash"] == model_files_hash(nli_run.model)
    assert (t.details["temperature"], t.details["tuned"], t.details["pair_order"]) == (
        1.0,
        False,
        "claim_evidence",
    )
    assert t.details["rule"] == AggregationRule().model_dump()
    assert "untuned" in t.details["warnings"][0]
    assert t.details["decision"] == v.rationale and t.latency_ms > 0


def test_tuning_stores_temperature_and_rule_and_the_judge_applies_them(
    nli_run: NLIRun, tmp_path: Path
) -> None:
    model = PairModel.load(NLISettings(model=str(nli_run.model)))
    params = tune_judge(model, nli_run.data / "dev.tsv", [nli_run.data / "claims_dev.jsonl"])
    assert params.tuned and params.model_hash == model_files_hash(nli_run.model)
    assert params.fitted_on["n_pairs"] == 45
    assert (params.fitted_on["n_claims"], params.fitted_on["n_claims_skipped"]) == (
        18,
        6,
    )  # DISPUTED left out
    pairs = params.dev_metrics["pairs"]
    assert pairs["nll_after"] <= pairs["nll_before"] + 1e-9
    assert {"macro_f1", "accuracy", "ece", "majority_accuracy"} <= set(params.dev_metrics["claims"])

    path = tmp_path / PARAMS_FILE
    save_params(params, path)
    assert load_params(path) == params
    judge = NLIJudge.load(NLISettings(model=str(nli_run.model), params_file=str(path)))
    result = run(judge)
    assert result.trace.details["temperature"] == pytest.approx(params.temperature)
    assert result.trace.details["rule"] == params.rule.model_dump()
    assert result.trace.details["tuned"] is True and result.trace.details["warnings"] == []

    scaled = NLIJudge(model, NLIJudgeParams(temperature=3.0))
    texts = ["Toy: the tax increased 5.", "Toy: thank you folks great night.", "the tax cut 5."]
    expected = softmax(model.log_probs(["the tax increased 5."] * 3, texts) / 3.0)
    assert scaled.probabilities("the tax increased 5.", EVIDENCE) == pytest.approx(expected)


def test_the_settings_file_beside_the_model_is_picked_up(nli_run: NLIRun, tmp_path: Path) -> None:
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(nli_run.model, model_dir)
    save_params(
        NLIJudgeParams(temperature=2.5, tuned=True, model_hash="someone-else"), model_dir / PARAMS_FILE
    )
    judge = NLIJudge.load(NLISettings(model=str(model_dir)))
    details = run(judge).trace.details
    assert details["temperature"] == 2.5 and details["params_file"] == str(model_dir / PARAMS_FILE)
    assert "fitted for model someone-else" in details["warnings"][0]


def test_claim_evaluation_reports_the_benchmark_metrics(nli_run: NLIRun) -> None:
    model = PairModel.load(NLISettings(model=str(nli_run.model)))
    result = evaluate_claims(model, NLIJudgeParams(), read_claims(nli_run.data / "claims_dev.jsonl"))
    assert result["n"] == 18 and sum(result["predicted"].values()) == 18
    assert sum(result["other_labels"]["DISPUTED"].values()) == 6
    assert {"accuracy", "macro_f1", "f1_SUPPORTED", "f1_REFUTED", "f1_NOT_ENOUGH_INFO", "ece"} <= set(result)
    assert result["majority_accuracy"] == pytest.approx(1 / 3)


def test_the_cli_tunes_then_evaluates(
    nli_run: NLIRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "params.json"
    common = ["--model", str(nli_run.model), "--nli-data", str(nli_run.data)]
    assert main(["nli", "tune", *common, "--claims", "claims_dev.jsonl", "--out", str(out)]) == 0
    assert "temperature" in capsys.readouterr().out and load_params(out).tuned
    assert (
        main(["nli", "evaluate", *common, "--params", str(out), "--claims", "claims_dev.jsonl", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["claims_dev.jsonl"]["n"] == 18


class FixedScorer:
    """A pair model whose log-probabilities are given, in our label order."""

    def __init__(self, probs: list[list[float]], fail: bool = False) -> None:
        self._logits = np.log(np.array(probs))
        self.fail = fail
        self.calls: list[tuple[list[str], list[str]]] = []

    @property
    def matrix(self) -> np.ndarray:
        return np.eye(3)

    def log_probs(self, claims: Sequence[str], evidences: Sequence[str]) -> np.ndarray:
        self.calls.append((list(claims), list(evidences)))
        if self.fail:
            raise RuntimeError("out of memory")
        return self._logits

    def describe(self) -> dict[str, Any]:
        return {"model": "fixed", "model_hash": "abc"}


def test_citations_are_the_passages_that_carried_the_label_best_first() -> None:
    scorer = FixedScorer([[0.7, 0.1, 0.2], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]])
    judge = NLIJudge(scorer, NLIJudgeParams(rule=AggregationRule(t_sup=0.6, t_ref=0.6), tuned=True))
    result = run(judge)
    assert (result.verdict.label, result.verdict.citations) == ("SUPPORTED", ("e3", "e1"))
    assert result.verdict.confidence == pytest.approx(0.9)
    # One batched call over every pair, titles prefixed as in the index.
    assert scorer.calls == [
        (
            ["the tax increased 5."] * 3,
            ["Toy: the tax increased 5.", "Toy: thank you folks great night.", "the tax cut 5."],
        )
    ]


def test_failures_and_empty_inputs_abstain_without_raising() -> None:
    judge = NLIJudge(FixedScorer([[0.9, 0.05, 0.05]], fail=True))
    failed = run(judge)
    assert (failed.verdict.label, failed.verdict.confidence) == ("NOT_ENOUGH_INFO", 0.0)
    assert failed.verdict.error == "RuntimeError: out of memory" and failed.trace.errors == (
        "RuntimeError: out of memory",
    )
    assert run(judge, claim="  ").trace.skipped_reason == EMPTY_CLAIM_REASON
    assert run(judge, evidence=()).verdict.downgraded_reason == NO_EVIDENCE_REASON


def test_importing_the_verifier_loads_no_model_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, graph.nli_judge, graph.nli_tune, graph.second_opinion; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
