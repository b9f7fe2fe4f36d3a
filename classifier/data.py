"""Labelled data: read TSV/CSV/JSONL files or hub datasets, map labels, tokenize for training."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.args import DataArguments
from classifier.errors import DataError

logger = logging.getLogger(__name__)

# Some CT24 rows are long debate turns; the csv module's 128 kB field cap is too small for them.
csv.field_size_limit(2**27)


@dataclass(frozen=True)
class Examples:
    """A labelled split: texts, optional second texts (pair mode) and label ids."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    pairs: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> Examples:
        """The first ``n`` examples (all of them when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        pairs = self.pairs[:n] if self.pairs is not None else None
        return Examples(self.texts[:n], self.labels[:n], pairs)


@dataclass(frozen=True)
class Dataset:
    """The splits of one run and the label names they share (index = label id)."""

    train: Examples
    validation: Examples | None
    test: Examples | None
    label_names: tuple[str, ...]
    positive_label: str | None

    @property
    def positive_index(self) -> int | None:
        """The id of the positive class in a binary task, else None."""
        if len(self.label_names) != 2 or self.positive_label is None:
            return None
        return self.label_names.index(self.positive_label)


def normalise_text(text: str) -> str:
    """Casefold and squeeze white space, so near-identical sentences compare equal."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Read a TSV, CSV or JSONL file into dict rows, with clear errors for unusable files."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"data path is not a file: {path}")
    suffix = path.suffix.lower()
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            if suffix in (".jsonl", ".json"):
                rows = _read_jsonl(fh, path)
            elif suffix in (".tsv", ".csv", ".txt"):
                delimiter = "," if suffix == ".csv" else "\t"
                rows = list(csv.DictReader(fh, delimiter=delimiter))
            else:
                raise DataError(f"unsupported data file type {suffix!r}: {path} (use .tsv/.csv/.jsonl)")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text: {exc}") from exc
    if not rows:
        raise DataError(f"data file is empty: {path}")
    return rows


