"""Verifier quality (issue 7): the local NLI verifier on held-out test sets, its latency, data and errors.

    python -m bench.verifier_quality [--model runs/cpu-minilm-nli/model] [--params FILE] [--compare FILE]
        [--nli-data runs/nli-data] [--index runs/retrieval_bench/padded_tuned]
        [--wice /work/shared/data/wice/claim_test.jsonl] [--training-report FILE] [--out bench/results]

Test claims only; temperature, rule and aggregator come from the model's nli_judge.json (or
``--params``), fitted on dev by ``verifact nli tune``. Verdicts are those of `graph.nli_judge.decide_claim`:
the learned aggregator when the settings hold one, else the rule. Blocks of
bench/results/verifier_quality.json (the keys the issue fixes):

- ``covid_fact_gold``, ``climate_fever_gold``, ``climate_fever_e2e``: the sets of `bench.verdict_quality`
  (gold evidence; top ``--k`` hybrid hits from ``--index`` with their retrieval scores). COVID-Fact has
  no NOT_ENOUGH_INFO: its ``macro_f1`` averages F1 over its two gold labels (``macro_f1_3way``, the
  verdict benchmark's figure, also counts NOT_ENOUGH_INFO's F1 of 0, which caps it at 0.67).
- ``wice_test``: WiCE test claims against their cited article. Each article has about 120 sentences,
  too many to score; the passages are the article's 20 sentences with the best BM25 score for the
  claim (the project's stemmed `retrieval.lexical.LexicalIndex`, built per article; the metadata
  title line left out). Binary: SUPPORTED vs anything else (WiCE has no refuted class);
  ``partially_supported`` claims are scored apart, as how often they are called SUPPORTED.
- ``latency_ms_per_claim``: median of 50 runs of scoring one claim with 5 passages and deciding,
  with the model's default backend (int8 ONNX where the model directory holds one; see ``latency``).
- ``training_pairs``: pairs per source of the data the model was trained on, from that data's
  report.json (found through the run's metrics.json, or ``--training-report``).
- ``aggregators``: rule and learned aggregator side by side on the same model outputs (the learned
  one from the settings, else from ``--compare``), for information only: which decides was chosen
  on dev.
- ``errors``: 20 wrong verdicts (5 per set, lowest md5 of the claim id) with their best passages and a
  heuristic reason (`bench.verifier_report`), also in the markdown report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import RESULTS, machine, markdown_table, save
from bench.verdict_metrics import HEADERS, rows, verdict_metrics
from bench.verdict_quality import CLAIM_FILES, gold_recall, open_retriever
from bench.verifier_report import Judged, pick_errors, report
from classifier.metrics import FloatArray, binary_metrics
from graph.nli_calibration import verdict_probabilities
from graph.nli_judge import NLIJudge, NLIJudgeParams, decide_claim, load_params
from graph.nli_model import PairScorer
from graph.nli_records import ClaimRecord, EvidenceRecord, read_claims
from graph.nli_rule import Decision
from graph.nli_tune import claim_texts, score_claims
from graph.schemas import EvidencePassage

NAME = "verifier_quality"
DEFAULT_INDEX = "runs/retrieval_bench/padded_tuned"
DEFAULT_WICE = "/work/shared/data/wice/claim_test.jsonl"
WICE_PASSAGES = 20
WICE_GOLD = {"supported": "SUPPORTED", "not_supported": "NOT_SUPPORTED", "partially_supported": "PARTIAL"}


def judge_claims(
    scorer: PairScorer,
    params: NLIJudgeParams,
    claims: Sequence[ClaimRecord],
    scores: Sequence[Sequence[float]] | None = None,
) -> list[Judged]:
    """Every claim scored in one batched model call and decided as the judge decides."""
    texts = claim_texts(claims)
    empty = Decision("NOT_ENOUGH_INFO", 0.0, 0.0, 0.0, (), "")
    raw = [
        Judged(c, logits, logits, empty, texts[i], list(scores[i]) if scores is not None else None)
        for i, (logits, c) in enumerate(zip(score_claims(scorer, claims), claims, strict=True))
    ]
    return redecide(raw, params, scorer.matrix)


def redecide(judged: Sequence[Judged], params: NLIJudgeParams, matrix: FloatArray) -> list[Judged]:
    """The same claims and model outputs decided under `params` (its temperature and aggregator)."""
    out = []
    for j in judged:
        probs = verdict_probabilities(j.logits, matrix, params.temperature)
        decision = decide_claim(params, probs, j.claim.claim, j.texts, j.scores)[0]
        out.append(dataclasses.replace(j, probs=probs, decision=decision))
    return out


def score_set(name: str, judged: Sequence[Judged]) -> dict[str, Any]:
    """The set's scores: `verdict_metrics` (COVID-Fact's macro-F1 over its two labels), or WiCE's."""
    if name == "wice_test":
        return wice_block(judged)
    m = verdict_metrics(
        [j.claim.claim_label for j in judged],
        [j.decision.label for j in judged],
        [j.decision.confidence for j in judged],
    )
    if name == "covid_fact_gold":
        present = [label for label, n in m["gold"].items() if n]
        gold = [j.claim.claim_label for j in judged]
        base = verdict_metrics(gold, [m["majority_label"]] * len(gold), [1.0] * len(gold))
        m["macro_f1_3way"], m["majority_macro_f1_3way"] = m["macro_f1"], m["majority_macro_f1"]
        m["macro_f1"] = float(np.mean([m[f"f1_{label}"] for label in present]))
        m["majority_macro_f1"] = float(np.mean([base[f"f1_{label}"] for label in present]))
        m["macro_f1_over"] = present
    return m


