"""Training entry point: load data, fine-tune with the chosen engine, tune, save and report."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from classifier.args import RunConfig
from classifier.data import Dataset, EncodedDataset, Examples, load_dataset
from classifier.metrics import classify, evaluate_probs, softmax, tune_threshold
from classifier.modeling import build_model_and_tokenizer, class_weights, weighted_loss
from classifier.predict import META_KEY, TorchBackend, batched_logits, encode
from classifier.reporting import classification_report, plot_confusion, plot_curves, write_json

logger = logging.getLogger(__name__)

MODEL_SUBDIR = "model"


def _eval_metrics_fn(dataset: Dataset) -> Any:
    """compute_metrics for the Trainer: argmax metrics of a logits/labels pair."""

    def compute(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        probs = softmax(np.asarray(logits))
        return evaluate_probs(probs, pred.label_ids, dataset.label_names, dataset.positive_index, None)

    return compute


def _train_with_trainer(
    cfg: RunConfig,
    dataset: Dataset,
    model: Any,
    tokenizer: Any,
    train_ds: EncodedDataset,
    val_ds: EncodedDataset | None,
) -> tuple[Any, list[dict[str, Any]]]:
    from transformers import DataCollatorWithPadding, Trainer

    changes: dict[str, Any] = {"output_dir": str(Path(cfg.training.output_dir or "runs") / "checkpoints")}
    if val_ds is None:
        changes.update(eval_strategy="no", load_best_model_at_end=False)
    # A copy: the run's own output_dir must stay where the reports go.
    args = dataclasses.replace(cfg.training, **changes)
    weights = class_weights(dataset.train.labels, len(dataset.label_names), cfg.engine.class_weighting)
    loss_fn = weighted_loss(weights, cfg.training.label_smoothing_factor)

    def compute_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        return loss_fn(outputs.logits, labels)

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_eval_metrics_fn(dataset),
        compute_loss_func=compute_loss,
    )
    trainer.train()
    history = [dict(entry) for entry in trainer.state.log_history if "step" in entry]
    _leave_process_group()
    return trainer.model, history


def _leave_process_group() -> None:
    """After a distributed Trainer run, every rank leaves the process group together.

    The other ranks return as soon as training ends while the main one writes reports; one that
    exits with the group still up can abort in the backend's teardown ("terminate called without
    an active exception"). The custom loop gets the same from ``Accelerator.end_training``.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _probabilities(
    model: Any, tokenizer: Any, examples: Examples, max_length: int, batch_size: int
) -> np.ndarray:
    enc = encode(tokenizer, examples.texts, examples.pairs, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return softmax(batched_logits(TorchBackend(model), enc, int(pad), batch_size))


def evaluate_split(
    probs: np.ndarray, examples: Examples, dataset: Dataset, threshold: float | None
) -> dict[str, Any]:
    """Metrics at 0.5 (argmax) and, for binary tasks, at the tuned threshold."""
    labels = np.asarray(examples.labels, dtype=np.int64)
    out: dict[str, Any] = {
        "n": len(examples),
        "at_0.5": evaluate_probs(probs, labels, dataset.label_names, dataset.positive_index, None),
    }
    if threshold is not None:
        out["at_threshold"] = evaluate_probs(
            probs, labels, dataset.label_names, dataset.positive_index, threshold
        )
        out["threshold"] = threshold
    return out


def finalize(
    cfg: RunConfig,
    dataset: Dataset,
    model: Any,
    tokenizer: Any,
    history: list[dict[str, Any]],
    seconds: float,
) -> dict[str, Any]:
    """Tune the threshold on validation, evaluate, save the model and write every report."""
    out_dir = Path(cfg.training.output_dir or "runs/checkworthy")
    batch = cfg.training.per_device_eval_batch_size
    max_len = cfg.model.max_length
    model.eval()
    splits = {"validation": dataset.validation, "test": dataset.test}
    probs = {name: _probabilities(model, tokenizer, ex, max_len, batch) for name, ex in splits.items() if ex}

    threshold: float | None = None
    pos = dataset.positive_index
    if pos is not None:
        threshold = 0.5
        if cfg.engine.tune_threshold and "validation" in probs:
            assert dataset.validation is not None
            is_pos = (np.asarray(dataset.validation.labels) == pos).astype(np.int64)
            threshold, _ = tune_threshold(probs["validation"][:, pos], is_pos)

    results: dict[str, Any] = {"threshold": threshold}
    for name, p in probs.items():
        ex = splits[name]
        assert ex is not None
        results[name] = evaluate_split(p, ex, dataset, threshold)

    model_dir = out_dir / MODEL_SUBDIR
    model.config.update(
        {
            META_KEY: {
                "threshold": threshold,
                "positive_label": dataset.positive_label,
                "max_length": max_len,
                "pair_mode": dataset.train.pairs is not None,
                "engine": cfg.engine.engine,
                "base_model": cfg.model.model_name_or_path,
                "validation": results.get("validation"),
            }
        }
    )
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    report_parts = []
    for name, p in probs.items():
        ex = splits[name]
        assert ex is not None
        labels = np.asarray(ex.labels, dtype=np.int64)
        predicted = classify(p, pos, threshold)
        report_parts.append(
            f"== {name} (n={len(ex)}, threshold={threshold})\n"
            + classification_report(labels, predicted, dataset.label_names)
        )
        if cfg.engine.plots:
            plot_confusion(
                labels,
                predicted,
                dataset.label_names,
                out_dir / f"confusion_{name}.png",
                f"{name} ({cfg.engine.engine}, "
                + (f"threshold {threshold:.3f})" if threshold is not None else "argmax)"),
            )
    (out_dir / "classification_report.txt").write_text("\n\n".join(report_parts) + "\n", encoding="utf-8")
    if cfg.engine.plots and history:
        plot_curves(
            history, out_dir / "training_curves.png", f"{cfg.model.model_name_or_path} · {cfg.engine.engine}"
        )

    summary: dict[str, Any] = {
        "engine": cfg.engine.engine,
        "model": cfg.model.model_name_or_path,
        "label_names": list(dataset.label_names),
        "positive_label": dataset.positive_label,
        "sizes": {"train": len(dataset.train), **{k: len(v) for k, v in splits.items() if v}},
        "train_seconds": round(seconds, 1),
        "results": results,
        "history": history,
        "config": {
            "model": dataclasses.asdict(cfg.model),
            "data": dataclasses.asdict(cfg.data),
            "engine": dataclasses.asdict(cfg.engine),
            "training": {
                k: str(v) if not isinstance(v, (int, float, bool, type(None))) else v
                for k, v in cfg.training.to_dict().items()  # type: ignore[no-untyped-call]
            },
        },
    }
    write_json(out_dir / "metrics.json", summary)

    if cfg.engine.export_onnx:
        from classifier.export import export_onnx

        check = dataset.validation or dataset.test
        report = export_onnx(
            model_dir,
            check_texts=list(check.texts) if check else None,
            check_pairs=list(check.pairs) if check and check.pairs else None,
            min_agreement=cfg.engine.onnx_min_agreement,
        )
        summary["onnx"] = report
        write_json(out_dir / "metrics.json", summary)
    return summary


def run_training(cfg: RunConfig) -> dict[str, Any] | None:
    """Train one run as configured; return its summary on the main process (None elsewhere)."""
    from transformers import set_seed

    set_seed(cfg.training.seed)
    with cfg.training.main_process_first(desc="loading data"):
        dataset = load_dataset(cfg.data)
    logger.info(
        "data: train %d, validation %s, test %s, labels %s",
        len(dataset.train),
        len(dataset.validation) if dataset.validation else "-",
        len(dataset.test) if dataset.test else "-",
        dataset.label_names,
    )
    model, tokenizer = build_model_and_tokenizer(cfg.model, dataset.label_names)
    train_ds = EncodedDataset(dataset.train, tokenizer, cfg.model.max_length)
    val_ds = (
        EncodedDataset(dataset.validation, tokenizer, cfg.model.max_length) if dataset.validation else None
    )

    started = time.perf_counter()
    if cfg.engine.engine == "trainer":
        model, history = _train_with_trainer(cfg, dataset, model, tokenizer, train_ds, val_ds)
        is_main = cfg.training.process_index == 0
    else:
        from classifier.loop import train_custom_loop

        model, history, is_main = train_custom_loop(cfg, dataset, model, tokenizer, train_ds, val_ds)
    seconds = time.perf_counter() - started
    if not is_main:
        return None
    return finalize(
        cfg, dataset, model.cpu() if _on_accelerator(model) else model, tokenizer, history, seconds
    )


def _on_accelerator(model: Any) -> bool:
    try:
        return bool(next(model.parameters()).device.type != "cpu")
    except StopIteration:
        return False
