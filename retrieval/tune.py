"""Domain adaptation: fine-tune the encoder on (claim, evidence) pairs with in-batch negatives.

Training pairs come from the train parts of labelled sets only: Climate-FEVER train claims
(by the project split), the COVID-Fact train split and WiCE dev. Hard negatives are the
sentences annotators judged NOT_ENOUGH_INFO for the same claim: on topic, yet not evidence.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retrieval.climate_fever import training_claims
from retrieval.errors import EncoderError, IngestError
from retrieval.ingest import iter_jsonl

logger = logging.getLogger(__name__)

SOURCES = ("climate-fever", "covid-fact", "wice")
LOSSES = ("mnrl", "guided")
REPORT_FILE = "verifact_tune.json"


@dataclass(frozen=True)
class TunePair:
    """A query, a passage that answers it, and optionally one that looks close but does not."""

    query: str
    positive: str
    negative: str | None = None


@dataclass(frozen=True)
class TuneConfig:
    """Training knobs. Epochs and learning rate were picked on 837 cross-fitted Climate-FEVER train
    and dev claims against 2 epochs at 2e-5 (bench/results/retrieval_tune.md); the rest on dev."""

    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    max_seq_length: int = 128
    hard_negatives: bool = True
    seed: int = 42
    # Keep the uniform average of the weights at the ends of the last N epochs (0: the final ones).
    average_last_epochs: int = 0
    # "mnrl": in-batch negatives (MultipleNegativesRankingLoss); "guided": GISTEmbed's loss, which
    # drops an in-batch negative that the base encoder scores above the anchor's own positive.
    loss: str = "mnrl"


def _titled(title: str, text: str) -> str:
    # The index embeds "title: text" (IndexConfig.embed_title); train on the same form.
    return f"{title}: {text}" if title else text


def climate_fever_pairs(data_dir: str | Path, hard_negatives: bool = True) -> list[TunePair]:
    """Each train claim with each gold sentence; a NOT_ENOUGH_INFO sentence as its hard negative."""
    pairs = []
    rng = random.Random(0)
    for claim in training_claims(data_dir):
        negatives = [_titled(e.article, e.text) for e in claim.evidences if e.label == "NOT_ENOUGH_INFO"]
        for ev in claim.evidences:
            if ev.id in claim.gold_ids:
                neg = rng.choice(negatives) if hard_negatives and negatives else None
                pairs.append(TunePair(claim.text, _titled(ev.article, ev.text), neg))
    return pairs


def covid_fact_pairs(data_dir: str | Path) -> list[TunePair]:
    """COVID-Fact train claims (supported and refuted) with each of their evidence sentences."""
    pairs = []
    for _, rec in iter_jsonl(Path(data_dir) / "covid_fact" / "train.jsonl"):
        for sentence in rec["evidence"]:
            if sentence.strip():
                pairs.append(TunePair(rec["claim"], sentence.strip()))
    return pairs


def wice_pairs(data_dir: str | Path) -> list[TunePair]:
    """WiCE dev claims with every sentence of their gold supporting sets, titled by the page."""
    pairs = []
    for _, rec in iter_jsonl(Path(data_dir) / "wice" / "claim_dev.jsonl"):
        sentences = rec["evidence"]
        title = sentences[0].split("TITLE:", 1)[1].strip() if sentences and "TITLE:" in sentences[0] else ""
        for idx in sorted({i for group in rec["supporting_sentences"] for i in group}):
            if 0 < idx < len(sentences) and sentences[idx].strip():
                pairs.append(TunePair(rec["claim"], _titled(title, sentences[idx].strip())))
    return pairs


def read_pairs_file(path: str | Path) -> list[TunePair]:
    """Pairs from a JSONL file of {"query", "positive", optional "negative"}.

    Raises:
        IngestError: on a missing file or a record without query or positive.
    """
    pairs = []
    for where, rec in iter_jsonl(Path(path)):
        if not str(rec.get("query", "")).strip() or not str(rec.get("positive", "")).strip():
            raise IngestError(f"{where}: each record needs non-empty 'query' and 'positive'")
        pairs.append(TunePair(str(rec["query"]), str(rec["positive"]), rec.get("negative") or None))
    return pairs


def labelled_pairs(
    data_dir: str | Path, sources: Sequence[str], hard_negatives: bool = True
) -> list[TunePair]:
    """Pairs from the named labelled sources (train parts only).

    Raises:
        IngestError: for an unknown source name or missing data.
    """
    builders = {
        "climate-fever": lambda: climate_fever_pairs(data_dir, hard_negatives),
        "covid-fact": lambda: covid_fact_pairs(data_dir),
        "wice": lambda: wice_pairs(data_dir),
    }
    pairs: list[TunePair] = []
    for name in sources:
        if name not in builders:
            raise IngestError(f"unknown tuning source {name!r}; choose from {', '.join(SOURCES)}")
        got = builders[name]()
        logger.info("tuning pairs from %s: %d", name, len(got))
        pairs.extend(got)
    return pairs


def _datasets(pairs: Sequence[TunePair], hard_negatives: bool) -> Any:
    from datasets import Dataset, DatasetDict

    with_neg = [p for p in pairs if hard_negatives and p.negative]
    plain = [p for p in pairs if not (hard_negatives and p.negative)]
    parts = {}
    if with_neg:
        parts["with_negative"] = Dataset.from_dict(
            {
                "anchor": [p.query for p in with_neg],
                "positive": [p.positive for p in with_neg],
                "negative": [p.negative for p in with_neg],
            }
        )
    if plain:
        parts["pairs"] = Dataset.from_dict(
            {"anchor": [p.query for p in plain], "positive": [p.positive for p in plain]}
        )
    return DatasetDict(parts)


def _epoch_averager(model: Any, epochs: int, last: int) -> Any:
    """A trainer callback keeping the running mean of the weights at the ends of the last epochs."""
    import torch
    from transformers import TrainerCallback

    class EpochAverage(TrainerCallback):
        def __init__(self) -> None:
            self.mean: dict[str, torch.Tensor] = {}
            self.count = 0

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if epochs - round(state.epoch) >= last:
                return
            self.count += 1
            with torch.no_grad():
                for name, tensor in model.state_dict().items():
                    if not tensor.is_floating_point():
                        continue
                    if name not in self.mean:
                        self.mean[name] = tensor.detach().float().clone()
                    else:
                        self.mean[name] += (tensor.detach().float() - self.mean[name]) / self.count

        def apply(self) -> int:
            """Load the averaged weights into the model; returns how many epochs were averaged."""
            if self.count:
                model.load_state_dict(self.mean, strict=False)
            return self.count

    return EpochAverage()


def tune_encoder(
    base: str, pairs: Sequence[TunePair], out_dir: str | Path, config: TuneConfig | None = None
) -> dict[str, Any]:
    """Fine-tune ``base`` on ``pairs`` with in-batch negatives (``config.loss``) and save it to ``out_dir``.

    The saved folder is a sentence-transformers model, usable as ``--encoder out_dir``.

    Raises:
        EncoderError: on bad settings, when there are no pairs or when training fails to start.
    """
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        GISTEmbedLoss,
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        MultiDatasetBatchSamplers,
    )

    from retrieval.encoder import resolve_encoder_path

    config = config or TuneConfig()
    if config.loss not in LOSSES:
        raise EncoderError(f"unknown tuning loss {config.loss!r}; choose from {', '.join(LOSSES)}")
    if not 0 <= config.average_last_epochs <= config.epochs:
        raise EncoderError(
            f"average_last_epochs must be between 0 and epochs ({config.epochs}), "
            f"got {config.average_last_epochs}"
        )
    if not pairs:
        raise EncoderError("no tuning pairs: check the data directory and sources")
    out = Path(out_dir)
    started = time.perf_counter()
    try:
        model = SentenceTransformer(resolve_encoder_path(base), device="cpu")
    except Exception as exc:
        raise EncoderError(f"cannot load base encoder {base!r}: {exc}") from exc
    inference_length = model.max_seq_length or config.max_seq_length
    # Train on shorter inputs for speed; the saved model truncates where its base did.
    model.max_seq_length = min(config.max_seq_length, inference_length)
    data = _datasets(pairs, config.hard_negatives)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        seed=config.seed,
        # Repeated claims or passages in one batch would be false in-batch negatives.
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
        save_strategy="no",
        logging_steps=20,
        report_to=[],
        use_cpu=True,
    )
    averager = _epoch_averager(model, config.epochs, config.average_last_epochs)
    if config.loss == "guided":
        guide = SentenceTransformer(resolve_encoder_path(base), device="cpu")
        guide.max_seq_length = model.max_seq_length
        # Temperature 0.05: the same 1/20 scale as MultipleNegativesRankingLoss's default.
        loss: Any = GISTEmbedLoss(model, guide, temperature=0.05)
    else:
        loss = MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=loss,
        callbacks=[averager] if config.average_last_epochs else [],
    )
    history = trainer.train()
    averaged = averager.apply()
    model.max_seq_length = inference_length
    model.save(str(out))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # save_strategy "no": only logs were there
    report = {
        "base": base,
        "pairs": len(pairs),
        "with_hard_negative": sum(1 for p in pairs if p.negative),
        "config": asdict(config),
        "train_loss": float(history.training_loss),
        "averaged_epochs": averaged,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report
