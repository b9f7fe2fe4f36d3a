"""Check-worthiness quality on CT24: every training try, both engines, ensembles, a lexical baseline.

Rules: dev_test is only ever reported, never used to choose a checkpoint, a threshold or a setting.
Dev-tuned tries take their threshold from dev; drift-aware tries take checkpoint and threshold from
the newest 10% of train debates. The headline is SELECTED, the ensemble of a replication that was
committed before it ran; without its runs, the try with the best dev F1.

    python bench/classifier_quality.py [--data-dir ../shared/data] [--reuse] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import RESULTS, machine, markdown_table, save

CONFIG = "configs/cpu-minilm.json"
HOLDOUT = "Sentence_id:0.1"
DRIFT_CONFIG = "configs/cpu-minilm-drift.json"
"""CONFIG with the drift-aware overrides below (a test keeps the two in step)."""
DRIFT = {"validation_holdout": HOLDOUT, "test_file": "ct24_checkworthy_en/dev.tsv"}
RUNS = Path("runs/quality")
REPLICATION_SEEDS = (101, 202, 303)
SELECTED = "ensemble_replication"
"""The headline: fixed before its runs started (see the replication tries below)."""


@dataclass(frozen=True)
class Try:
    """One training recipe: overrides on top of the run file."""

    name: str
    why: str
    overrides: dict[str, Any] = field(default_factory=dict)
    own_threshold: bool = False
    """Use the threshold stored with the model (tuned on its own validation split), not dev's."""


TRIES = [
    Try("trainer", "the seed's recipe through the HF Trainer (run file as is)"),
    Try("custom_loop", "the same run file through our accelerate loop", {"engine": "custom_loop"}),
    Try(
        "sqrt_weights",
        "sqrt inverse-frequency class weights, 3 epochs",
        {"class_weighting": "sqrt", "num_train_epochs": 3},
    ),
    Try("seed7", "the seed recipe with another seed (for the ensemble)", {"seed": 7}),
    Try(
        "clef_positives",
        "plus the 673 CLEF 2019/2020 debate lines fact-checkers chose (label 1 only: their 0 means "
        "'not chosen', not 'not check-worthy'), de-duplicated against train, dev and dev_test",
        {
            "extra_train_files": [
                "clef2019_t1_debates_en/train.csv|text|label|1",
                "clef2020_t5_debates_en/train.tsv|text|label|1",
            ],
            "label_aliases": '{"1": "Yes", "0": "No"}',
        },
    ),
    Try(
        "newest_holdout",
        "checkpoint and threshold chosen on the newest 10% of train debates (by Sentence_id, which "
        "follows the debates' dates) instead of dev, so the choices face the drift new debates bring",
        DRIFT,
        own_threshold=True,
    ),
    Try(
        "newest_holdout_seed7",
        "newest_holdout with another seed (for its ensemble)",
        {**DRIFT, "seed": 7},
        own_threshold=True,
    ),
    Try(
        "newest_holdout_seed13",
        "newest_holdout with a third seed: two seeds gave 0.82 and 0.90 on dev_test, too wide to read",
        {**DRIFT, "seed": 13},
        own_threshold=True,
    ),
    # The replication below was written down and committed before any of its runs started: the
    # drift-aware protocol (the three runs above plus their ensemble) was shaped after dev_test had
    # been seen, so its own numbers cannot be the headline. Three fresh seeds, nothing else changed,
    # reported whatever they give; their ensemble is the headline (SELECTED).
    *(
        Try(
            f"replication_seed{seed}",
            f"pre-registered replication of the drift-aware protocol: newest_holdout, fresh seed {seed}",
            {**DRIFT, "seed": seed},
            own_threshold=True,
        )
        for seed in REPLICATION_SEEDS
    ),
]
# name -> (members, where the ensemble's threshold is tuned: "dev" or "newest" train holdout)
ENSEMBLES = {
    "ensemble_seeds": (["trainer", "seed7"], "dev"),
    "ensemble_all": (["trainer", "custom_loop", "sqrt_weights", "seed7", "clef_positives"], "dev"),
    "ensemble_newest2": (["newest_holdout", "newest_holdout_seed7"], "newest"),
    "ensemble_newest": (["newest_holdout", "newest_holdout_seed7", "newest_holdout_seed13"], "newest"),
    SELECTED: ([f"replication_seed{s}" for s in REPLICATION_SEEDS], "newest"),
}


