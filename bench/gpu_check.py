"""GPU training check: MiniLM and a bert-base-sized model, both engines, a few hundred bf16 steps.

Checks that the loss falls and prints samples/s. ``--cpu`` runs the same path on the CPU in fp32
(that mode is what the test suite runs). Driven by scripts/gpu-check.sh.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import markdown_table

ENGINES = ("trainer", "custom_loop")


def _bert_base_from_config(tokenizer_dir: str, out: Path) -> str:
    """A randomly initialised bert-base (12 layers, 768 wide) with MiniLM's uncased vocabulary."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = BertForSequenceClassification(BertConfig(vocab_size=tok.vocab_size, num_labels=2))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def _train_file(data_dir: Path, tmp: Path) -> Path:
    """CT24 train when it is there; else a generated file, so the check runs anywhere."""
    ct24 = data_dir / "ct24_checkworthy_en" / "train.tsv"
    if ct24.is_file():
        return ct24
    rng = random.Random(0)
    path = tmp / "train.tsv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["Text", "class_label"])
        for _ in range(4000):
            claim = rng.random() < 0.3
            n = rng.randint(1, 99)
            w.writerow(
                [
                    f"Taxes rose {n} percent last year." if claim else f"Thank you, {n} friends.",
                    "Yes" if claim else "No",
                ]
            )
    return path


def run_check(steps: int, batch_size: int, cpu: bool, minilm: str, data_dir: Path) -> list[dict[str, Any]]:
    """Train each model with each engine for ``steps`` steps; return one row per run."""
    import torch

    from classifier.args import parse_run_config
    from classifier.modeling import resolve_model_path
    from classifier.train import run_training

    if not cpu and not torch.cuda.is_available():
        raise SystemExit("gpu-check: no CUDA device visible (use --cpu to run the check on the CPU)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="verifact-gpu-check-") as tmp_s:
        tmp = Path(tmp_s)
        minilm_path = resolve_model_path(minilm)
        models = {
            "minilm": minilm_path,
            "bert-base-config": _bert_base_from_config(minilm_path, tmp / "bert"),
        }
        train_file = _train_file(data_dir, tmp)
        for model_name, path in models.items():
            for engine in ENGINES:
                overrides: dict[str, Any] = {
                    "model_name_or_path": path,
                    "train_file": str(train_file),
                    "validation_file": None,
                    "test_file": None,
                    "class_names": ["No", "Yes"],
                    "engine": engine,
                    "output_dir": str(tmp / f"{model_name}-{engine}"),
                    "max_steps": steps,
                    "max_train_samples": steps * batch_size,
                    "per_device_train_batch_size": batch_size,
                    "warmup_steps": max(1, steps // 10),
                    "learning_rate": 5e-5,
                    "eval_strategy": "no",
                    "save_strategy": "no",
                    "load_best_model_at_end": False,
                    "logging_steps": max(1, steps // 10),
                    "bf16": not cpu,
                    "use_cpu": cpu,
                    "plots": False,
                    "disable_tqdm": True,
                }
                started = time.perf_counter()
                summary = run_training(parse_run_config(None, overrides))
                assert summary is not None
                wall = time.perf_counter() - started
                losses = [h["loss"] for h in summary["history"] if "loss" in h]
                k = max(1, len(losses) // 5)
                first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
                rows.append(
                    {
                        "model": model_name,
                        "engine": engine,
                        "steps": steps,
                        "batch_size": batch_size,
                        "precision": "fp32" if cpu else "bf16",
                        "device": "cpu" if cpu else torch.cuda.get_device_name(0),
                        "first_loss": round(first, 4),
                        "last_loss": round(last, 4),
                        "loss_fell": last < first,
                        "train_seconds": summary["train_seconds"],
                        "samples_per_s": round(steps * batch_size / max(1e-9, summary["train_seconds"]), 1),
                        "wall_seconds": round(wall, 1),
                    }
                )
    return rows


def main() -> None:
    """Parse flags, run the check, print the table, write JSON and markdown, exit 1 if a loss did not fall."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cpu", action="store_true", help="run on the CPU in fp32")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--minilm", default="packaged:all-MiniLM-L6-v2", help="MiniLM directory or alias")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--out", default="bench/results", help="where gpu_check.json/.md go")
    ns = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = run_check(ns.steps, ns.batch_size, ns.cpu, ns.minilm, Path(ns.data_dir))
    headers = [
        "model",
        "engine",
        "precision",
        "device",
        "steps",
        "first loss",
        "last loss",
        "loss fell",
        "samples/s",
    ]
    table = markdown_table(
        headers,
        [
            [
                r["model"],
                r["engine"],
                r["precision"],
                r["device"],
                r["steps"],
                r["first_loss"],
                r["last_loss"],
                r["loss_fell"],
                r["samples_per_s"],
            ]
            for r in rows
        ],
    )
    print(table)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "gpu_check_cpu" if ns.cpu else "gpu_check"
    (out / f"{name}.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(f"# GPU training check ({'CPU mode' if ns.cpu else 'CUDA'})\n\n{table}\n")
    if not all(r["loss_fell"] for r in rows):
        print("gpu-check: FAILED: a loss did not fall", file=sys.stderr)
        raise SystemExit(1)
    print("gpu-check: OK")


if __name__ == "__main__":
    main()
