"""The verdict benchmark's metrics, blocks and report on tiny inputs: no model, no data, no server."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.verdict_llm import NO_ENDPOINT, choose_llm, sample
from bench.verdict_metrics import judgement_stats, verdict_metrics, write
from bench.verdict_quality import gold_recall, nli_block, retrieved_claims, run
from graph.nli_judge import NLIJudgeParams
from graph.nli_records import ClaimRecord, EvidenceRecord
from graph.nli_rule import AggregationRule
from graph.nli_tune import evaluate_claims
from graph.schemas import EvidencePassage, Judgement, JudgeTrace, Verdict
from retrieval.index import EvidenceIndex
from retrieval.retriever import Retriever
from retrieval.types import Passage
from tests.fakes import HashEncoder

# Evidence words the fake pair model reads: "confirms" supports, "denies" refutes, anything else is neutral.
PROBS = {"confirms": [0.8, 0.1, 0.1], "denies": [0.1, 0.7, 0.2], "": [0.2, 0.2, 0.6]}


class KeywordScorer:
    """A `PairScorer` whose probabilities follow a keyword in the evidence; labels are ours, in order."""

    matrix = np.eye(3)

    def log_probs(self, claims: Sequence[str], evidences: Sequence[str]) -> np.ndarray:
        rows = [next((p for word, p in PROBS.items() if word and word in e), PROBS[""]) for e in evidences]
        return np.log(np.array(rows, dtype=np.float64).reshape(-1, 3))

    def describe(self) -> dict[str, Any]:
        return {"model": "keyword-scorer", "model_hash": "k1"}


def claim(cid: str, label: str, *evidence: tuple[str, str, str | None]) -> ClaimRecord:
    """A claim about seas with (id, text, passage label) evidence."""
    return ClaimRecord(
        cid,
        f"Seas rise {cid}.",
        label,
        "toy",
        tuple(EvidenceRecord(i, t, "Sea", lab) for i, t, lab in evidence),  # type: ignore[arg-type]
    )


CLAIMS = [
    claim(
        "a", "SUPPORTED", ("s1", "The survey confirms it.", "SUPPORTED"), ("n1", "Tides.", "NOT_ENOUGH_INFO")
    ),
    claim("b", "REFUTED", ("r1", "The survey denies it.", "REFUTED")),
    claim("c", "REFUTED", ("s2", "The survey confirms it.", "SUPPORTED")),
    claim("d", "NOT_ENOUGH_INFO", ("n2", "Waves.", None)),
    claim("e", "DISPUTED", ("s3", "A survey confirms it.", "SUPPORTED"), ("r2", "One denies it.", "REFUTED")),
]
PARAMS = NLIJudgeParams(temperature=1.0, rule=AggregationRule(t_sup=0.5, t_ref=0.5, margin=0.2), tuned=True)


def test_metrics_score_three_labels_leave_disputed_out_and_report_the_majority_baseline() -> None:
    gold = ["SUPPORTED", "SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO", "DISPUTED"]
    predicted = ["SUPPORTED", "REFUTED", "REFUTED", "SUPPORTED", "NOT_ENOUGH_INFO"]
    m = verdict_metrics(gold, predicted, [1.0, 1.0, 0.5, 0.5, 0.9])
    assert m["n"] == 4
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["f1_SUPPORTED"] == pytest.approx(0.5)  # precision 1/2, recall 1/2
    assert m["f1_REFUTED"] == pytest.approx(2 / 3)  # precision 1/2, recall 1
    assert m["f1_NOT_ENOUGH_INFO"] == 0.0
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    # Bin (0.4667, 0.5333]: confidence 0.5, one of two right; bin (0.9333, 1]: confidence 1, one of two.
    assert m["ece"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.5)
    assert (m["majority_label"], m["majority_accuracy"]) == ("SUPPORTED", 0.5)
    assert m["majority_macro_f1"] == pytest.approx((2 * 0.5 / 1.5) / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m["other_labels"] == {"DISPUTED": {"NOT_ENOUGH_INFO": 1}}
    assert m["gold"] == {"SUPPORTED": 2, "REFUTED": 1, "NOT_ENOUGH_INFO": 1}


def test_metrics_refuse_mismatched_lengths_and_unknown_verdict_labels() -> None:
    with pytest.raises(ValueError, match="gold labels"):
        verdict_metrics(["SUPPORTED"], [], [])
    with pytest.raises(ValueError, match="DISPUTED"):
        verdict_metrics(["SUPPORTED"], ["DISPUTED"], [0.5])


def test_nli_block_agrees_with_verifact_nli_evaluate() -> None:
    scorer = KeywordScorer()
    block = nli_block(scorer, PARAMS, CLAIMS)
    reference = evaluate_claims(scorer, PARAMS, CLAIMS)
    for key in ("accuracy", "macro_f1", "ece", "majority_accuracy"):
        assert block[key] == pytest.approx(reference[key]), key
    for key in ("n", "other_labels", "predicted"):
        assert block[key] == reference[key], key
    assert block["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    # The DISPUTED claim has a strong passage on each side within the margin: conflicting, so NEI.
    assert block["other_labels"] == {"DISPUTED": {"NOT_ENOUGH_INFO": 1}}


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    index = EvidenceIndex(HashEncoder())
    index.add(
        [
            Passage(id="s1", text="The survey confirms it.", title="Sea"),
            Passage(id="r1", text="The survey denies it.", title="Sea"),
            Passage(id="x1", text="Bananas are yellow fruit.", title="Fruit"),
        ]
    )
    return Retriever(index)


def test_retrieved_evidence_replaces_the_gold_and_recall_counts_decisive_passages(
    retriever: Retriever,
) -> None:
    found = retrieved_claims(retriever, CLAIMS[:2], k=2)
    assert [len(c.evidences) for c in found] == [2, 2]
    assert all(e.title in ("Sea", "Fruit") for c in found for e in c.evidences)
    assert [c.claim_label for c in found] == ["SUPPORTED", "REFUTED"]
    # Decisive gold passages: s1 (claim a) and r1 (claim b); the NEI passage n1 does not count.
    assert gold_recall(CLAIMS[:2], found) == pytest.approx(
        sum(g in {e.id for e in f.evidences} for g, f in [("s1", found[0]), ("r1", found[1])]) / 2
    )


def test_sample_is_a_fixed_subset_that_does_not_follow_the_file_order() -> None:
    assert sample(CLAIMS, None) == CLAIMS
    picked = sample(CLAIMS, 3)
    assert len(picked) == 3 and sample(list(reversed(CLAIMS)), 3) == picked


class ScriptedJudge:
    """Answers SUPPORTED citing the first passage, as an LLM judge through the tools mode would."""

    name = "scripted"

    def __init__(self) -> None:
        self.closed = False

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        verdict = Verdict(label="SUPPORTED", confidence=0.9, citations=(evidence[0].id,), judge=self.name)
        trace = JudgeTrace(
            judge=self.name,
            model="scripted-model",
            mode="tools",
            attempts=2,
            usage={"prompt_tokens": 100, "completion_tokens": 20},
            latency_ms=5.0,
        )
        return Judgement(verdict=verdict, trace=trace)

    async def aclose(self) -> None:
        self.closed = True


def test_a_dry_run_writes_every_block_with_the_result_keys_and_plots(
    retriever: Retriever, tmp_path: Path
) -> None:
    sets = {"covid_fact_gold": CLAIMS[:3], "climate_fever_gold": CLAIMS}
    judge = ScriptedJudge()
    results = run(
        KeywordScorer(),
        PARAMS,
        sets,
        retriever=retriever,
        k=2,
        llm=(judge, {"model": "scripted-model"}),
        llm_limit=2,
    )
    table = write(results, {"nli": {"model": "keyword-scorer", "tuned": True}}, tmp_path)

    saved = json.loads((tmp_path / "verdict_quality.json").read_text())
    assert list(saved) == ["covid_fact_gold", "climate_fever_gold", "climate_fever_e2e", "llm"]
    for block in ("covid_fact_gold", "climate_fever_gold", "climate_fever_e2e"):
        assert {"accuracy", "macro_f1", "ece", "majority_accuracy", "f1_REFUTED"} <= set(saved[block])
    llm = saved["llm"]
    assert judge.closed
    assert llm["model"] == "scripted-model" and llm["limit_per_set"] == 2
    assert [llm[s]["run"]["calls"] for s in ("covid_fact_gold", "climate_fever_gold")] == [2, 2]
    assert {"accuracy", "macro_f1", "ece", "majority_accuracy"} <= set(llm)
    assert llm["covid_fact_gold"]["run"]["modes"] == {"tools": 2}
    assert llm["covid_fact_gold"]["run"]["usage"] == {"completion_tokens": 40, "prompt_tokens": 200}
    assert (
        saved["climate_fever_e2e"]["k"] == 2
        and 0.0 <= saved["climate_fever_e2e"]["gold_evidence_recall"] <= 1
    )
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(
        [f"verdict_quality_{s}.png" for s in ("covid_fact_gold", "climate_fever_gold", "climate_fever_e2e")]
        + [f"verdict_quality_llm_{s}.png" for s in ("covid_fact_gold", "climate_fever_gold")]
    )
    md = (tmp_path / "verdict_quality.md").read_text()
    assert "| nli | climate_fever_e2e |" in md and "scripted-model" in md
    assert table.count("\n") == 6  # header, rule, three NLI rows, two LLM rows


def test_without_an_endpoint_the_llm_block_says_skipped(retriever: Retriever, tmp_path: Path) -> None:
    results = run(
        KeywordScorer(),
        PARAMS,
        {"covid_fact_gold": CLAIMS[:2], "climate_fever_gold": CLAIMS},
        retriever=retriever,
        k=1,
        llm=NO_ENDPOINT,
    )
    write(results, {}, tmp_path)
    saved = json.loads((tmp_path / "verdict_quality.json").read_text())
    assert saved["llm"] == "skipped: no endpoint (set VERIFACT_LLM_BASE_URL and VERIFACT_LLM_MODEL)"
    assert not list(tmp_path.glob("*llm*.png"))


def namespace(**overrides: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "gemma": False,
        "gemma_ctx": 2048,
        "gemma_threads": 1,
        "llm_timeout": 30.0,
        "llm_max_tokens": 128,
        "llm_concurrency": 2,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def test_the_llm_comes_from_the_environment_only_when_url_and_model_are_both_set() -> None:
    from contextlib import ExitStack

    from graph.llm_judge import LLMJudge

    environ = {"VERIFACT_LLM_MODEL": "some-model"}
    with ExitStack() as stack:
        assert choose_llm(namespace(), stack, environ) == NO_ENDPOINT
        environ.update(VERIFACT_LLM_BASE_URL="http://127.0.0.1:9/v1", VERIFACT_LLM_API_KEY="sk-secret")
        chosen = choose_llm(namespace(), stack, environ)
    assert not isinstance(chosen, str)
    judge, info = chosen
    assert isinstance(judge, LLMJudge)
    assert judge.settings.max_tokens == 128 and judge.settings.max_concurrency == 2
    assert judge.settings.api_key == "sk-secret" and judge.settings.base_url == "http://127.0.0.1:9/v1"
    assert info["model"] == "some-model" and "sk-secret" not in json.dumps(info)


def test_run_statistics_count_failures_downgrades_and_invented_citations() -> None:
    def made(label: str, **fields: Any) -> Judgement:
        verdict = Verdict(label=label, confidence=0.0, judge="j", **fields)  # type: ignore[arg-type]
        return Judgement(
            verdict=verdict, trace=JudgeTrace(judge="j", model="m", mode="json_text", attempts=1)
        )

    stats = judgement_stats(
        [
            made("NOT_ENOUGH_INFO", error="JudgeTransportError: no complete reply within 60 s"),
            made("NOT_ENOUGH_INFO", error="JudgeTransportError: no complete reply within 30 s"),
            made(
                "NOT_ENOUGH_INFO", downgraded_reason="SUPPORTED without a citation", invalid_citations=("p9",)
            ),
            made("SUPPORTED", citations=("p1",)),
        ]
    )
    assert (stats["calls"], stats["failed"], stats["downgraded"], stats["invented_citations"]) == (4, 2, 1, 1)
    assert stats["errors"] == {"JudgeTransportError: no complete reply within N s": 2}
    assert stats["modes"] == {"json_text": 4}


def test_the_benchmark_refuses_to_start_without_its_claim_files_and_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.verdict_quality import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--nli-data", str(tmp_path), "--index", str(tmp_path / "no-index"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "covid_claims_test.jsonl" in err and "verifact data nli" in err and "manifest.json" in err
    assert not list(tmp_path.iterdir())
