"""Fast inference: length-sorted dynamic batches through torch or ONNX Runtime, in input order."""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from classifier.errors import ModelLoadError
from classifier.metrics import FloatArray, softmax
from classifier.reporting import read_json_object

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
ONNX_FILE = "model.int8.onnx"
META_KEY = "verifact"
# Padded tokens per batch on the CPU: measured best on 2 cores for MiniLM (512 beat 1024-4096 by
# 5-40% on CT24 sentences). Raise it on a GPU.
DEFAULT_BATCH_TOKENS = 512


@dataclass(frozen=True)
class Prediction:
    """One sentence's verdict from the classifier."""

    text: str
    score: float
    """Probability of the positive class (binary), else of the predicted class."""
    label: str
    probabilities: dict[str, float]
    threshold: float | None
    """The decision threshold applied, or None for argmax (multi-class)."""
    n_tokens: int
    truncated: bool
    """True when the input was cut to the model's maximum length."""


class Backend(Protocol):
    """Runs one padded batch and returns its logits."""

    name: str

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class Encoded:
    """Tokenized inputs, unpadded, with their truncation flags."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: list[bool]


def encode(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int) -> Encoded:
    """Tokenize with truncation and record which inputs lost tokens to it."""
    texts = [t if isinstance(t, str) else str(t) for t in texts]
    pair_list = list(pairs) if pairs is not None else None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return _encode_fast(backend, texts, pair_list, max_length)
    enc = tokenizer(texts, pair_list, truncation=True, max_length=max_length, padding=False)
    ids: list[list[int]] = enc["input_ids"]
    types: list[list[int]] | None = enc.get("token_type_ids")
    truncated = [False] * len(ids)
    # Only inputs that reached the limit can have been cut; re-count just those.
    full = [i for i, row in enumerate(ids) if len(row) >= max_length]
    if full:
        sub_pairs = [pair_list[i] for i in full] if pair_list is not None else None
        again = tokenizer([texts[i] for i in full], sub_pairs, truncation=False, padding=False)
        for i, row in zip(full, again["input_ids"], strict=True):
            truncated[i] = len(row) > max_length
    return Encoded(ids, types, truncated)


_ENCODE_LOCK = threading.Lock()
"""Held from setting a Rust tokenizer's truncation to the end of the encoding that uses it: that
setting lives on the (shared) tokenizer, and a caller in another thread could change it midway."""


def _encode_fast(backend: Any, texts: list[str], pairs: list[str] | None, max_length: int) -> Encoded:
    """Tokenize with the Rust tokenizer directly: a third of the wrapper's cost on short sentences.

    Its overflow record tells which inputs were truncated without tokenizing them again.
    """
    inputs: list[Any] = list(zip(texts, pairs, strict=True)) if pairs is not None else texts
    with _ENCODE_LOCK:
        backend.no_padding()
        backend.enable_truncation(max_length)
        encodings = backend.encode_batch(inputs)
    return Encoded(
        input_ids=[e.ids for e in encodings],
        token_type_ids=[e.type_ids for e in encodings],
        truncated=[bool(e.overflowing) for e in encodings],
    )


def pad_batch(
    rows: Sequence[list[int]], types: Sequence[list[int]] | None, pad_id: int
) -> dict[str, np.ndarray]:
    """Pad a batch to its own longest row (dynamic padding)."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    tt = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
        if types is not None:
            tt[i, : len(row)] = types[i]
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def batched_logits(
    backend: Callable[[dict[str, np.ndarray]], np.ndarray],
    encoded: Encoded,
    pad_id: int,
    batch_size: int,
    max_batch_tokens: int | None = None,
    runner: Executor | None = None,
    spread: int = 1,
) -> np.ndarray:
    """Logits for every input, run in length-sorted batches and returned in input order.

    A batch closes at ``batch_size`` rows or, when ``max_batch_tokens`` is set, before its padded
    size (rows x longest row) would pass that budget: short sentences go in wide batches, long
    ones in narrow batches that stay inside the CPU caches. With a ``runner``, the batches of one
    call run at once on its threads (the backend must allow concurrent calls, as ONNX Runtime does),
    and a call with fewer batches than ``spread`` (the runner's passes at once) has its largest
    batches halved until every pass has rows: one claim's five evidence pairs fit one batch, which
    single-threaded passes would otherwise run on one core.
    """
    n = len(encoded.input_ids)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    order = sorted(range(n), key=lambda i: len(encoded.input_ids[i]))
    batches = _batches(order, [len(r) for r in encoded.input_ids], batch_size, max_batch_tokens)
    if runner is not None:
        batches = _spread(batches, spread)

    def run(idx: list[int]) -> np.ndarray:
        rows = [encoded.input_ids[i] for i in idx]
        types = [encoded.token_type_ids[i] for i in idx] if encoded.token_type_ids else None
        return backend(pad_batch(rows, types, pad_id))

    results = runner.map(run, batches) if runner is not None and len(batches) > 1 else map(run, batches)
    out: np.ndarray | None = None
    for idx, logits in zip(batches, results, strict=True):
        if out is None:
            out = np.zeros((n, logits.shape[-1]), dtype=np.float32)
        out[idx] = logits
    assert out is not None
    return out