def _read(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r["Text"] for r in rows], np.array([r["class_label"] == "Yes" for r in rows], dtype=np.int64)


def _scores(f1_probs: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    from classifier.metrics import binary_metrics

    m = binary_metrics(y, (f1_probs >= threshold).astype(np.int64))
    return {**m, "threshold": threshold}


def _evaluate(
    name: str,
    dev_p: np.ndarray,
    test_p: np.ndarray,
    dev_y: np.ndarray,
    test_y: np.ndarray,
    why: str,
    seconds: float | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Scores on dev and dev_test at ``threshold``, or at the dev-tuned one when it is None."""
    from classifier.metrics import tune_threshold

    t = threshold if threshold is not None else tune_threshold(dev_p, dev_y)[0]
    return {
        "name": name,
        "why": why,
        "threshold_tuned_on": "dev" if threshold is None else "newest train holdout",
        "train_seconds": seconds,
        "dev": _scores(dev_p, dev_y, t),
        "dev_test": _scores(test_p, test_y, t),
        "dev_at_0.5": _scores(dev_p, dev_y, 0.5),
        "dev_test_at_0.5": _scores(test_p, test_y, 0.5),
    }


def _train(t: Try, data_dir: str, reuse: bool) -> tuple[Path, float | None]:
    from classifier.args import parse_run_config
    from classifier.train import run_training

    out = RUNS / t.name
    metrics = out / "metrics.json"
    if reuse and metrics.is_file():
        return out / "model", json.loads(metrics.read_text()).get("train_seconds")
    overrides = {"data_dir": data_dir, "output_dir": str(out), **t.overrides}
    summary = run_training(parse_run_config(CONFIG, overrides))
    assert summary is not None
    return out / "model", summary["train_seconds"]


def _newest_holdout(data_dir: str) -> tuple[list[str], np.ndarray]:
    """The newest-train holdout the own-threshold tries tuned on: texts and is-Yes labels."""
    from classifier.args import parse_run_config
    from classifier.data import load_dataset

    cfg = parse_run_config(CONFIG, {"data_dir": data_dir, "validation_holdout": HOLDOUT, "test_file": None})
    holdout = load_dataset(cfg.data).validation
    assert holdout is not None
    return list(holdout.texts), np.asarray(holdout.labels, dtype=np.int64)


def _selected_ensemble(
    members: list[Path],
    holdout: tuple[list[str], np.ndarray] | None,
    dev_x: list[str],
    test_x: list[str],
) -> tuple[np.ndarray, np.ndarray, float]:
    """Write RUNS/SELECTED as an ensemble tuned on the newest holdout; its dev and dev_test scores."""
    from classifier.ensemble import build_ensemble
    from classifier.predict import CheckWorthinessClassifier

    assert holdout is not None
    tune = (holdout[0], [int(y) for y in holdout[1]])
    where = f"newest 10% of CT24 train by Sentence_id ({HOLDOUT})"
    spec = build_ensemble(members, RUNS / SELECTED, tune, where, backend="torch")
    ensemble = CheckWorthinessClassifier.load(RUNS / SELECTED, backend="torch")
    return ensemble.probabilities(dev_x)[:, 1], ensemble.probabilities(test_x)[:, 1], float(spec["threshold"])


def _lexical(
    train: tuple[list[str], np.ndarray], dev: list[str], test: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x = vec.fit_transform(train[0])
    clf = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced").fit(x, train[1])
    return clf.predict_proba(vec.transform(dev))[:, 1], clf.predict_proba(vec.transform(test))[:, 1]


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in results]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(names)), 4))
    ax.bar(x - 0.2, [r["dev"]["f1"] for r in results], 0.4, label="dev (threshold tuned here)")
    ax.bar(x + 0.2, [r["dev_test"]["f1"] for r in results], 0.4, label="dev_test (reported only)")
    ax.axhline(0.84, color="red", linestyle="--", linewidth=1, label="target 0.84")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylim(0.5, 1.08)
    ax.set_ylabel("F1 (Yes)")
    ax.legend(loc="upper center", ncol=3, fontsize="small")
    ax.set_title("CT24 check-worthiness: every try")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Train (or reuse) every try, evaluate, and write the report."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--reuse", action="store_true", help="reuse finished runs under runs/quality")
    ap.add_argument("--only", nargs="*", help="train only these tries")
    ns = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from classifier.metrics import tune_threshold
    from classifier.predict import CheckWorthinessClassifier

    ct24 = Path(ns.data_dir) / "ct24_checkworthy_en"
    train = _read(ct24 / "train.tsv")
    dev_x, dev_y = _read(ct24 / "dev.tsv")
    test_x, test_y = _read(ct24 / "dev_test.tsv")

    results: list[dict[str, Any]] = []
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    holdout: tuple[list[str], np.ndarray] | None = None  # read once, when a try needs it
    holdout_probs: dict[str, np.ndarray] = {}
    started = time.time()
    lex_dev, lex_test = _lexical(train, dev_x, test_x)
    probs["tfidf_lr"] = (lex_dev, lex_test)
    results.append(
        _evaluate("tfidf_lr", lex_dev, lex_test, dev_y, test_y, "TF-IDF 1-2 grams + logistic regression")
    )
    for t in TRIES:
        if ns.only and t.name not in ns.only and not (RUNS / t.name / "metrics.json").is_file():
            continue
        model_dir, seconds = _train(t, ns.data_dir, ns.reuse or bool(ns.only and t.name not in ns.only))
        clf = CheckWorthinessClassifier.load(model_dir, backend="torch")
        dp, tp = clf.probabilities(dev_x)[:, 1], clf.probabilities(test_x)[:, 1]
        probs[t.name] = (dp, tp)
        own = clf.threshold if t.own_threshold else None
        if t.own_threshold:
            holdout = holdout or _newest_holdout(ns.data_dir)
            holdout_probs[t.name] = clf.probabilities(holdout[0])[:, 1]
        results.append(_evaluate(t.name, dp, tp, dev_y, test_y, t.why, seconds, own))
        last = results[-1]
        print(f"{t.name}: dev F1 {last['dev']['f1']:.4f}  dev_test F1 {last['dev_test']['f1']:.4f}")
    for name, (members, tune_on) in ENSEMBLES.items():
        if not all(m in probs for m in members):
            continue
        why = "mean probability of " + ", ".join(members)
        if tune_on == "newest":
            why += "; threshold tuned on the newest 10% of train"
        threshold = None
        if name == SELECTED:
            # The headline goes through the product: an ensemble directory that `verifact evaluate`,
            # `predict` and the service load like any model.
            dp, tp, threshold = _selected_ensemble(
                [RUNS / m / "model" for m in members], holdout, dev_x, test_x
            )
            why += f"; scored as the ensemble directory {RUNS / name}"
        else:
            dp = np.mean([probs[m][0] for m in members], axis=0)
            tp = np.mean([probs[m][1] for m in members], axis=0)
            if tune_on == "newest":
                assert holdout is not None
                mean = np.mean([holdout_probs[m] for m in members], axis=0)
                threshold = tune_threshold(mean, holdout[1])[0]
        results.append(_evaluate(name, dp, tp, dev_y, test_y, why, threshold=threshold))

    neural = [r for r in results if r["name"] != "tfidf_lr"]
    chosen = [r for r in results if r["name"] == SELECTED]
    best_dev = max((r for r in neural if r["threshold_tuned_on"] == "dev"), key=lambda r: r["dev"]["f1"])
    best = chosen[0] if chosen else best_dev
    rule = (
        "the drift-aware protocol re-run with fresh seeds, fixed before the runs started"
        if chosen
        else "highest dev F1 at the dev-tuned threshold"
    )
    engines = {
        e: {"dev_test_f1": r["dev_test"]["f1"], "dev_f1": r["dev"]["f1"], "train_seconds": r["train_seconds"]}
        for e in ("trainer", "custom_loop")
        for r in results
        if r["name"] == e
    }
    payload = {
        "dev_test": best["dev_test"],
        "dev": best["dev"],
        "selected": best["name"],
        "selection_rule": rule + "; dev_test never used for a choice",
        "engines": engines,
        "model": "packaged:all-MiniLM-L6-v2",
        "config": DRIFT_CONFIG if chosen else CONFIG,
        "tries": results,
        "machine": machine(),
        "seconds": round(time.time() - started, 1),
    }
    headers = [
        "try",
        "dev F1",
        "dev_test F1",
        "dev_test P",
        "dev_test R",
        "dev_test acc",
        "threshold",
        "dev_test F1 @0.5",
        "train s",
        "what",
    ]
    rows = [
        [
            r["name"],
            r["dev"]["f1"],
            r["dev_test"]["f1"],
            r["dev_test"]["precision"],
            r["dev_test"]["recall"],
            r["dev_test"]["accuracy"],
            r["dev"]["threshold"],
            r["dev_test_at_0.5"]["f1"],
            r["train_seconds"] if r["train_seconds"] is not None else "-",
            r["why"],
        ]
        for r in results
    ]
    table = markdown_table(headers, rows)
    print(table)
    _plot(results, RESULTS / "classifier_quality.png")
    # The newest-holdout runs tune elsewhere; the dev-tuned ones are what the first bullets describe.
    on_dev = [r for r in neural if r["threshold_tuned_on"] == "dev"]
    thresholds = [r["dev"]["threshold"] for r in on_dev]
    at_half = [r["dev_test_at_0.5"]["f1"] for r in on_dev]
    findings = (
        "## Reading the table\n\n"
        f"- Every dev-tuned neural try lands at dev F1 {min(r['dev']['f1'] for r in on_dev):.3f}-"
        f"{max(r['dev']['f1'] for r in on_dev):.3f}: dev (ClaimBuster's expert-labelled set) is nearly "
        "solved and barely separates the tries.\n"
        f"- The dev-tuned thresholds spread from {min(thresholds):.2f} to {max(thresholds):.2f}, because "
        "F1 on dev is flat over a wide range of thresholds; on dev_test (newer debates, 34% Yes "
        "against 23-24% in train and dev) that choice moves F1 by several points. At a plain 0.5, "
        f"dev_test F1 ranges {min(at_half):.3f}-{max(at_half):.3f}. The errors on dev_test are "
        "almost all misses (high precision, low recall).\n"
        "- Reported only: no number in the dev_test columns was used to choose a model, a threshold, "
        "or a recipe's settings. In the order of work, trainer, custom_loop, sqrt_weights, seed7 and "
        "the first two ensembles were fixed first; clef_positives and newest_holdout were added after "
        "that table had shown that dev_test errors are misses, newest_holdout_seed7 with "
        "ensemble_newest2 after newest_holdout's row, and newest_holdout_seed13 with the 3-seed "
        "ensemble_newest after that. All are reported whatever they gave.\n"
        "- Drift-aware runs (checkpoint and threshold on the newest train debates): "
        + ", ".join(f"{r['name']} {r['dev_test']['f1']:.3f}" for r in neural if r not in on_dev)
        + " on dev_test.\n"
        "- The drift-aware protocol was shaped after dev_test had been seen, so its first runs cannot "
        f"be the headline. The replication can: its seeds ({', '.join(map(str, REPLICATION_SEEDS))}), "
        f"and the rule that their ensemble ({SELECTED}) is the headline whatever it scores, were "
        "committed before any of its runs started (commit 42dd267), and nothing else changed.\n"
        "- The drift-aware runs train on 90% of train and tune on the newest 10% (crowd labels, F1 "
        "about 0.70 there), so their dev F1 is not comparable with the others'. The project adopts "
        f"this protocol (run file `{DRIFT_CONFIG}`): dev is in-distribution and nearly solved, so "
        "choices made on it do not face the drift of new debates, which is what users meet. The "
        "official CT24 test (kept out) is where to confirm it once more.\n"
        f"- `{RUNS / SELECTED}` is the headline as a model directory: `verifact evaluate --model "
        f"{RUNS / SELECTED} --data .../dev_test.tsv` gives the same F1, and the service takes it as "
        "its classifier; it costs three models' time per sentence.\n"
    )
    md = (
        "# Check-worthiness quality (CT24)\n\n"
        f"Base model: the packaged all-MiniLM-L6-v2; run files `{CONFIG}` (checkpoint and threshold "
        f"on dev) and `{DRIFT_CONFIG}` (on the newest 10% of train debates). Selected: `{best['name']}` "
        f"({payload['selection_rule']}).\n\n"
        f"**Selected: dev_test F1 {best['dev_test']['f1']:.4f}** (target 0.84), "
        f"dev F1 {best['dev']['f1']:.4f}. Best dev-tuned try by dev F1: `{best_dev['name']}`, dev_test "
        f"F1 {best_dev['dev_test']['f1']:.4f}.\n\n"
        + table
        + "\n\n![tries](classifier_quality.png)\n\n"
        + findings
    )
    save("classifier_quality", payload, md)


if __name__ == "__main__":
    main()
