"""Verdict quality: the NLI verifier with gold and retrieved evidence, and the LLM judge when there is one.

    python -m bench.verdict_quality [--model runs/cpu-minilm-nli/model] [--nli-data runs/nli-data]
        [--index runs/retrieval_bench/padded_plain] [--k 5] [--gemma] [--llm-limit N] [--out DIR]

(``make bench-verdict``, ``make bench-verdict ARGS=--gemma``.) It needs the claim files, a trained
model tuned with ``verifact nli tune`` (an untuned one is scored with a warning), and the index.

Sets (the claim files of ``verifact data nli``; test claims only, nothing here is tuned):

- ``covid_fact_gold``: the NLI verifier on the COVID-Fact official test split with its gold evidence
  (SUPPORTED / REFUTED only: COVID-Fact has no NOT_ENOUGH_INFO).
- ``climate_fever_gold``: the NLI verifier on the Climate-FEVER test claims (md5 split) with their
  five annotated evidence sentences, 3-way. DISPUTED claims keep their label in the claim files, as
  `graph.nli_data` documents: it is none of the three verdicts, so they are left out of every
  score and what the verifier answered for them is reported under ``other_labels``.
- ``climate_fever_e2e``: the same claims with the top ``--k`` passages that `retrieval.Retriever`
  (hybrid) finds in a saved index instead of the gold evidence. The default index is the padded
  corpus of ``bench.retrieval_quality`` (Climate-FEVER's 5,240 sentences plus COVID-Fact and WiCE
  distractors, ``runs/retrieval_bench/padded_plain``): the realistic case, where the evidence is
  among unrelated passages. Its manifest is recorded with the results.
- ``llm``: the LLM judge on the two gold sets, when ``VERIFACT_LLM_BASE_URL`` and
  ``VERIFACT_LLM_MODEL`` are set (``VERIFACT_LLM_API_KEY`` if the server needs one), or with
  ``--gemma``, which starts the packaged Gemma 3 270M under llama.cpp itself (`bench.llama_server`)
  and records it as the floor: the model is too weak to judge (``--gemma`` wins over the variables).
  Otherwise the block says why it was skipped. ``--llm-limit N`` judges N claims per set (a fixed
  sample: lowest md5 of the claim id; 30 by default with ``--gemma``, about 25 s a claim on 1 thread).

Every block has accuracy, macro-F1, per-class F1, ECE and the majority-class baseline
(`bench.verdict_metrics.verdict_metrics`). Writes bench/results/verdict_quality.{json,md} and one
confusion-matrix PNG per block (verdict_quality_<set>.png).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

from bench.report import RESULTS, machine
from bench.verdict_llm import GEMMA_DEFAULT_LIMIT, choose_llm, llm_block, sample
from bench.verdict_metrics import LLM_SETS, SETS, verdict_metrics, write
from graph.judges import Judge
from graph.nli_calibration import verdict_probabilities
from graph.nli_judge import NLIJudgeParams
from graph.nli_model import PairScorer
from graph.nli_records import ClaimRecord, EvidenceRecord, read_claims
from graph.nli_rule import aggregate
from graph.nli_tune import score_claims

Backend = Literal["auto", "torch", "onnx"]
DEFAULT_MODEL = "runs/cpu-minilm-nli/model"
DEFAULT_NLI_DATA = "runs/nli-data"
DEFAULT_INDEX = "runs/retrieval_bench/padded_plain"
CLAIM_FILES = {"covid_fact_gold": "covid_claims_test.jsonl", "climate_fever_gold": "cf_claims_test.jsonl"}


def nli_block(scorer: PairScorer, params: NLIJudgeParams, claims: Sequence[ClaimRecord]) -> dict[str, Any]:
    """The NLI verifier's scores on claims: one batched model call, then the tuned rule per claim."""
    started = time.perf_counter()
    decisions = [
        aggregate(verdict_probabilities(lp, scorer.matrix, params.temperature), params.rule)
        for lp in score_claims(scorer, claims)
    ]
    metrics = verdict_metrics(
        [c.claim_label for c in claims], [d.label for d in decisions], [d.confidence for d in decisions]
    )
    return {**metrics, "seconds": round(time.perf_counter() - started, 2)}


def retrieved_claims(retriever: Any, claims: Sequence[ClaimRecord], k: int) -> list[ClaimRecord]:
    """The claims with their gold evidence replaced by the top `k` hits of `retriever` (a `Retriever`)."""
    hits = retriever.search_batch([c.claim for c in claims], k=k)
    return [
        ClaimRecord(
            c.claim_id,
            c.claim,
            c.claim_label,
            c.source,
            tuple(EvidenceRecord(h.passage.id, h.passage.text, h.passage.title) for h in row),
        )
        for c, row in zip(claims, hits, strict=True)
    ]


def gold_recall(gold: Sequence[ClaimRecord], retrieved: Sequence[ClaimRecord]) -> float:
    """Share of the decisive gold passages (labelled SUPPORTED or REFUTED) found among the retrieved ones."""
    found = total = 0
    for g, r in zip(gold, retrieved, strict=True):
        wanted = {e.id for e in g.evidences if e.label in ("SUPPORTED", "REFUTED")}
        found += len(wanted & {e.id for e in r.evidences})
        total += len(wanted)
    return found / total if total else 0.0


