"""Encoder tuning tries, scored on Climate-FEVER dev claims; the chosen one goes to retrieval_quality.

    python -m bench.retrieval_tune [--data-dir ../shared/data] [--tries all|NAME,...] [--keep] [--reuse]

Each try fine-tunes the packaged MiniLM (retrieval.tune) into runs/encoders/<try>, indexes the
Climate-FEVER corpus with it, and scores the dev claims. Test claims are never looked at here.
``--reuse`` scores an encoder already trained into runs/encoders/<try> instead of training it again.
Writes bench/results/retrieval_tune.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.report import RESULTS, markdown_table, save
from bench.retrieval_quality import evaluate
from retrieval.climate_fever import corpus_passages, load_claims
from retrieval.encoder import PACKAGED_ENCODER, load_encoder
from retrieval.index import EvidenceIndex
from retrieval.tune import REPORT_FILE, TuneConfig, labelled_pairs, tune_encoder

OLD = TuneConfig(epochs=2, learning_rate=2e-5)
"""The recipe before the cross-fitted comparison."""
TRIES: dict[str, tuple[tuple[str, ...], TuneConfig]] = {
    "cf_only": (("climate-fever",), OLD),
    "cf_nohard": (("climate-fever",), replace(OLD, hard_negatives=False)),
    "all_sources": (("climate-fever", "covid-fact", "wice"), OLD),
    "all_sources_1ep": (("climate-fever", "covid-fact", "wice"), replace(OLD, epochs=1)),
    "cf_4ep": (("climate-fever",), TuneConfig()),
}
CHOSEN = "cf_4ep"
"""The encoder retrieval_quality uses: today's TuneConfig defaults, picked on 837 cross-fitted claims
(retrieval_tune.md), not by the dev column of this table (124 claims, too few to choose with)."""
OUT = Path("runs/encoders")


def dev_scores(encoder_name: str, data_dir: Path) -> dict[str, Any]:
    """Dense/BM25/hybrid metrics of the dev claims over the Climate-FEVER corpus."""
    encoder = load_encoder(encoder_name)
    index = EvidenceIndex(encoder)
    index.add(corpus_passages(data_dir))
    claims = [c for c in load_claims(data_dir, "dev") if c.gold_ids]
    return evaluate(index, claims)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the tries and write the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--tries", default="all")
    parser.add_argument("--keep", action="store_true", help="add to the tries already in the report")
    parser.add_argument("--reuse", action="store_true", help="score encoders already in runs/encoders")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = Path(ns.data_dir)
    names = list(TRIES) if ns.tries == "all" else ns.tries.split(",")
    previous = RESULTS / "retrieval_tune.json"
    results: dict[str, Any] = {"split": "dev", "tries": {}}
    if ns.keep and previous.exists():
        results = json.loads(previous.read_text())
    if "plain" not in results["tries"]:
        results["tries"]["plain"] = {"dev": dev_scores(PACKAGED_ENCODER, data)}
    for name in names:
        sources, config = TRIES[name]
        started = time.perf_counter()
        saved = OUT / name / REPORT_FILE
        if ns.reuse and saved.exists():
            report = json.loads(saved.read_text())
            started -= float(report["seconds"])  # the try's time still counts its training
        else:
            report = tune_encoder(
                PACKAGED_ENCODER, labelled_pairs(data, sources, config.hard_negatives), OUT / name, config
            )
        results["tries"][name] = {
            "sources": sources,
            "train": report,
            "dev": dev_scores(str(OUT / name), data),
        }
        results["tries"][name]["seconds"] = round(time.perf_counter() - started, 1)
    rows = [
        [name, t["dev"][mode]["recall@5"], t["dev"][mode]["recall@100"], t["dev"][mode]["mrr"], mode]
        for name, t in results["tries"].items()
        for mode in ("dense", "hybrid")
    ]
    table = markdown_table(["try", "dev recall@5", "dev recall@100", "dev MRR", "mode"], rows)
    print(table)
    tuned = [n for n in results["tries"] if n != "plain"]
    best = max(tuned, key=lambda n: results["tries"][n]["dev"]["hybrid"]["recall@5"])
    results["chosen"] = CHOSEN if CHOSEN in results["tries"] else best
    results["best_on_dev"] = best
    why = "the recipe chosen on cross-fitted claims, below" if results["chosen"] == CHOSEN else "best on dev"
    save(
        "retrieval_tune",
        results,
        "# Encoder tuning tries (Climate-FEVER dev claims, Climate-FEVER corpus)\n\n"
        f"{table}\n\nBest on dev hybrid recall@5: {best}. Used by retrieval_quality: **{results['chosen']}** "
        f"({why}).\n" + kept_notes(RESULTS / "retrieval_tune.md"),
    )


def kept_notes(path: Path) -> str:
    """The hand-written ``## `` sections below the generated table, so a rerun does not erase them."""
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    at = text.find("\n## ")
    return "" if at < 0 else text[at:]


if __name__ == "__main__":
    main()
