"""The custom accelerate training loop: accumulation, clipping, warmup+cosine, AdamW->SGD switch."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from classifier.args import RunConfig
from classifier.data import Dataset, EncodedDataset
from classifier.metrics import evaluate_probs, softmax
from classifier.modeling import class_weights, weighted_loss

logger = logging.getLogger(__name__)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Decay weights but not biases and LayerNorm parameters, as BERT fine-tuning does."""
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _mixed_precision(cfg: RunConfig) -> str:
    if cfg.training.bf16:
        return "bf16"
    if cfg.training.fp16:
        return "fp16"
    return "no"


def _trackers(cfg: RunConfig) -> list[str] | None:
    names = [r for r in (cfg.training.report_to or []) if r not in ("none", "all")]
    return names or None


def _evaluate(accelerator: Any, model: Any, loader: Any, dataset: Dataset) -> dict[str, float]:
    import torch

    model.eval()
    all_logits, all_labels, losses = [], [], []
    with torch.inference_mode():
        for batch in loader:
            out = model(**batch)
            logits, labels = accelerator.gather_for_metrics((out.logits.float(), batch["labels"]))
            losses.append(float(out.loss.float()) if out.loss is not None else 0.0)
            all_logits.append(logits.cpu().numpy())
            all_labels.append(labels.cpu().numpy())
    model.train()
    probs = softmax(np.concatenate(all_logits))
    metrics = evaluate_probs(
        probs, np.concatenate(all_labels), dataset.label_names, dataset.positive_index, None
    )
    result = {f"eval_{k}": v for k, v in metrics.items()}
    result["eval_loss"] = float(np.mean(losses)) if losses else float("nan")
    return result


def train_custom_loop(
    cfg: RunConfig,
    dataset: Dataset,
    model: Any,
    tokenizer: Any,
    train_ds: EncodedDataset,
    val_ds: EncodedDataset | None,
) -> tuple[Any, list[dict[str, Any]], bool]:
    """Fine-tune ``model`` with our own loop; return the best model, the history, and is-main."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm
    from transformers import DataCollatorWithPadding, get_scheduler
    from transformers.trainer_pt_utils import LengthGroupedSampler

    args = cfg.training
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=_mixed_precision(cfg),
        log_with=_trackers(cfg),
        project_dir=args.output_dir,
        cpu=args.use_cpu,
    )
    set_seed(args.seed)
    collator = DataCollatorWithPadding(tokenizer)
    generator = torch.Generator().manual_seed(args.seed)
    sampler: Any = None
    if args.train_sampling_strategy == "group_by_length":
        sampler = LengthGroupedSampler(
            args.per_device_train_batch_size * accelerator.num_processes,
            lengths=train_ds.lengths(),
            generator=generator,
        )
    train_loader: Any = DataLoader(
        train_ds,  # type: ignore[arg-type]
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        shuffle=sampler is None,
        collate_fn=collator,
        generator=generator if sampler is None else None,
    )
    val_loader: Any = (
        DataLoader(val_ds, batch_size=args.per_device_eval_batch_size, collate_fn=collator)  # type: ignore[arg-type]
        if val_ds is not None
        else None
    )
    optimizer: Any = torch.optim.AdamW(
        _param_groups(model, args.weight_decay),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        # One fused kernel per step instead of a loop over tensors, as the Trainer's default does.
        fused=True,
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)

    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    total_steps = args.max_steps if args.max_steps > 0 else int(steps_per_epoch * args.num_train_epochs)
    # The scheduler is stepped by hand once per optimizer step, so it stays out of prepare().
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=int(args.warmup_steps),
        num_training_steps=total_steps,
    )
    weights = class_weights(dataset.train.labels, len(dataset.label_names), cfg.engine.class_weighting)
    loss_fn = weighted_loss(weights, args.label_smoothing_factor)
    if _trackers(cfg):
        accelerator.init_trackers(
            "verifact",
            config={
                "engine": "custom_loop",
                "learning_rate": args.learning_rate,
                "batch_size": args.per_device_train_batch_size,
                "gradient_accumulation_steps": args.gradient_accumulation_steps,
                "total_steps": total_steps,
                "class_weighting": cfg.engine.class_weighting,
            },
        )

    eval_every = int(args.eval_steps or 0) if args.eval_strategy != "no" and val_loader is not None else 0
    log_every = int(args.logging_steps or 50)
    history: list[dict[str, Any]] = []
    best_f1, best_state = -1.0, None
    step, running, running_n = 0, 0.0, 0
    bar = tqdm(
        total=total_steps, desc="training (custom loop)", disable=not accelerator.is_local_main_process
    )
    model.train()
    done = False
    epoch = 0
    while not done:
        for batch in train_loader:
            with accelerator.accumulate(model):
                labels = batch.pop("labels")
                logits = model(**batch).logits
                loss = loss_fn(logits, labels)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            running += float(loss.detach())
            running_n += 1
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            bar.update(1)
            if cfg.engine.sgd_switch_step is not None and step == cfg.engine.sgd_switch_step:
                optimizer, scheduler = _switch_to_sgd(accelerator, model, cfg, total_steps - step)
                logger.info("step %d: switched from AdamW to SGD (lr %g)", step, cfg.engine.sgd_learning_rate)
            if step % log_every == 0:
                mean = accelerator.reduce(
                    torch.tensor(running / max(1, running_n), device=accelerator.device), "mean"
                )
                entry = {
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 4),
                    "loss": float(mean),
                    "learning_rate": scheduler.get_last_lr()[0],
                }
                history.append(entry)
                accelerator.log(entry, step=step)
                bar.set_postfix(loss=f"{float(mean):.4f}")
                running, running_n = 0.0, 0
            if eval_every and (step % eval_every == 0 or step == total_steps):
                assert val_loader is not None
                metrics = _evaluate(accelerator, model, val_loader, dataset)
                entry = {"step": step, "epoch": round(step / steps_per_epoch, 4), **metrics}
                history.append(entry)
                accelerator.log(metrics, step=step)
                if metrics["eval_f1"] > best_f1:
                    best_f1 = metrics["eval_f1"]
                    unwrapped = accelerator.unwrap_model(model)
                    best_state = {k: v.detach().cpu().clone() for k, v in unwrapped.state_dict().items()}
            if step >= total_steps:
                done = True
                break
        epoch += 1
        if epoch > 10_000:  # an empty loader would spin forever
            break
    bar.close()
    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model)
    if best_state is not None and args.load_best_model_at_end:
        model.load_state_dict(best_state)
        logger.info("kept the best evaluation (f1 %.4f)", best_f1)
    accelerator.end_training()
    return model, history, accelerator.is_main_process


def _switch_to_sgd(accelerator: Any, model: Any, cfg: RunConfig, remaining: int) -> tuple[Any, Any]:
    """Replace AdamW by SGD with momentum, decaying by cosine over the remaining steps."""
    import torch
    from transformers import get_scheduler

    sgd = torch.optim.SGD(
        _param_groups(model, cfg.training.weight_decay),
        lr=cfg.engine.sgd_learning_rate,
        momentum=cfg.engine.sgd_momentum,
    )
    sgd = accelerator.prepare(sgd)
    return sgd, get_scheduler("cosine", sgd, num_warmup_steps=0, num_training_steps=max(1, remaining))