def retrieve(
    retriever: Any, claims: Sequence[ClaimRecord], k: int
) -> tuple[list[ClaimRecord], list[list[float]]]:
    """The claims with their top `k` retrieved passages instead of gold evidence, and the hits' scores."""
    hits = retriever.search_batch([c.claim for c in claims], k=k)
    found = [
        ClaimRecord(
            c.claim_id,
            c.claim,
            c.claim_label,
            c.source,
            tuple(EvidenceRecord(h.passage.id, h.passage.text, h.passage.title) for h in row),
        )
        for c, row in zip(claims, hits, strict=True)
    ]
    return found, [[float(h.score) for h in row] for row in hits]


def wice_claims(path: Path, n_passages: int = WICE_PASSAGES) -> tuple[list[ClaimRecord], dict[str, float]]:
    """WiCE claims with their article's best BM25 sentences as evidence, and how much gold they keep."""
    from retrieval.index import IndexConfig
    from retrieval.lexical import LexicalIndex
    from retrieval.types import Passage

    bm25 = IndexConfig()  # the BM25 settings a new index gets
    claims, whole_set, found, total = [], 0, 0, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        sentences = [(i, s) for i, s in enumerate(row["evidence"]) if i > 0 and s.strip()]
        lexical = LexicalIndex(k1=bm25.bm25_k1, b=bm25.bm25_b)
        lexical.build(((i, Passage(id=str(i), text=s)) for i, s in sentences), with_title=False)
        chosen = [i for i, _ in lexical.search([row["claim"]], n_passages)[0]]
        chosen = chosen or [i for i, _ in sentences[:n_passages]]
        gold_sets = [set(s) for s in row["supporting_sentences"]]
        whole_set += any(s <= set(chosen) for s in gold_sets)
        union = set().union(*gold_sets) if gold_sets else set()
        found, total = found + len(union & set(chosen)), total + len(union)
        evidences = tuple(EvidenceRecord(f"{row['meta']['id']}:{i}", row["evidence"][i]) for i in chosen)
        claims.append(
            ClaimRecord(row["meta"]["id"], row["claim"], WICE_GOLD[row["label"]], "wice", evidences)
        )
    with_sets = sum(c.claim_label != "NOT_SUPPORTED" for c in claims)
    recall = {
        "claims_with_a_whole_gold_set": whole_set / with_sets if with_sets else 0.0,
        "gold_sentences_kept": found / total if total else 0.0,
    }
    return claims, recall


def wice_block(judged: Sequence[Judged]) -> dict[str, Any]:
    """Supported vs not_supported scores, and what partially_supported claims were called."""
    binary = [j for j in judged if j.claim.claim_label != "PARTIAL"]
    gold = np.array([j.claim.claim_label == "SUPPORTED" for j in binary], dtype=np.int64)
    said = np.array([j.decision.label == "SUPPORTED" for j in binary], dtype=np.int64)
    sup, nsup = binary_metrics(gold, said), binary_metrics(1 - gold, 1 - said)
    majority = max(gold.mean(), 1 - gold.mean()) if len(gold) else 0.0
    partial = Counter(j.decision.label for j in judged if j.claim.claim_label == "PARTIAL")
    n_partial = sum(partial.values())
    return {
        "n": len(binary),
        "gold": {"supported": int(gold.sum()), "not_supported": int(len(gold) - gold.sum())},
        "accuracy": float(np.mean(gold == said)) if len(gold) else 0.0,
        "macro_f1": (sup["f1"] + nsup["f1"]) / 2,
        "f1_supported": sup["f1"],
        "f1_not_supported": nsup["f1"],
        "majority_accuracy": float(majority),
        "predicted": dict(Counter(j.decision.label for j in binary)),
        "partially_supported": {
            "n": n_partial,
            "predicted": dict(partial),
            "called_supported": partial["SUPPORTED"] / n_partial if n_partial else 0.0,
        },
    }


def latency(judge: NLIJudge, claim: ClaimRecord, runs: int = 50) -> dict[str, Any]:
    """Median milliseconds to score one claim against 5 passages and decide, after 3 warm-up runs."""
    passages = [EvidencePassage(id=e.id, text=e.text, title=e.title) for e in claim.evidences[:5]]
    times = []
    for i in range(runs + 3):
        started = time.perf_counter()
        judge.decide(judge.probabilities(claim.claim, passages), claim.claim, passages)
        if i >= 3:
            times.append((time.perf_counter() - started) * 1000.0)
    backend = _backend_name(judge.scorer)
    return {
        "median_ms": statistics.median(times),
        "p90_ms": float(np.percentile(times, 90)),
        "backend": backend,
    }