def _spread(batches: list[list[int]], parts: int) -> list[list[int]]:
    """Halve the largest batch until there are ``parts`` batches or each holds one row."""
    batches = list(batches)
    while len(batches) < parts:
        largest = max(range(len(batches)), key=lambda j: len(batches[j]))
        rows = batches[largest]
        if len(rows) < 2:
            break
        half = (len(rows) + 1) // 2
        batches[largest : largest + 1] = [rows[:half], rows[half:]]
    return batches


def _batches(
    order: list[int], lengths: list[int], batch_size: int, max_tokens: int | None
) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # ``order`` is sorted by length, so the newest row is the batch's longest.
        too_wide = max_tokens is not None and current and (len(current) + 1) * lengths[i] > max_tokens
        if current and (len(current) >= batch_size or too_wide):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class TorchBackend:
    """Runs a transformers sequence-classification model under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, model: Any) -> None:
        """Wrap ``model`` (already on its device) and switch it to eval mode."""
        import torch

        self._torch = torch
        self.model = model.eval()
        self.device = next(model.parameters()).device
        # The signature, not the code object: transformers wraps forward() in (*args, **kwargs)
        # decorators, and a sentence-pair model fed no segment ids scores a different input.
        self._takes_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Logits of one padded batch as float32."""
        torch = self._torch
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        if not self._takes_types:
            inputs.pop("token_type_ids", None)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        result: np.ndarray = logits.float().cpu().numpy()
        return result


_SPINNING = True


def set_onnx_spinning(allowed: bool) -> bool:
    """Whether ONNX sessions opened from now on keep idle worker threads spin-waiting for work.

    Spinning (ONNX Runtime's default) suits one big batch job on its own: about 4% more sentences/s
    here. A server runs several sessions (classifier, encoder, verifier) from several threads on few
    cores, where threads spinning in one session steal the cores another needs: measured on 2 cores
    with the whole pipeline in one process, turning it off took 16 concurrent runs from 6.7 to 8.3
    paragraphs/s and one run at a time from 5.7 to 6.6. The service turns it off (`graph.services`).
    Returns the previous setting.
    """
    global _SPINNING
    previous, _SPINNING = _SPINNING, allowed
    return previous