def load_nli(model: str, backend: Backend) -> tuple[PairScorer, NLIJudgeParams, dict[str, Any]]:
    """The pair model and its tuned settings, and what the report records about them."""
    from graph.nli_judge import NLIJudge
    from graph.nli_model import NLISettings

    judge = NLIJudge.load(NLISettings(model=model, backend=backend))
    about = {
        **judge.scorer.describe(),
        "temperature": judge.params.temperature,
        "rule": judge.params.rule.model_dump(),
        "tuned": judge.params.tuned,
    }
    return judge.scorer, judge.params, about


def open_retriever(index_dir: str, backend: Backend) -> tuple[Any, dict[str, Any]]:
    """A hybrid `Retriever` over the saved index, with the manifest facts the report records."""
    from retrieval.encoder import load_encoder
    from retrieval.index import EvidenceIndex
    from retrieval.retriever import Retriever

    manifest = EvidenceIndex.read_manifest(index_dir)
    encoder = load_encoder(str(manifest["encoder"]["name"]), backend)
    about = {key: manifest.get(key) for key in ("encoder", "count", "index_type", "content_hash", "built_at")}
    return Retriever(EvidenceIndex.load(index_dir, encoder)), {"dir": index_dir, **about}


def run(
    scorer: PairScorer,
    params: NLIJudgeParams,
    sets: dict[str, list[ClaimRecord]],
    *,
    retriever: Any,
    k: int,
    llm: tuple[Judge, dict[str, Any]] | str,
    llm_limit: int | None = None,
    about: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every block of the result file, in its shape: the three NLI sets, then ``llm``.

    Args:
        scorer: The NLI pair model.
        params: Its temperature and aggregation rule.
        sets: ``covid_fact_gold`` and ``climate_fever_gold`` test claims with gold evidence.
        retriever: A `retrieval.Retriever` for ``climate_fever_e2e``.
        k: Passages retrieved per claim.
        llm: The LLM judge and what to record about it, or the reason it was skipped.
        llm_limit: Claims per set for the LLM judge; None for all.
        about: Facts recorded in each NLI block (model, index).
    """
    extra = about or {}
    results: dict[str, Any] = {}
    for name in ("covid_fact_gold", "climate_fever_gold"):
        results[name] = {**nli_block(scorer, params, sets[name]), "evidence": "gold", **extra.get(name, {})}
    gold = sets["climate_fever_gold"]
    found = retrieved_claims(retriever, gold, k)
    results["climate_fever_e2e"] = {
        **nli_block(scorer, params, found),
        "evidence": f"top {k} retrieved (hybrid)",
        "k": k,
        "gold_evidence_recall": gold_recall(gold, found),
        **extra.get("climate_fever_e2e", {}),
    }
    if isinstance(llm, str):
        results["llm"] = llm
    else:
        judge, info = llm
        chosen = {name: sample(sets[name], llm_limit) for name in LLM_SETS}
        results["llm"] = {**info, "limit_per_set": llm_limit, **llm_block(judge, chosen)}
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and write the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="NLI model directory (default: %(default)s)")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    parser.add_argument("--nli-data", default=DEFAULT_NLI_DATA, help="claim files of `verifact data nli`")
    parser.add_argument("--index", default=DEFAULT_INDEX, help="saved evidence index for climate_fever_e2e")
    parser.add_argument(
        "--k", type=int, default=5, help="passages retrieved per claim (default: %(default)s)"
    )
    parser.add_argument("--gemma", action="store_true", help="start the packaged Gemma server as the LLM")
    parser.add_argument("--gemma-ctx", type=int, default=2048, help="its context size (default: %(default)s)")
    parser.add_argument("--gemma-threads", type=int, default=1, help="its CPU threads (default: %(default)s)")
    parser.add_argument(
        "--llm-limit", type=int, help=f"claims per set for the LLM ({GEMMA_DEFAULT_LIMIT} with --gemma)"
    )
    parser.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per LLM request")
    parser.add_argument("--llm-max-tokens", type=int, default=256, help="generated tokens per LLM request")
    parser.add_argument("--llm-concurrency", type=int, default=4, help="LLM requests in flight (endpoints)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go (default: bench/results)")
    ns = parser.parse_args(argv)

    data = Path(ns.nli_data)
    files = {name: data / f for name, f in CLAIM_FILES.items()}
    missing = [str(p) for p in [*files.values(), Path(ns.index) / "manifest.json"] if not p.is_file()]
    if missing:
        parser.error(
            f"missing {missing}: build the claim files with `verifact data nli` and the index with "
            "`python -m bench.retrieval_quality --blocks padded` (or pass --nli-data / --index)"
        )
    sets = {name: read_claims(path) for name, path in files.items()}
    scorer, params, about_nli = load_nli(ns.model, ns.backend)
    if not params.tuned:
        print(
            f"warning: {ns.model} has no nli_judge.json; run `verifact nli tune` first (scores are untuned)"
        )
    retriever, about_index = open_retriever(ns.index, ns.backend)
    about = {name: {"nli": about_nli} for name in SETS}
    about["climate_fever_e2e"]["index"] = about_index
    with ExitStack() as stack:
        llm = choose_llm(ns, stack, os.environ)
        limit = GEMMA_DEFAULT_LIMIT if ns.gemma and ns.llm_limit is None else ns.llm_limit
        results = run(
            scorer, params, sets, retriever=retriever, k=ns.k, llm=llm, llm_limit=limit, about=about
        )
    print(write(results, {"nli": about_nli, "machine": machine()}, ns.out))


if __name__ == "__main__":
    main()
