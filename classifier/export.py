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


def export_onnx(
    model_dir: str | Path,
    check_texts: Sequence[str] | None = None,
    check_pairs: Sequence[str] | None = None,
    min_agreement: float = 0.99,
    quantize: bool = True,
) -> dict[str, Any]:
    """Export ``model_dir`` to ``model_dir/onnx/model.int8.onnx`` and check it against torch.

    The label agreement is measured on ``check_texts`` (a few probe sentences when None).
    Below ``min_agreement`` the ONNX file is not installed, so loading keeps using torch.

    Raises:
        ExportError: when the export fails or the agreement is too low.
    """
    src = Path(model_dir)
    started = time.perf_counter()
    torch_clf = CheckWorthinessClassifier.load(src, backend="torch")
    texts = list(check_texts) if check_texts else list(PROBE_TEXTS)
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
        labels_agree = float(np.mean([a.label == b.label for a, b in zip(ref, got, strict=True)]))
        ref_p, got_p = _probabilities(ref), _probabilities(got)
        argmax_agree = float(np.mean(ref_p.argmax(1) == got_p.argmax(1)))
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
            "label_agreement": labels_agree,
            "argmax_agreement": argmax_agree,
            "max_abs_prob_diff": float(np.abs(ref_p - got_p).max()),
            "min_agreement": min_agreement,
            "size_mb": round(int8.stat().st_size / 2**20, 2),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if batch_drift > MAX_BATCH_DRIFT:
            raise ExportError(f"ONNX scores depend on the batch (drift {batch_drift:.2e}); not installed")
        if min(labels_agree, argmax_agree) < min_agreement:
            raise ExportError(
                f"ONNX labels agree with torch on {labels_agree:.2%} (argmax {argmax_agree:.2%}) of "
                f"{len(texts)} checks, below the required {min_agreement:.2%}; not installed"
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