class OnnxBackend:
    """Runs an exported ONNX model with ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        """Open an inference session over the model file at ``path``."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = num_threads or (os.cpu_count() or 1)
        if not _SPINNING:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Logits of one padded batch."""
        feeds = {k: v for k, v in batch.items() if k in self._inputs}
        result: np.ndarray = self.session.run(None, feeds)[0]
        return result


def _warn_if_batch_dependent(onnx_path: Path) -> None:
    """Exports made before activations went per token score a sentence a little differently
    depending on its batch-mates; say so, and how to fix it, instead of failing."""
    try:
        report = json.loads((onnx_path.parent / "export.json").read_text())
    except (OSError, ValueError):
        report = {}
    if isinstance(report, dict) and report.get("quantized", True) and "activations" not in report:
        logger.warning(
            "%s quantizes activations per batch, so a sentence's score moves slightly with its "
            "batch-mates; run 'verifact export --model %s' again for per-token activations",
            onnx_path,
            onnx_path.parent.parent,
        )


@dataclass
class ClassifierMeta:
    """What a trained model directory says about how to use it (stored in its config)."""

    label_names: tuple[str, ...]
    positive_label: str | None
    threshold: float | None
    max_length: int
    pair_mode: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def read_meta(model_dir: Path) -> ClassifierMeta:
    """Read labels, threshold and input settings from a saved model's config.json."""
    cfg = read_json_object(
        model_dir / "config.json",
        ModelLoadError,
        f"no config.json in {model_dir}: not a saved classifier directory",
    )
    id2label = cfg.get("id2label") or {}
    names = tuple(id2label[str(i)] for i in range(len(id2label))) if id2label else ("0", "1")
    meta = cfg.get(META_KEY) or {}
    return ClassifierMeta(
        label_names=names,
        positive_label=meta.get("positive_label"),
        threshold=meta.get("threshold"),
        max_length=int(meta.get("max_length", 128)),
        pair_mode=bool(meta.get("pair_mode", False)),
        extra={
            k: v
            for k, v in meta.items()
            if k not in {"positive_label", "threshold", "max_length", "pair_mode"}
        },
    )