def training_pairs(model: Path, report: Path | None) -> tuple[dict[str, int], dict[str, Any]]:
    """Training pairs per source, from the report.json of the data the model was trained on."""
    extra: list[str] = []
    if report is None:
        run = json.loads((model.parent / "metrics.json").read_text(encoding="utf-8"))
        data = run["config"]["data"]
        report, extra = Path(data["data_dir"]) / "report.json", list(data.get("extra_train_files") or [])
    content = json.loads(report.read_text(encoding="utf-8"))
    # verifact data verifier writes train.by_source; verifact data nli writes files["train.tsv"].by_source.
    by_source = (content.get("train") or content["files"]["train.tsv"])["by_source"]
    counts = {source: int(sum(labels.values())) for source, labels in by_source.items()}
    return counts, {"report": str(report), "by_source": by_source, "extra_train_files": extra}


def _backend_name(scorer: Any) -> str:
    """The backend a scorer runs on; for an ensemble, its members' in order."""
    members = getattr(scorer, "members", None)
    if members is not None:
        return "ensemble of " + ", ".join(_backend_name(m) for m in members)
    return type(getattr(getattr(scorer, "classifier", None), "backend", None)).__name__


def main(argv: Sequence[str] | None = None) -> None:
    """Run every block and write bench/results/verifier_quality.{json,md}."""
    from graph.nli_model import NLISettings

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="runs/cpu-minilm-nli/model", help="NLI model directory")
    parser.add_argument("--params", help="nli_judge.json to use (default: the model directory's)")
    parser.add_argument(
        "--compare", help="an nli_judge.json with a learned aggregator, shown beside the rule"
    )
    parser.add_argument("--nli-data", default="runs/nli-data", help="claim files of `verifact data nli`")
    parser.add_argument("--index", default=DEFAULT_INDEX, help="saved evidence index for climate_fever_e2e")
    parser.add_argument("--wice", default=DEFAULT_WICE, help="WiCE claim_test.jsonl")
    parser.add_argument("--training-report", type=Path, help="report.json of the training data")
    parser.add_argument("--k", type=int, default=5, help="passages retrieved per claim (default: 5)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go (default: bench/results)")
    ns = parser.parse_args(argv)

    judge = NLIJudge.load(NLISettings(model=ns.model, params_file=ns.params))
    scorer, params = judge.scorer, judge.params
    sets = {name: read_claims(Path(ns.nli_data) / f) for name, f in CLAIM_FILES.items()}
    retriever, about_index = open_retriever(ns.index, "auto")
    found, hit_scores = retrieve(retriever, sets["climate_fever_gold"], ns.k)
    wice, wice_recall = wice_claims(Path(ns.wice))
    judged = {
        "covid_fact_gold": judge_claims(scorer, params, sets["covid_fact_gold"]),
        "climate_fever_gold": judge_claims(scorer, params, sets["climate_fever_gold"]),
        "climate_fever_e2e": judge_claims(scorer, params, found, hit_scores),
        "wice_test": judge_claims(scorer, params, wice),
    }
    results: dict[str, Any] = {name: score_set(name, js) for name, js in judged.items()}
    results["climate_fever_e2e"].update(
        evidence=f"top {ns.k} retrieved (hybrid, with scores)",
        gold_evidence_recall=gold_recall(sets["climate_fever_gold"], found),
        index=about_index,
    )
    results["wice_test"]["evidence"] = wice_recall
    timing = latency(judge, next(c for c in sets["climate_fever_gold"] if len(c.evidences) >= 5))
    results["latency_ms_per_claim"] = timing["median_ms"]
    results["training_pairs"], training = training_pairs(Path(ns.model), ns.training_report)
    variants = {"rule": params.model_copy(update={"aggregator": None})}
    other = load_params(ns.compare) if ns.compare else None
    learned = params if params.aggregator else other if other and other.aggregator else None
    if learned is not None:
        variants["learned"] = learned
    results["aggregators"] = {
        name: {
            f"{variant}_{key}": score_set(name, redecide(js, p, scorer.matrix))[key]
            for variant, p in variants.items()
            for key in ("accuracy", "macro_f1")
        }
        for name, js in judged.items()
    }
    chosen = pick_errors(judged, per_set=5, gold_sets=sets["climate_fever_gold"])
    results["errors"] = chosen
    aggregation = params.dev_metrics.get("aggregation", {})
    about = {
        "model": ns.model,
        "aggregator": params.aggregator_name,
        "chosen": aggregation.get("chosen", "rule (settings predate the learned aggregator)"),
        "dev": aggregation.get("cross_validated", {}),
        "latency": timing,
        "training": training,
        "wice_passages": WICE_PASSAGES,
        "machine": machine(),
    }
    results["about"] = {k: v for k, v in about.items() if k != "machine"}
    save(NAME, results, report(results, about), directory=ns.out)
    print(markdown_table(HEADERS, rows(results)))


if __name__ == "__main__":
    main()
