"""``verifact index tune``: adapt the encoder to labelled (claim, evidence) pairs, then re-index."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import RetrievalError

if TYPE_CHECKING:
    from retrieval.build import IndexCliDefaults


def cmd_tune(ns: argparse.Namespace) -> int:
    """Fine-tune the index's encoder on the train parts of labelled data, save it, re-index."""
    from retrieval import build
    from retrieval.index import EvidenceIndex, reencode
    from retrieval.tune import SOURCES, TuneConfig, TunePair, labelled_pairs, read_pairs_file, tune_encoder

    out = Path(ns.out)
    if out.exists() and any(out.iterdir()) and not ns.force:
        raise build.IndexCommandError(f"{out} already exists; choose another --out or pass --force")
    sources = [s for s in ns.sources.split(",") if s] if ns.sources else []
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise build.IndexCommandError(
            f"unknown --sources {', '.join(unknown)}; choose from {', '.join(SOURCES)}"
        )
    reindex = not ns.no_reindex and (Path(ns.index) / "manifest.json").exists()
    manifest = EvidenceIndex.read_manifest(ns.index) if reindex else None
    base = ns.base or (str(manifest["encoder"]["name"]) if manifest else None)
    if base is None:
        from retrieval.encoder import PACKAGED_ENCODER

        base = PACKAGED_ENCODER
    config = TuneConfig(
        epochs=ns.epochs,
        batch_size=ns.batch_size,
        learning_rate=ns.learning_rate,
        hard_negatives=not ns.no_hard_negatives,
        seed=ns.seed,
        average_last_epochs=ns.average_last_epochs,
        loss=ns.loss,
    )
    pairs: list[TunePair] = labelled_pairs(ns.data_dir, sources, config.hard_negatives) if sources else []
    for path in ns.pairs:
        pairs.extend(read_pairs_file(path))
    if not pairs:
        raise build.IndexCommandError("no training pairs: give --sources and/or --pairs FILE")
    report = tune_encoder(base, pairs, out, config)
    rows = [
        ("encoder", f"{base} -> {out}"),
        ("pairs", f"{report['pairs']} ({report['with_hard_negative']} with a hard negative)"),
        ("training", f"{report['seconds']} s, final loss {report['train_loss']:.4f}"),
    ]
    if report["averaged_epochs"] > 1:
        rows.append(("weights", f"the mean of the last {report['averaged_epochs']} epochs' ends"))
    if reindex:
        added, _ = reencode(ns.index, build.load_encoder(str(out), ns.backend, ns.encoder_cache))
        rows.append(("re-indexed", f"{ns.index}: {added.added} passages in {added.seconds:.1f} s"))
    for key, value in rows:
        print(f"{key:>10}  {value}")  # noqa: T201 - this is the CLI's output
    return 0


def add_tune_parser(
    sub: Any, defaults: IndexCliDefaults, index_help: str, add_encoder_args: Callable[..., None]
) -> None:
    """Register ``index tune``."""
    from retrieval.tune import LOSSES, SOURCES, TuneConfig

    d = TuneConfig()
    p = sub.add_parser(
        "tune",
        help="fine-tune the encoder on labelled (claim, evidence) pairs, then re-index",
        description="Fine-tune a sentence encoder with in-batch negatives on the TRAIN parts of labelled "
        "data (Climate-FEVER train claims by the project's md5 split, COVID-Fact train, WiCE dev) and/or "
        "a JSONL file of {query, positive, negative?}; save it to --out and re-encode the index with it.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="where the tuned encoder is saved")
    p.add_argument("--index", default=defaults.index_dir, metavar="DIR", help=index_help)
    p.add_argument("--base", metavar="NAME", help="encoder to start from (default: the index's encoder)")
    p.add_argument(
        "--data-dir", default=defaults.data_dir, help="labelled data (default: $VERIFACT_DATA_DIR)"
    )
    p.add_argument(
        "--sources",
        default=",".join(SOURCES),
        help=f"comma-separated labelled sources, '' for none (default: {','.join(SOURCES)})",
    )
    p.add_argument("--pairs", action="append", default=[], metavar="FILE", help="JSONL pairs (repeatable)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--average-last-epochs",
        type=int,
        default=d.average_last_epochs,
        metavar="N",
        help="keep the mean of the weights at the ends of the last N epochs "
        f"(0: the final weights; default: {d.average_last_epochs})",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        default=d.loss,
        help="mnrl: in-batch negatives; guided: skip in-batch negatives the base encoder ranks above "
        f"the positive (GISTEmbed) (default: {d.loss})",
    )
    p.add_argument("--no-hard-negatives", action="store_true", help="in-batch negatives only")
    p.add_argument("--no-reindex", action="store_true", help="only train and save the encoder")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    add_encoder_args(p, defaults, None)
    p.set_defaults(func=cmd_tune)


__all__ = ["RetrievalError", "add_tune_parser", "cmd_tune"]
