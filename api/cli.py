"""The ``verifact`` command line. Heavy libraries load inside each command, so help is instant."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "../shared/data"
DEFAULT_CLASSIFIER_DIR = "runs/cpu-minilm/model"
DEFAULT_INDEX_DIR = "runs/index"
DEFAULT_NLI_MODEL_DIR = "runs/cpu-minilm-nli/model"


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _data_dir(explicit: str | None) -> str:
    return explicit or os.environ.get("VERIFACT_DATA_DIR") or DEFAULT_DATA_DIR


def _classifier_dir(explicit: str | None) -> str:
    return explicit or os.environ.get("VERIFACT_CLASSIFIER_DIR") or DEFAULT_CLASSIFIER_DIR


def cmd_train(ns: argparse.Namespace) -> int:
    """Fine-tune from a run file."""
    from classifier.args import parse_overrides, parse_run_config
    from classifier.train import run_training

    overrides = parse_overrides(ns.overrides)
    if ns.data_dir:
        overrides["data_dir"] = ns.data_dir
    # The environment's data directory applies only where the run file names none.
    summary = run_training(parse_run_config(ns.config, overrides, {"data_dir": _data_dir(None)}))
    if summary is None:
        return 0
    res = summary["results"]
    print(f"model saved to {Path(summary['config']['training']['output_dir']) / 'model'}")
    for split in ("validation", "test"):
        if split in res:
            _print_metrics(split, res[split])
    return 0


def _print_metrics(name: str, block: dict[str, Any]) -> None:
    rows = [("0.5", block["at_0.5"])]
    if "at_threshold" in block:
        rows.append((f"{block['threshold']:.3f}", block["at_threshold"]))
    for cut, m in rows:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in m.items())
        print(f"{name:>10} (n={block['n']}, threshold {cut}): {shown}")


def _quiet_transformers() -> None:
    """Inference commands print results, not weight-loading progress bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def cmd_evaluate(ns: argparse.Namespace) -> int:
    """Evaluate a saved model on a labelled file."""
    from classifier.data import read_rows
    from classifier.evaluate import evaluate_file
    from classifier.predict import CheckWorthinessClassifier

    read_rows(Path(ns.data))  # fail on a bad file before paying for the model
    _quiet_transformers()
    clf = CheckWorthinessClassifier.load(_classifier_dir(ns.model), backend=ns.backend)
    aliases = json.loads(ns.label_aliases) if ns.label_aliases else None
    result = evaluate_file(clf, ns.data, ns.text_column, ns.label_column, ns.pair_column, aliases, ns.out)
    if ns.json:
        print(json.dumps(result, indent=2))
    else:
        _print_metrics(Path(ns.data).name, result)
    return 0


def _read_texts(items: Sequence[str]) -> list[str]:
    if list(items) == ["-"]:
        return [line.rstrip("\n") for line in sys.stdin if line.strip()]
    return list(items)


def cmd_predict(ns: argparse.Namespace) -> int:
    """Score sentences for check-worthiness."""
    from classifier.predict import CheckWorthinessClassifier

    texts = _read_texts(ns.texts)
    if not texts:
        raise CliError("no sentences given (pass them as arguments, or '-' to read lines from stdin)")
    _quiet_transformers()
    clf = CheckWorthinessClassifier.load(_classifier_dir(ns.model), backend=ns.backend)
    preds = clf.predict(texts)
    if ns.json:
        print(json.dumps([p.__dict__ for p in preds], indent=2))
        return 0
    for p in preds:
        mark = "CLAIM" if p.label == clf.meta.positive_label else "     "
        note = " (truncated)" if p.truncated else ""
        print(f"{p.score:6.3f}  {mark}  {p.text}{note}")
    if clf.threshold is not None:
        print(f"threshold {clf.threshold:.3f} · backend {clf.backend.name}")
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    """Export a saved model to int8 ONNX, checked against torch."""
    from classifier.data import read_rows
    from classifier.ensemble import is_ensemble, read_spec
    from classifier.errors import ModelLoadError
    from classifier.export import export_onnx
    from classifier.predict import read_meta
    from graph.nli_cli import DEFAULT_NLI_DATA_DIR

    model = _classifier_dir(ns.model)
    # An ensemble has no weights of its own: each member gets its ONNX model, checked on the same file.
    ensemble = is_ensemble(model)
    members = read_spec(model, ModelLoadError)[0] if ensemble else [Path(model)]
    pair_mode = read_meta(Path(members[0])).pair_mode
    # Each kind of model is checked on its own kind of input by default: CT24 sentences, NLI dev pairs.
    defaults = (
        (f"{DEFAULT_NLI_DATA_DIR}/dev.tsv", "claim", "evidence")
        if pair_mode
        else ("ct24_checkworthy_en/dev.tsv", "Text", None)
    )
    check_file = ns.check_file or defaults[0]
    text_column = ns.text_column or defaults[1]
    pair_column = ns.pair_column or defaults[2]
    if ns.check_file is None and pair_mode and not Path(check_file).is_file():
        raise CliError(
            f"{model} is a sentence-pair model, checked on pairs: {check_file} is missing "
            "(make it with `verifact data nli`, or give --check-file and --pair-column)"
        )
    path = Path(check_file)
    if not path.is_absolute() and not path.exists():
        path = Path(_data_dir(ns.data_dir)) / path
    rows = read_rows(path)
    missing = {c for c in (text_column, pair_column) if c} - set(rows[0])  # read_rows refuses empty files
    if missing:
        raise CliError(f"{path}: no column {', '.join(sorted(missing))}")
    texts = [str(r[text_column]) for r in rows]
    pairs = [str(r[pair_column]) for r in rows] if pair_column else None
    reports = [export_onnx(m, texts, pairs, min_agreement=ns.min_agreement) for m in members]
    print(json.dumps(reports if ensemble else reports[0], indent=2))
    return 0


