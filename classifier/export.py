"""ONNX export with int8 quantization (per-token activations), kept only if it agrees with torch."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier.errors import ExportError
from classifier.predict import (
    ONNX_DIR,
    ONNX_FILE,
    CheckWorthinessClassifier,
    OnnxBackend,
    Prediction,
    TorchBackend,
)
from classifier.reporting import write_json
from quantize import MAX_BATCH_DRIFT, SCHEME

logger = logging.getLogger(__name__)

# Inputs scored one per pass as well as in batches, to check `quantize.MAX_BATCH_DRIFT`.
BATCH_DRIFT_CHECKS = 64
PROBE_TEXTS = (
    "The unemployment rate fell to 3.5 percent last year.",
    "Thank you all for coming tonight.",
    "We spent two trillion dollars on that war, and what did we get?",
    "",
)
# A sentence-pair model is probed on pairs: (claim, evidence) as the NLI verifier reads them.
PROBE_PAIRS = (
    ("The unemployment rate fell to 3.5 percent last year.", "Unemployment fell to 3.5% in 2019."),
    ("The unemployment rate fell to 3.5 percent last year.", "Unemployment rose to 5% in 2019."),
    ("Arctic sea ice is shrinking.", "The city council meets on Tuesdays."),
    ("", ""),
)
DECISIVE_MARGIN = 0.05
"""An input is decisive when torch's probabilities must move at least this much to change its
answer: its score this far from the threshold, or its top two classes twice this far apart. Below
it the answer is a near-tie that any rounding may break, so agreement is gated on decisive inputs."""
MAX_PROB_DIFF = 0.2
"""The most any probability may differ from torch on the checked inputs, near-ties included."""


def _export_fp32(model: Any, path: Path) -> None:
    import torch

    class LogitsOnly(torch.nn.Module):
        """The exporter wants tensors out, not a ModelOutput."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    wrapped = LogitsOnly(model).eval()  # eval on the wrapper too: the exporter reads its flag
    example = torch.ones((2, 16), dtype=torch.long)
    # Padding in the example keeps the traced graph on the masked path; an all-ones mask lets
    # transformers skip masking, and the exporter would bake that shortcut in.
    mask = example.clone()
    mask[1, 10:] = 0
    batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=2, max=4096)
    shapes = {name: {0: batch, 1: seq} for name in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        torch.onnx.export(
            wrapped,
            (example, mask, torch.zeros_like(example)),
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits"],
            dynamic_shapes=shapes,
            dynamo=True,
            external_data=False,
            # Without this the exporter prints its progress to stdout, into the CLI's JSON.
            verbose=False,
        )


def _probabilities(predictions: Sequence[Prediction]) -> np.ndarray:
    return np.array([list(p.probabilities.values()) for p in predictions])


def _margins(clf: CheckWorthinessClassifier, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far torch's probabilities must move to change each label, and each argmax."""
    top = np.sort(probs, axis=1)
    argmax_margin = (top[:, -1] - top[:, -2]) / 2
    if clf.positive_index is None:
        return argmax_margin, argmax_margin
    cut = 0.5 if clf.threshold is None else clf.threshold
    return np.abs(probs[:, clf.positive_index] - cut), argmax_margin


def _check_inputs(
    clf: CheckWorthinessClassifier, texts: Sequence[str] | None, pairs: Sequence[str] | None
) -> tuple[list[str], list[str] | None]:
    """The inputs to compare on: the given ones, or probes of the model's own kind."""
    if clf.meta.pair_mode and texts is None:
        return [a for a, _ in PROBE_PAIRS], [b for _, b in PROBE_PAIRS]
    if texts is None:
        return list(PROBE_TEXTS), None
    if clf.meta.pair_mode and pairs is None:
        raise ExportError(
            "a sentence-pair model is checked on pairs: give the second texts too "
            "(verifact export --pair-column, e.g. evidence)"
        )
    if pairs is not None and not clf.meta.pair_mode:
        raise ExportError(
            "this model reads single sentences: check it without second texts (no --pair-column)"
        )
    if pairs is not None and len(pairs) != len(texts):
        raise ExportError(f"{len(texts)} check texts but {len(pairs)} second texts")
    return list(texts), list(pairs) if pairs is not None else None


def export_onnx(
    model_dir: str | Path,
    check_texts: Sequence[str] | None = None,
    check_pairs: Sequence[str] | None = None,
    min_agreement: float = 0.99,
    quantize: bool = True,
    max_prob_diff: float = MAX_PROB_DIFF,
) -> dict[str, Any]:
    """Export ``model_dir`` to ``model_dir/onnx/model.int8.onnx`` and check it against torch.

    The check runs on ``check_texts`` (with ``check_pairs`` for a sentence-pair model; a few probes
    of the model's kind when None). The file is installed only if the labels and the argmax agree
    with torch on at least ``min_agreement`` of the decisive inputs (see ``DECISIVE_MARGIN``; on a
    three-way NLI model 6% of the dev pairs are near-ties), no probability differs by more than
    ``max_prob_diff``, and scores do not depend on the batch. Otherwise loading keeps using torch.

    Raises:
        ExportError: when the inputs do not fit the model, the export fails or a check fails.
    """
    src = Path(model_dir)
    started = time.perf_counter()
    torch_clf = CheckWorthinessClassifier.load(src, backend="torch")
    texts, check_pairs = _check_inputs(torch_clf, check_texts or None, check_pairs)
    assert isinstance(torch_clf.backend, TorchBackend)
    with tempfile.TemporaryDirectory(prefix="verifact-onnx-") as tmp:
        fp32 = Path(tmp) / "model.fp32.onnx"
        int8 = Path(tmp) / ONNX_FILE
        try:
            _export_fp32(torch_clf.backend.model, fp32)
            if quantize:
                from quantize import quantize_int8

                # Per-channel scales on the matrix products only (per-tensor weight scales, or
                # quantized embedding lookups, flip about 1.2% of CT24 dev labels), activations
                # per token, so that a sentence's score does not depend on its batch-mates.
                quantize_int8(fp32, int8)
            else:
                shutil.copy(fp32, int8)
        except Exception as exc:  # the exporter raises many internal error types
            raise ExportError(f"ONNX export of {src} failed: {exc}") from exc
        onnx_clf = CheckWorthinessClassifier(OnnxBackend(int8), torch_clf.tokenizer, torch_clf.meta, src)
        ref = torch_clf.predict(texts, check_pairs)
        got = onnx_clf.predict(texts, check_pairs)
        same_label = np.array([a.label == b.label for a, b in zip(ref, got, strict=True)])
        ref_p, got_p = _probabilities(ref), _probabilities(got)
        same_argmax = ref_p.argmax(1) == got_p.argmax(1)
        label_margin, argmax_margin = _margins(torch_clf, ref_p)
        decisive = (label_margin >= DECISIVE_MARGIN) & (argmax_margin >= DECISIVE_MARGIN)
        # With no decisive input the agreement gate is empty; the probability bound still holds.
        decisive_agree = (
            float(np.mean(same_label[decisive] & same_argmax[decisive])) if decisive.any() else 1.0
        )
        max_diff = float(np.abs(ref_p - got_p).max())
        # The same inputs one per pass: with per-token activations only float rounding differs.
        alone = np.concatenate(
            [
                _probabilities(
                    onnx_clf.predict(texts[i : i + 1], check_pairs[i : i + 1] if check_pairs else None)
                )
                for i in range(min(len(texts), BATCH_DRIFT_CHECKS))
            ]
        )
        batch_drift = float(np.abs(alone - got_p[: len(alone)]).max())
        report = {
            "file": f"{ONNX_DIR}/{ONNX_FILE}",
            "quantized": quantize,
            "activations": f"int8 {SCHEME}" if quantize else "float32",
            "max_batch_drift": batch_drift,
            "checked": len(texts),
            "pairs": check_pairs is not None,
            "label_agreement": float(same_label.mean()),
            "argmax_agreement": float(same_argmax.mean()),
            "decisive": int(decisive.sum()),
            "decisive_margin": DECISIVE_MARGIN,
            "decisive_agreement": decisive_agree,
            "max_abs_prob_diff": max_diff,
            "max_prob_diff": max_prob_diff,
            "min_agreement": min_agreement,
            "size_mb": round(int8.stat().st_size / 2**20, 2),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if batch_drift > MAX_BATCH_DRIFT:
            raise ExportError(f"ONNX scores depend on the batch (drift {batch_drift:.2e}); not installed")
        if decisive_agree < min_agreement:
            raise ExportError(
                f"ONNX labels agree with torch on {decisive_agree:.2%} of the {int(decisive.sum())} "
                f"decisive checks ({same_label.mean():.2%} of all {len(texts)}), below the required "
                f"{min_agreement:.2%}; not installed"
            )
        if max_diff > max_prob_diff:
            raise ExportError(
                f"an ONNX probability differs from torch by {max_diff:.3f}, more than the allowed "
                f"{max_prob_diff:.3f}; not installed"
            )
        out_dir = src / ONNX_DIR
        out_dir.mkdir(exist_ok=True)
        # Install by rename, so a crash never leaves a half-written model that 'auto' would pick.
        staged = out_dir / (ONNX_FILE + ".tmp")
        shutil.copy(int8, staged)
        staged.replace(out_dir / ONNX_FILE)
        write_json(out_dir / "export.json", report)
    logger.info("ONNX export: %s", report)
    return report
