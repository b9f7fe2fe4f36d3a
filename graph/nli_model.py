"""The NLI verifier's model: a sentence-pair classifier, its label map and its input order.

Two kinds load the same way: a directory saved by our training module (`verifact train` with
configs/cpu-minilm-nli.json: labels are ours, the claim comes first), or any Hugging Face NLI
sequence-classification model by directory or hub id (labels such as entailment / neutral /
contradiction mapped to ours by `label_map`; the evidence comes first, as the premise of MNLI-style
models). torch and transformers load only when a model does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from classifier.metrics import FloatArray
from graph.errors import VerifierError
from graph.nli_calibration import label_matrix
from graph.schemas import LABELS, Label

PairOrder = Literal["auto", "claim_evidence", "evidence_claim"]
HUB_MAX_LENGTH = 512
"""Input length for models that do not record one (most NLI models are trained to 512 tokens)."""
LOG_FLOOR = 1e-30
"""The smallest probability whose log is taken (log 0 is -inf)."""


class NLISettings(BaseModel):
    """Which pair model the NLI judge runs and how; library code gets it passed in, never from env."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    """A model directory (ours or any saved HF sequence classifier) or a hub id (needs the internet)."""
    label_map: dict[str, Label] = Field(default_factory=dict)
    """Model label name -> our label, compared casefolded, on top of the defaults (our own names and
    entailment/contradiction/neutral)."""
    pair_order: PairOrder = "auto"
    """Which text goes first. auto: the claim for our models, the evidence (the premise) otherwise."""
    max_length: int | None = Field(default=None, ge=8)
    """Tokens per pair; None: what the model directory records, else 512."""
    params_file: str | None = None
    """Temperature and aggregation settings (nli_judge.json); None: the one in the model directory
    if there is one, else the untuned defaults."""
    backend: Literal["auto", "torch", "onnx"] = "auto"
    """auto uses an exported int8 ONNX model when the directory holds one."""
    device: str | None = None
    """A torch device such as "cuda"; None for the CPU."""
    batch_size: int = Field(default=64, ge=1)
    """Pairs per forward pass at most."""
    batch_tokens: int | None = Field(default=512, ge=16)
    """Padded tokens per forward pass at most (see `classifier.predict.batched_logits`); None: no
    budget, only `batch_size`."""
    threads: int | None = Field(default=None, ge=1)
    """ONNX Runtime's intra-op threads per forward pass; None: 1 when `parallel` > 1, else one per
    core (see `classifier.predict.CheckWorthinessClassifier.load`)."""
    parallel: int | None = Field(default=None, ge=1)
    """Forward passes of one call run at once, on threads of the model's own; None: 1 when `threads`
    is set, else one per core."""
    name: str = Field(default="nli", min_length=1)
    """The judge's name in verdicts and traces."""


class PairScorer(Protocol):
    """Scores (claim, evidence) pairs; the NLI judge's seam to its model."""

    @property
    def matrix(self) -> FloatArray:
        """The (model labels x 3) map from the model's labels to `LABELS` (see `label_matrix`)."""
        ...

    def log_probs(self, claims: Sequence[str], evidences: Sequence[str]) -> FloatArray:
        """Log-probabilities over the model's own labels, one row per pair, in input order."""
        ...

    def describe(self) -> dict[str, Any]:
        """What a trace records about the model: id, hash, labels, label map, input order."""
        ...