def _tune_split(ns: argparse.Namespace, members: Sequence[str]) -> tuple[tuple[list[str], list[int]], str]:
    """The (texts, is_positive) an ensemble's threshold is tuned on, and what they are."""
    if ns.tune_config:
        from classifier.args import parse_run_config
        from classifier.data import load_dataset

        # Only the validation split is needed: the run's test file is not read.
        cfg = parse_run_config(ns.tune_config, {"test_file": None}, {"data_dir": _data_dir(ns.data_dir)})
        data = load_dataset(cfg.data)
        if data.validation is None or data.positive_index is None:
            raise CliError(f"{ns.tune_config}: a binary run file with a validation split is needed")
        pos = data.positive_index
        labels = [int(y == pos) for y in data.validation.labels]
        source = cfg.data.validation_holdout or cfg.data.validation_file
        return (list(data.validation.texts), labels), f"validation split of {ns.tune_config} ({source})"
    from classifier.evaluate import read_labelled
    from classifier.predict import read_meta

    meta = read_meta(Path(members[0]))
    aliases = json.loads(ns.label_aliases) if ns.label_aliases else None
    texts, _, ids = read_labelled(
        ns.tune_data, meta.label_names, ns.text_column, ns.label_column, None, aliases
    )
    positive = meta.label_names.index(meta.positive_label) if meta.positive_label else 1
    return (texts, [int(i == positive) for i in ids]), str(ns.tune_data)