class CheckWorthinessClassifier:
    """A trained classifier: scores and labels per sentence (or sentence pair)."""

    def __init__(
        self,
        backend: Backend,
        tokenizer: Any,
        meta: ClassifierMeta,
        model_dir: Path | None = None,
        batch_size: int = 128,
        max_batch_tokens: int | None = DEFAULT_BATCH_TOKENS,
        parallel: int = 1,
    ) -> None:
        """Assemble a classifier from a backend, its tokenizer and its stored settings.

        ``parallel`` > 1 runs up to that many batches of one call at once on an ONNX backend, on
        threads of its own: with single-threaded sessions (``num_threads=1`` in `load`) that keeps
        several cores busy with less overhead than one session's intra-op threads (see
        `graph.services.PipelineConfig.model_threads`). torch spreads one batch over the cores
        itself, so a torch backend runs its batches one after another whatever ``parallel`` says.
        """
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, not {parallel}")
        self.backend = backend
        self.tokenizer = tokenizer
        self.meta = meta
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self._runner = (
            ThreadPoolExecutor(parallel, thread_name_prefix="verifact-model")
            if parallel > 1 and backend.name == "onnx"
            else None
        )
        self.parallel = parallel if self._runner is not None else 1
        """Batches of one call that run at once (1 on torch, whatever was asked)."""
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad) if pad is not None else 0
        names = meta.label_names
        self._positive_index = (
            names.index(meta.positive_label) if meta.positive_label in names and len(names) == 2 else None
        )

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        backend: str = "auto",
        batch_size: int = 128,
        num_threads: int | None = None,
        device: str | None = None,
        max_batch_tokens: int | None = DEFAULT_BATCH_TOKENS,
        parallel: int | None = None,
    ) -> CheckWorthinessClassifier:
        """Load a saved model directory; ``auto`` picks the ONNX model when one is there.

        An ensemble directory (`classifier.ensemble`) loads each member with these arguments.

        An ONNX model runs single-threaded forward passes, one per core at a time, unless told
        otherwise: on 2 cores that scored 906 CT24 sentences/s against 693 for one session spreading
        each pass over both cores (bench/results/classifier_speed.md). ``num_threads``
        sets the session's intra-op threads (default: 1 when ``parallel`` > 1, else one per core);
        ``parallel`` the passes at once (default: 1 when ``num_threads`` is set, else one per core).

        Raises:
            ModelLoadError: when the directory is missing or unusable, or the backend unknown.
        """
        path = Path(model_dir)
        if not path.is_dir():
            raise ModelLoadError(f"model directory not found: {path}")
        if backend not in ("auto", "torch", "onnx"):
            raise ModelLoadError(f"backend must be auto, torch or onnx, not {backend!r}")
        from classifier.ensemble import is_ensemble, load_ensemble

        if is_ensemble(path):
            return load_ensemble(
                path,
                backend=backend,
                batch_size=batch_size,
                num_threads=num_threads,
                device=device,
                max_batch_tokens=max_batch_tokens,
                parallel=parallel,
            )
        meta = read_meta(path)
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer from {path}: {exc}") from exc
        onnx_path = path / ONNX_DIR / ONNX_FILE
        use_onnx = backend == "onnx" or (backend == "auto" and onnx_path.is_file() and _has_onnxruntime())
        chosen: Backend
        if use_onnx:
            if not onnx_path.is_file():
                raise ModelLoadError(f"no ONNX model at {onnx_path}; run 'verifact export' first")
            if parallel is None:
                parallel = 1 if num_threads else (os.cpu_count() or 1)
            if num_threads is None and parallel > 1:
                num_threads = 1
            chosen = OnnxBackend(onnx_path, num_threads)
            _warn_if_batch_dependent(onnx_path)
        else:
            chosen = TorchBackend(_load_torch_model(path, device))
        return cls(
            chosen, tokenizer, meta, path, batch_size, max_batch_tokens, 1 if parallel is None else parallel
        )

    @property
    def positive_index(self) -> int | None:
        """The positive class of a binary model, whose label comes from the threshold (else None)."""
        return self._positive_index

    @property
    def threshold(self) -> float | None:
        """The stored decision threshold on the positive class (None for multi-class)."""
        return self.meta.threshold if self._positive_index is not None else None

    def close(self) -> None:
        """Stop the threads of ``parallel`` (a no-op without them); scoring still works, one batch
        at a time."""
        runner, self._runner = self._runner, None
        self.parallel = 1
        if runner is not None:
            runner.shutdown(wait=True)

    def _score(self, texts: Sequence[str], pairs: Sequence[str] | None) -> tuple[Encoded, FloatArray]:
        enc = encode(self.tokenizer, texts, pairs, self.meta.max_length)
        logits = batched_logits(
            self.backend,
            enc,
            self._pad_id,
            self.batch_size,
            self.max_batch_tokens,
            self._runner,
            spread=self.parallel,
        )
        return enc, softmax(logits)

    def probabilities(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> FloatArray:
        """Class probabilities per input, shape (n, n_classes), in input order."""
        return self._score(texts, pairs)[1]

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Prediction]:
        """Score and label each input; binary models apply the stored threshold."""
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pairs")
        if not texts:
            return []
        enc, probs = self._score(texts, pairs)
        names = self.meta.label_names
        threshold = self.threshold
        out: list[Prediction] = []
        for i, text in enumerate(texts):
            row = probs[i]
            if self._positive_index is not None:
                score = float(row[self._positive_index])
                cut = 0.5 if threshold is None else threshold
                label_id = self._positive_index if score >= cut else 1 - self._positive_index
            else:
                label_id = int(np.argmax(row))
                score = float(row[label_id])
            out.append(
                Prediction(
                    text=text,
                    score=score,
                    label=names[label_id],
                    probabilities={n: float(p) for n, p in zip(names, row, strict=True)},
                    threshold=threshold,
                    n_tokens=len(enc.input_ids[i]),
                    truncated=enc.truncated[i],
                )
            )
        return out

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The positive-class probability of each sentence."""
        return [p.score for p in self.predict(texts)]


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _load_torch_model(path: Path, device: str | None) -> Any:
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model weights from {path}: {exc}") from exc
    if device:
        model = model.to(device)
    return model