def _read_jsonl(fh: Iterable[str], path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: each line must be a JSON object")
        rows.append(obj)
    return rows


def _column(rows: Sequence[dict[str, Any]], name: str, source: str) -> list[Any]:
    if name not in rows[0]:
        available = ", ".join(sorted(str(k) for k in rows[0]))
        raise DataError(f"{source}: no column {name!r}; the columns are: {available}")
    values = [row.get(name) for row in rows]
    missing = sum(1 for v in values if v is None)
    if missing:
        raise DataError(f"{source}: {missing} rows have no value in column {name!r}")
    return values


@dataclass(frozen=True)
class _RawSplit:
    texts: list[str]
    pairs: list[str] | None
    labels: list[str]
    source: str


def _raw_from_rows(
    rows: Sequence[dict[str, Any]],
    source: str,
    text_column: str,
    label_column: str,
    pair_column: str | None,
    aliases: dict[str, str],
) -> _RawSplit:
    texts = [str(v) for v in _column(rows, text_column, source)]
    pairs = [str(v) for v in _column(rows, pair_column, source)] if pair_column else None
    labels = [aliases.get(str(v).strip(), str(v).strip()) for v in _column(rows, label_column, source)]
    return _RawSplit(texts, pairs, labels, source)


def _load_file_split(args: DataArguments, path_str: str, aliases: dict[str, str]) -> _RawSplit:
    path = args.resolve(path_str)
    rows = read_rows(path)
    return _raw_from_rows(
        rows, str(path), args.text_column, args.label_column, args.text_pair_column, aliases
    )


def _load_hub_split(args: DataArguments, split: str, aliases: dict[str, str]) -> _RawSplit:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - the train extra installs it
        raise DataError(
            "dataset_name needs the 'datasets' package (pip install verifact-server[train])"
        ) from exc
    assert args.dataset_name is not None
    try:
        ds = datasets.load_dataset(args.dataset_name, args.dataset_config_name, split=split)
    except Exception as exc:  # the hub client raises many unrelated types
        raise DataError(f"could not load {args.dataset_name!r} split {split!r}: {exc}") from exc
    feature = ds.features.get(args.label_column)
    names = getattr(feature, "names", None)
    rows = [dict(r) for r in ds]
    if not rows:
        raise DataError(f"{args.dataset_name} split {split!r} is empty")
    if names:
        for row in rows:
            row[args.label_column] = names[int(row[args.label_column])]
    source = f"{args.dataset_name}[{split}]"
    return _raw_from_rows(rows, source, args.text_column, args.label_column, args.text_pair_column, aliases)


def _extra_split(args: DataArguments, spec: str, aliases: dict[str, str]) -> _RawSplit:
    parts = spec.split("|")
    if len(parts) not in (1, 3, 4):
        raise DataError(
            f"extra_train_files entry must be 'PATH', 'PATH|TEXT|LABEL' or 'PATH|TEXT|LABEL|KEEP': {spec!r}"
        )
    text_col, label_col = (parts[1], parts[2]) if len(parts) >= 3 else (args.text_column, args.label_column)
    path = args.resolve(parts[0])
    rows = read_rows(path)
    if len(parts) == 4:
        # Keep only rows whose raw label is listed: a source may be reliable for one class only.
        keep = {v.strip() for v in parts[3].split(",")}
        rows = [r for r in rows if str(r.get(label_col, "")).strip() in keep]
        if not rows:
            raise DataError(f"{path}: no rows with {label_col} in {sorted(keep)}")
    return _raw_from_rows(rows, str(path), text_col, label_col, None, aliases)


def _to_examples(raw: _RawSplit, label_ids: dict[str, int]) -> Examples:
    unknown = Counter(label for label in raw.labels if label not in label_ids)
    if unknown:
        shown = ", ".join(f"{k!r} ({n} rows)" for k, n in unknown.most_common(5))
        raise DataError(
            f"{raw.source}: unknown labels {shown}; expected one of {sorted(label_ids)}"
            " (map other values with label_aliases)"
        )
    labels = tuple(label_ids[label] for label in raw.labels)
    pairs = tuple(raw.pairs) if raw.pairs is not None else None
    return Examples(tuple(raw.texts), labels, pairs)


def _drop_overlap(raw: _RawSplit, seen: set[str]) -> tuple[_RawSplit, int]:
    keep = [i for i, t in enumerate(raw.texts) if normalise_text(t) not in seen]
    dropped = len(raw.texts) - len(keep)
    pairs = [raw.pairs[i] for i in keep] if raw.pairs is not None else None
    return (
        _RawSplit([raw.texts[i] for i in keep], pairs, [raw.labels[i] for i in keep], raw.source),
        dropped,
    )


def _holdout_split(args: DataArguments, aliases: dict[str, str]) -> tuple[_RawSplit, _RawSplit]:
    """Split the train file by a sort column: its highest values become the validation split.

    With a time-ordered column (CT24 sentence ids follow the debates' dates) the validation
    split is the newest data, so choices made on it face the same drift as new text will.
    """
    assert args.train_file is not None and args.validation_holdout is not None
    column, sep, frac_s = args.validation_holdout.partition(":")
    try:
        frac = float(frac_s)
    except ValueError:
        frac = -1.0
    if not sep or not 0.0 < frac < 1.0:
        raise DataError(f"validation_holdout must look like COLUMN:FRACTION, got {args.validation_holdout!r}")
    path = args.resolve(args.train_file)
    rows = read_rows(path)
    keys = _column(rows, column, str(path))
    try:
        order = sorted(range(len(rows)), key=lambda i: float(keys[i]))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: column {column!r} is not numeric: {exc}") from exc
    cut = len(rows) - max(1, int(len(rows) * frac))
    parts = [[rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]]
    train, val = (
        _raw_from_rows(
            p, f"{path}[{name}]", args.text_column, args.label_column, args.text_pair_column, aliases
        )
        for p, name in zip(parts, ("train", f"newest {frac:.0%} by {column}"), strict=True)
    )
    return train, val


def load_dataset(args: DataArguments) -> Dataset:
    """Load train, validation and test splits as configured, with one shared label map.

    Raises:
        DataError: for a missing or empty file, a missing column, or an unknown label.
    """
    aliases = args.aliases()
    if args.dataset_name:
        train = _load_hub_split(args, args.train_split, aliases)
        val = _load_hub_split(args, args.validation_split, aliases) if args.validation_split else None
        test = _load_hub_split(args, args.test_split, aliases) if args.test_split else None
    else:
        assert args.train_file is not None
        if args.validation_holdout:
            train, val = _holdout_split(args, aliases)
        else:
            train = _load_file_split(args, args.train_file, aliases)
            val = _load_file_split(args, args.validation_file, aliases) if args.validation_file else None
        test = _load_file_split(args, args.test_file, aliases) if args.test_file else None

    eval_texts = {normalise_text(t) for split in (val, test) if split for t in split.texts}
    if eval_texts:
        shared = sum(1 for t in train.texts if normalise_text(t) in eval_texts)
        if shared:
            action = "dropping them" if args.drop_eval_overlap else "keeping them"
            logger.warning(
                "%d training sentences also occur in the validation or test data (%s)", shared, action
            )
            if args.drop_eval_overlap:
                train, _ = _drop_overlap(train, eval_texts)

    for spec in args.extra_train_files:
        extra, dropped = _drop_overlap(_extra_split(args, spec, aliases), eval_texts)
        known = {normalise_text(t) for t in train.texts}
        extra, repeated = _drop_overlap(extra, known)
        logger.info(
            "extra data %s: %d rows kept, %d dropped as eval overlap, %d as train duplicates",
            spec,
            len(extra.texts),
            dropped,
            repeated,
        )
        pairs = None if train.pairs is None else train.pairs + (extra.pairs or [])
        train = _RawSplit(train.texts + extra.texts, pairs, train.labels + extra.labels, train.source)

    names = tuple(args.class_names) if args.class_names else tuple(sorted(set(train.labels)))
    if len(names) < 2:
        raise DataError(f"{train.source}: need at least two classes, found {list(names)}")
    label_ids = {name: i for i, name in enumerate(names)}
    positive = args.positive_label if len(names) == 2 else None
    if positive is not None and positive not in label_ids:
        raise DataError(f"positive_label {positive!r} is not a class; the classes are {list(names)}")
    return Dataset(
        train=_to_examples(train, label_ids).head(args.max_train_samples),
        validation=_to_examples(val, label_ids).head(args.max_eval_samples) if val else None,
        test=_to_examples(test, label_ids).head(args.max_eval_samples) if test else None,
        label_names=names,
        positive_label=positive,
    )


class EncodedDataset:
    """Tokenized examples as a map-style dataset of dicts, padded later by a collator."""

    def __init__(self, examples: Examples, tokenizer: Any, max_length: int) -> None:
        """Tokenize ``examples`` once, truncating to ``max_length`` tokens."""
        pairs = list(examples.pairs) if examples.pairs is not None else None
        enc = tokenizer(list(examples.texts), pairs, truncation=True, max_length=max_length, padding=False)
        self._features: list[dict[str, Any]] = []
        for i, label in enumerate(examples.labels):
            item = {key: enc[key][i] for key in enc}
            item["labels"] = label
            self._features.append(item)

    def __len__(self) -> int:
        return len(self._features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._features[index]

    def lengths(self) -> list[int]:
        """Token counts, for length-grouped sampling."""
        return [len(f["input_ids"]) for f in self._features]