def cmd_ensemble(ns: argparse.Namespace) -> int:
    """Average saved classifiers as one model, its threshold tuned on held-out data."""
    from classifier.ensemble import build_ensemble, check_members
    from classifier.errors import ModelLoadError

    if ns.tune_config and ns.tune_data:
        raise CliError("give --tune-config or --tune-data, not both")
    check_members(ns.members, ModelLoadError, ns.out)  # before reading any tuning data
    _quiet_transformers()
    tune, tuned_on = _tune_split(ns, ns.members) if (ns.tune_config or ns.tune_data) else (None, "")
    spec = build_ensemble(ns.members, ns.out, tune, tuned_on, backend=ns.backend)
    where = spec["threshold_tuned_on"]
    shown = f", F1 {spec['tune_f1']:.4f} on {spec['tune_n']} sentences" if "tune_f1" in spec else ""
    print(f"ensemble of {len(ns.members)} models written to {ns.out}")
    print(f"threshold {spec['threshold']:.4f} ({where}{shown})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="verifact", description="Check-worthy claim detection and verification."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="fine-tune a classifier from a JSON run file")
    p.add_argument("--config", required=True, help="run file, e.g. configs/cpu-minilm.json")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run-file key (repeatable), e.g. --set num_train_epochs=3",
    )
    p.add_argument("--data-dir", help=f"data directory (default: $VERIFACT_DATA_DIR or {DEFAULT_DATA_DIR})")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a saved model on a labelled file")
    p.add_argument(
        "--model", help=f"model directory (default: $VERIFACT_CLASSIFIER_DIR or {DEFAULT_CLASSIFIER_DIR})"
    )
    p.add_argument("--data", required=True, help="TSV, CSV or JSONL file with labels")
    p.add_argument("--text-column", default="Text")
    p.add_argument("--pair-column", default=None)
    p.add_argument("--label-column", default="class_label")
    p.add_argument("--label-aliases", help='JSON map of raw label -> class, e.g. \'{"1": "Yes", "0": "No"}\'')
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    p.add_argument("--out", help="write a report, confusion matrix and JSON here")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="score sentences for check-worthiness")
    p.add_argument("texts", nargs="+", help="sentences, or '-' to read one per line from stdin")
    p.add_argument(
        "--model", help=f"model directory (default: $VERIFACT_CLASSIFIER_DIR or {DEFAULT_CLASSIFIER_DIR})"
    )
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ensemble", help="average saved classifiers as one model (mean probability)")
    p.add_argument("members", nargs="+", help="model directories (two or more)")
    p.add_argument("--out", required=True, help="the ensemble directory to write")
    p.add_argument(
        "--tune-config",
        help="tune the threshold on this run file's validation split, e.g. configs/cpu-minilm-drift.json",
    )
    p.add_argument("--tune-data", help="or on a labelled TSV, CSV or JSONL file")
    p.add_argument("--text-column", default="Text")
    p.add_argument("--label-column", default="class_label")
    p.add_argument("--label-aliases", help='JSON map of raw label -> class, e.g. \'{"1": "Yes", "0": "No"}\'')
    p.add_argument("--data-dir", help=f"data directory (default: $VERIFACT_DATA_DIR or {DEFAULT_DATA_DIR})")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    p.set_defaults(func=cmd_ensemble)

    from graph.nli_cli import DEFAULT_NLI_DATA_DIR, NLICliDefaults, add_data_parser, add_nli_parser

    p = sub.add_parser("export", help="export a saved model to int8 ONNX (checked against torch)")
    p.add_argument("--model", help="model directory")
    p.add_argument(
        "--check-file",
        help="inputs on which ONNX must agree with torch (default: CT24 dev sentences, or the NLI "
        f"dev pairs {DEFAULT_NLI_DATA_DIR}/dev.tsv for a sentence-pair model)",
    )
    p.add_argument("--text-column", help="default: Text, or claim for a sentence-pair model")
    p.add_argument(
        "--pair-column", help="second text of a sentence-pair model (default: evidence for such a model)"
    )
    p.add_argument("--data-dir")
    p.add_argument(
        "--min-agreement",
        type=float,
        default=0.99,
        help="the share of decisive checks (not near-ties) whose label must match torch's",
    )
    p.set_defaults(func=cmd_export)

    nli_defaults = NLICliDefaults(
        data_dir=_data_dir(None),
        nli_model=os.environ.get("VERIFACT_NLI_MODEL") or DEFAULT_NLI_MODEL_DIR,
    )
    add_data_parser(sub, nli_defaults)
    add_nli_parser(sub, nli_defaults)

    from retrieval.build import IndexCliDefaults, add_index_parser

    # An unset cache leaves the encoder library to pick its default folder.
    add_index_parser(
        sub,
        IndexCliDefaults(
            index_dir=os.environ.get("VERIFACT_INDEX_DIR") or DEFAULT_INDEX_DIR,
            encoder_cache=os.environ.get("VERIFACT_ENCODER_CACHE") or None,
            data_dir=_data_dir(None),
        ),
    )
    from api.cli_service import add_service_parsers

    add_service_parsers(sub)
    return parser


def configure_logging(*, verbose: bool, command: str) -> None:
    """INFO for the long-running commands (and with ``-v``), else WARNING; noisy libraries held down."""
    level = logging.INFO if verbose or command in ("train", "serve", "prepare") else logging.WARNING
    # The handler holds the level too: bm25s sets its own logger to DEBUG when imported.
    handler = logging.StreamHandler()
    handler.setLevel(level)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", handlers=[handler])
    # faiss reports each CPU-specific build it fails to find at INFO; only the outcome matters.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    # The HTTP clients (the LLM judge's) log every request at INFO: a line per call, under load a flood.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line and exit 2, never a stack trace."""
    ns = build_parser().parse_args(argv)
    configure_logging(verbose=ns.verbose, command=ns.command)
    from api.cli_service import ServiceCliError
    from classifier.errors import ClassifierError
    from graph.context import JudgeUnavailableError
    from graph.errors import JudgeError, TraceStoreError
    from retrieval.errors import RetrievalError

    try:
        code: int = ns.func(ns)
    except (
        ClassifierError,
        RetrievalError,
        JudgeError,
        TraceStoreError,
        JudgeUnavailableError,
        CliError,
        ServiceCliError,
    ) as exc:
        print(f"verifact: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("verifact: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`verifact index info | head`): stop quietly, as a shell tool would.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