class PairModel:
    """A loaded sentence-pair classifier behind the `PairScorer` seam.

    Calls are serialised by a lock: the tokenizer's truncation settings are shared state, and the
    CPU is better spent on one batched forward pass at a time.
    """

    def __init__(
        self,
        classifier: Any,
        *,
        label_map: Mapping[str, Label] | None = None,
        claim_first: bool = True,
        model_id: str = "",
        model_hash: str = "",
    ) -> None:
        """Wrap a `classifier.predict.CheckWorthinessClassifier` whose `meta.label_names` name its classes.

        Raises:
            VerifierError: a model label cannot be mapped to ours.
        """
        self.classifier = classifier
        self.label_names: tuple[str, ...] = tuple(classifier.meta.label_names)
        self._matrix = label_matrix(self.label_names, label_map)
        self._label_map = {name: _target(self._matrix, i) for i, name in enumerate(self.label_names)}
        self.claim_first = claim_first
        self.model_id = model_id
        self.model_hash = model_hash

    @property
    def matrix(self) -> FloatArray:
        """The model-to-our label map."""
        return self._matrix

    def log_probs(self, claims: Sequence[str], evidences: Sequence[str]) -> FloatArray:
        """Log-probabilities over the model's labels for each (claim, evidence) pair."""
        if len(claims) != len(evidences):
            raise ValueError(f"got {len(claims)} claims but {len(evidences)} evidence texts")
        if not claims:
            return np.zeros((0, len(self.label_names)), dtype=np.float64)
        first, second = (claims, evidences) if self.claim_first else (evidences, claims)
        probs = self.classifier.probabilities(list(first), list(second))
        # log p is the logit up to a per-row constant, which no softmax (at any temperature) sees.
        out: FloatArray = np.log(np.maximum(np.asarray(probs, dtype=np.float64), LOG_FLOOR))
        return out

    def close(self) -> None:
        """Stop the model's own threads (see `NLISettings.parallel`)."""
        self.classifier.close()

    def describe(self) -> dict[str, Any]:
        """Model id and hash, its labels and what they mean here, and the input order."""
        return {
            "model": self.model_id,
            "model_hash": self.model_hash,
            "model_labels": list(self.label_names),
            "label_map": self._label_map,
            "pair_order": "claim_evidence" if self.claim_first else "evidence_claim",
            "max_length": int(self.classifier.meta.max_length),
        }

    @classmethod
    def load(cls, settings: NLISettings) -> PairModel:
        """Load the model `settings` names (a directory, else a hub id).

        Raises:
            VerifierError: the model cannot be loaded or its labels cannot be mapped.
        """
        from classifier.errors import ClassifierError

        path = Path(settings.model).expanduser()
        if not path.is_dir() and (path.is_absolute() or settings.model.startswith((".", "~"))):
            raise VerifierError(f"NLI model directory not found: {path}")
        try:
            if path.is_dir():
                classifier, ours, model_hash = _load_directory(path, settings)
            else:
                classifier, ours, model_hash = _load_hub(settings)
        except (ClassifierError, OSError, ValueError) as exc:
            raise VerifierError(f"cannot load the NLI model {settings.model!r}: {exc}") from exc
        order = settings.pair_order
        claim_first = order == "claim_evidence" or (order == "auto" and ours)
        return cls(
            classifier,
            label_map=settings.label_map,
            claim_first=claim_first,
            model_id=str(path) if path.is_dir() else settings.model,
            model_hash=model_hash,
        )


def _target(matrix: FloatArray, row: int) -> str:
    return LABELS[int(np.argmax(matrix[row]))]


def _load_directory(path: Path, settings: NLISettings) -> tuple[Any, bool, str]:
    """A saved model directory: (classifier, trained by our module?, content hash)."""
    from classifier.modeling import model_files_hash
    from classifier.predict import META_KEY, CheckWorthinessClassifier

    config = (
        json.loads((path / "config.json").read_text(encoding="utf-8"))
        if (path / "config.json").is_file()
        else {}
    )
    ours = isinstance(config.get(META_KEY), dict) and bool(config[META_KEY].get("pair_mode"))
    classifier = CheckWorthinessClassifier.load(
        path,
        backend=settings.backend,
        batch_size=settings.batch_size,
        num_threads=settings.threads,
        device=settings.device,
        max_batch_tokens=settings.batch_tokens,
        parallel=settings.parallel,
    )
    max_length = settings.max_length or (
        classifier.meta.max_length if ours else min(_tokenizer_limit(classifier.tokenizer), HUB_MAX_LENGTH)
    )
    # transformers leaves default names (LABEL_0, ...) out of config.json; its config restores them.
    from transformers import AutoConfig

    id2label = AutoConfig.from_pretrained(str(path)).id2label
    names = tuple(str(id2label[i]) for i in range(len(id2label)))
    classifier.meta = dataclasses.replace(
        classifier.meta, label_names=names, max_length=max_length, pair_mode=True
    )
    return classifier, ours, model_files_hash(path)


def _load_hub(settings: NLISettings) -> tuple[Any, bool, str]:
    """A hub id: (classifier, False, "hub:<id>@<commit>")."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from classifier.predict import CheckWorthinessClassifier, ClassifierMeta, TorchBackend

    tokenizer = AutoTokenizer.from_pretrained(settings.model)
    model = AutoModelForSequenceClassification.from_pretrained(settings.model)
    if settings.device:
        model = model.to(settings.device)
    id2label = model.config.id2label
    meta = ClassifierMeta(
        label_names=tuple(str(id2label[i]) for i in range(len(id2label))),
        positive_label=None,
        threshold=None,
        max_length=settings.max_length or min(_tokenizer_limit(tokenizer), HUB_MAX_LENGTH),
        pair_mode=True,
    )
    classifier = CheckWorthinessClassifier(
        TorchBackend(model), tokenizer, meta, None, settings.batch_size, settings.batch_tokens
    )
    commit = getattr(model.config, "_commit_hash", None) or "unknown"
    return classifier, False, f"hub:{settings.model}@{commit}"


def _tokenizer_limit(tokenizer: Any) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a recorded limit report a huge sentinel.
    return int(limit) if isinstance(limit, int) and 0 < limit < 100_000 else HUB_MAX_LENGTH
