"""Check-worthiness inference speed on 2,000 CT24 sentences: HF pipeline vs our torch and ONNX paths.

python -m bench.classifier_speed [--model runs/quality/trainer/model] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import RESULTS, machine, markdown_table, save

N_SENTENCES = 2000


def _sentences(data_dir: Path) -> list[str]:
    with (data_dir / "ct24_checkworthy_en" / "train.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r["Text"] for r in rows[:N_SENTENCES]]


def _timed(fn: Any, repeats: int) -> float:
    """Best wall time of ``repeats`` runs (after one warm-up), in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    """Time the three paths and write bench/results/classifier_speed.*."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="runs/quality/trainer/model")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--repeats", type=int, default=3)
    ns = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from classifier.export import export_onnx
    from classifier.predict import CheckWorthinessClassifier

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    model_dir = Path(ns.model)
    texts = _sentences(Path(ns.data_dir))
    # Export afresh every time, so the agreement on CT24 dev is measured on this very model.
    with (Path(ns.data_dir) / "ct24_checkworthy_en" / "dev.tsv").open(encoding="utf-8", newline="") as fh:
        dev = [r["Text"] for r in csv.DictReader(fh, delimiter="\t")]
    export_report = export_onnx(model_dir, dev)  # raises unless the model was installed

    pipe = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir), device="cpu")
    torch_clf = CheckWorthinessClassifier.load(model_dir, backend="torch")
    onnx_clf = CheckWorthinessClassifier.load(model_dir, backend="onnx")
    # The layout before single-threaded passes ran one per core: one session over every core.
    cores = os.cpu_count() or 1
    onnx_one = CheckWorthinessClassifier.load(model_dir, backend="onnx", num_threads=cores, parallel=1)

    pipe_s = _timed(lambda: pipe(texts, truncation=True), 1)
    torch_s = _timed(lambda: torch_clf.predict(texts), ns.repeats)
    onnx_s = _timed(lambda: onnx_clf.predict(texts), ns.repeats)
    onnx_one_s = _timed(lambda: onnx_one.predict(texts), ns.repeats)
    ref = np.array([p.label for p in torch_clf.predict(texts)])
    got = np.array([p.label for p in onnx_clf.predict(texts)])
    agreement = float(np.mean(ref == got))

    n = len(texts)
    payload = {
        "pipeline_sps": round(n / pipe_s, 1),
        "torch_sps": round(n / torch_s, 1),
        "onnx_int8_sps": round(n / onnx_s, 1),
        "onnx_int8_one_session_sps": round(n / onnx_one_s, 1),
        "onnx_layout": {"threads_per_pass": 1, "passes_at_once": onnx_clf.parallel},
        "sentences": n,
        "speedup_torch_vs_pipeline": round(pipe_s / torch_s, 2),
        "speedup_onnx_vs_pipeline": round(pipe_s / onnx_s, 2),
        "onnx_label_agreement_on_these": agreement,
        "onnx_export": export_report,
        "model": str(model_dir),
        "batch_size": torch_clf.batch_size,
        "max_batch_tokens": torch_clf.max_batch_tokens,
        "machine": machine(),
    }
    rows = [
        ["transformers pipeline (defaults)", payload["pipeline_sps"], 1.0],
        [
            "verifact torch (length-sorted batches)",
            payload["torch_sps"],
            payload["speedup_torch_vs_pipeline"],
        ],
        [
            f"verifact ONNX int8, one session over {cores} cores",
            payload["onnx_int8_one_session_sps"],
            round(pipe_s / onnx_one_s, 2),
        ],
        [
            f"verifact ONNX int8 (default: 1-thread passes, {onnx_clf.parallel} at once)",
            payload["onnx_int8_sps"],
            payload["speedup_onnx_vs_pipeline"],
        ],
    ]
    table = markdown_table(["path", "sentences/s", "x pipeline"], rows)
    print(table)
    _plot(rows, RESULTS / "classifier_speed.png")
    md = (
        f"# Check-worthiness inference speed\n\n{n} CT24 train sentences, one process, "
        f"{payload['machine']['cpu_count']} cores. "
        f"ONNX labels agree with torch on {agreement:.2%} of them.\n\n"
        f"{table}\n\n![speed](classifier_speed.png)\n"
    )
    save("classifier_speed", payload, md)


def _plot(rows: list[list[Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.barh([r[0] for r in rows], [r[1] for r in rows], color=["#999", "#4a7", "#8ac", "#27a"][: len(rows)])
    ax.axvline(700, color="red", linestyle="--", linewidth=1, label="target 700/s")
    ax.set_xlabel("sentences per second")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
