"""The NLI verifier's commands: ``verifact data nli|verifier``, ``verifact nli tune|evaluate``.

The ``verifact`` entry point registers them with what it read from the environment
(`NLICliDefaults`); nothing here reads the environment itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.errors import VerifierError

DEFAULT_NLI_DATA_DIR = "runs/nli-data"


@dataclass(frozen=True)
class NLICliDefaults:
    """What the caller (the ``verifact`` entry point) read from the environment."""

    data_dir: str
    """The shared data folder holding climate_fever/ and covid_fact/."""
    nli_model: str
    """The pair-model directory (or hub id) used when ``--model`` is not given."""


def _echo(line: str = "", *, err: bool = False) -> None:
    """One line of the command's output: this module is a CLI, its output the product."""
    print(line, file=sys.stderr if err else sys.stdout)


def _quiet_transformers() -> None:
    """Commands print results, not weight-loading progress bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def cmd_data_nli(ns: argparse.Namespace) -> int:
    """Build the NLI verifier's pair and claim files."""
    from graph.nli_data import build_nli_data

    report = build_nli_data(ns.data_dir, ns.out, covid_pairs=ns.covid_pairs)
    _echo(f"NLI data from {ns.data_dir} written to {ns.out} (report.json has every count)")
    for name, block in report["files"].items():
        counts = block.get("by_source") or {"claims": block["by_label"]}
        shown = "; ".join(
            f"{src} " + ", ".join(f"{k} {v}" for k, v in c.items()) for src, c in counts.items()
        )
        _echo(f"{name:>24}: {block.get('rows', block.get('claims'))} ({shown})")
    dropped = sum(r.get("claim_in_test", 0) for r in report["removed"].values())
    _echo(
        f"held-out claims: {report['leakage']['test_claims']} test claims, none in train or dev "
        f"({dropped} train/dev rows dropped for sharing a test claim)"
    )
    return 0


def cmd_data_verifier(ns: argparse.Namespace) -> int:
    """Build the verifier's training set: NLI pairs, WiCE dev, counterfactuals, NEI negatives."""
    from graph.verifier_data import VerifierDataConfig, build_verifier_data
    from graph.verifier_negatives import open_retriever

    cfg = VerifierDataConfig(
        seed=ns.seed,
        refuted_ratio=ns.refuted_ratio if ns.refuted_ratio >= 0 else None,
        max_label_share=ns.max_label_share,
        hard_per_claim=ns.hard_per_claim,
        easy_per_claim=ns.easy_per_claim,
        wice_partial=ns.wice_partial,
    )
    cfg.check()
    hard = bool(ns.index) and not ns.no_hard_negatives
    report = build_verifier_data(ns.data_dir, ns.out, cfg, open_retriever(ns.index) if hard else None)
    train = report["train"]
    _echo(f"verifier data from {ns.data_dir} written to {ns.out} (report.json has every count)")
    if not hard:
        _echo("hard negatives: skipped (" + ("--no-hard-negatives" if ns.index else "no --index") + ")")
    _echo(f"{'train.tsv':<18} {'SUPPORTED':>9} {'REFUTED':>9} {'NEI':>9} {'total':>7}")
    for src, c in [*train["by_source"].items(), ("all", train["by_label"])]:
        sup, ref, nei = c["SUPPORTED"], c["REFUTED"], c["NOT_ENOUGH_INFO"]
        _echo(f"{src:<18} {sup:>9} {ref:>9} {nei:>9} {sup + ref + nei:>7}")
    _echo("shares: " + ", ".join(f"{k} {v:.1%}" for k, v in train["label_shares"].items()))
    _echo(f"{'edit':<18} {'tried':>9} {'passed':>9} {'written':>9}  dropped")
    for kind, e in report["augmentation"].items():
        dropped = ", ".join(f"{r} {n}" for r, n in e["dropped"].items()) or "-"
        _echo(f"{kind:<18} {e['tried']:>9} {e['passed']:>9} {e['written']:>9}  {dropped}")
    _echo("NEI by kind: " + ", ".join(f"{k} {v}" for k, v in report["not_enough_info"].items()))
    removed = {r: sum(by.values()) for r, by in report["removed"].items()}
    _echo("removed: " + (", ".join(f"{r} {n}" for r, n in removed.items()) or "none"))
    _echo(
        f"dev.tsv: {report['dev']['rows']} rows, as 'verifact data nli' writes it; "
        f"{report['leakage']['test_claims']} test claims, none in train or dev"
    )
    return 0


def _settings(ns: argparse.Namespace, params_file: str | None = None) -> Any:
    from graph.nli_model import NLISettings

    try:
        label_map = json.loads(ns.label_map) if ns.label_map else {}
    except json.JSONDecodeError as exc:
        raise VerifierError(f"--label-map is not JSON: {exc}") from exc
    if not isinstance(label_map, dict):
        raise VerifierError('--label-map must be a JSON object such as {"entailment": "SUPPORTED"}')
    return NLISettings(
        model=ns.model,
        label_map=label_map,
        pair_order=ns.pair_order,
        max_length=ns.max_length,
        params_file=params_file,
        backend=ns.backend,
    )


def _in_data(folder: str, name: str) -> str:
    """A file given on the command line, read from the NLI data folder when not found as given."""
    path = Path(name)
    return str(path if path.is_absolute() or path.exists() else Path(folder) / path)


def cmd_nli_tune(ns: argparse.Namespace) -> int:
    """Fit the temperature, the aggregation rule and the learned aggregator on dev; save them by the model."""
    from graph.nli_ensemble import load_pair_scorer
    from graph.nli_judge import PARAMS_FILE, save_params
    from graph.nli_tune import tune_judge

    _quiet_transformers()
    settings = _settings(ns)
    model = load_pair_scorer(settings)
    claims_files = [_in_data(ns.nli_data, c) for c in ns.claims]
    params = tune_judge(model, _in_data(ns.nli_data, ns.pairs), claims_files, aggregator=ns.aggregator)
    out = Path(ns.out) if ns.out else Path(settings.model) / PARAMS_FILE
    save_params(params, out)
    pairs, claims, rule = params.dev_metrics["pairs"], params.dev_metrics["claims"], params.rule
    _echo(f"saved to {out}")
    _echo(
        f"temperature {params.temperature:.3f}: dev pair NLL {pairs['nll_before']:.4f} -> "
        f"{pairs['nll_after']:.4f}, ECE {pairs['ece_before']:.4f} -> {pairs['ece_after']:.4f}"
    )
    _echo(
        f"rule {rule.name}: t_sup {rule.t_sup:.2f}, t_ref {rule.t_ref:.2f}, margin {rule.margin:.2f}; "
        f"dev claims (n={claims['n']}): macro-F1 {claims['macro_f1']:.4f}, "
        f"accuracy {claims['accuracy']:.4f}, ECE {claims['ece']:.4f}, "
        f"majority {claims['majority_accuracy']:.4f} (in-sample: the rule was tuned on these claims)"
    )
    comparison = params.dev_metrics["aggregation"]
    for name, cv in comparison.get("cross_validated", {}).items():
        _echo(
            f"{name} aggregator, {comparison['folds']}-fold cross-validated on dev: "
            f"macro-F1 {cv['macro_f1']:.4f}, accuracy {cv['accuracy']:.4f}, ECE {cv['ece']:.4f}"
        )
    if "skipped" in comparison:
        _echo(f"learned aggregator skipped: {comparison['skipped']}")
    chosen = f"{params.aggregator_name} (C {params.aggregator.C:g})" if params.aggregator else rule.name
    _echo(f"aggregator: {comparison['chosen']} -> {chosen} (asked for {comparison['requested']})")
    return 0


def cmd_nli_ensemble(ns: argparse.Namespace) -> int:
    """Write an ensemble directory over saved pair models."""
    from graph.nli_ensemble import write_ensemble

    path = write_ensemble(ns.out, ns.members)
    _echo(
        f"ensemble of {len(ns.members)} models written to {path}; tune it with "
        f"'verifact nli tune --model {ns.out}'"
    )
    return 0


def cmd_nli_evaluate(ns: argparse.Namespace) -> int:
    """Score the judge on claim files with their gold evidence."""
    from graph.nli_judge import NLIJudge
    from graph.nli_records import read_claims
    from graph.nli_tune import evaluate_claims

    _quiet_transformers()
    judge = NLIJudge.load(_settings(ns, ns.params))
    results = {
        Path(c).name: evaluate_claims(judge.scorer, judge.params, read_claims(_in_data(ns.nli_data, c)))
        for c in ns.claims
    }
    if ns.json:
        _echo(json.dumps(results, indent=2))
        return 0
    if not judge.params.tuned:
        _echo("warning: untuned judge (no nli_judge.json); run 'verifact nli tune' first", err=True)
    for name, m in results.items():
        _echo(
            f"{name:>24} (n={m['n']}): accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
            f"ECE {m['ece']:.4f}  majority {m['majority_accuracy']:.4f}  other labels {m['other_labels']}"
        )
    return 0


def add_data_parser(subparsers: Any, defaults: NLICliDefaults) -> None:
    """Register ``verifact data nli`` and ``verifact data verifier``."""
    p = subparsers.add_parser("data", help="build derived data sets")
    sub = p.add_subparsers(dest="data_command", required=True)
    p = sub.add_parser("nli", help="NLI verifier pairs and claims from Climate-FEVER and COVID-Fact")
    p.add_argument("--data-dir", default=defaults.data_dir, help="shared data folder (default: %(default)s)")
    p.add_argument("--out", default=DEFAULT_NLI_DATA_DIR, help="output folder (default: %(default)s)")
    p.add_argument(
        "--covid-pairs",
        default="joined",
        choices=["joined", "sentences"],
        help="COVID-Fact pairs: the claim with its evidence joined (official RTE form), or one per sentence",
    )
    p.set_defaults(func=cmd_data_nli)

    p = sub.add_parser(
        "verifier", help="verifier training set: NLI pairs + WiCE dev, counterfactuals, negatives"
    )
    p.add_argument("--data-dir", default=defaults.data_dir, help="shared data folder (default: %(default)s)")
    p.add_argument("--out", default="runs/verifier-data", help="output folder (default: %(default)s)")
    p.add_argument("--index", help="evidence index for hard negatives (none: hard negatives are skipped)")
    p.add_argument("--no-hard-negatives", action="store_true", help="skip hard negatives even with --index")
    p.add_argument(
        "--refuted-ratio",
        type=float,
        default=1.0,
        help="per source, edits stop at this many REFUTED per SUPPORTED row; negative: no cap "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--max-label-share",
        type=float,
        default=0.5,
        help="down-sample any label above this share, generated rows first; 1: off (default: %(default)s)",
    )
    p.add_argument("--hard-per-claim", type=int, default=1, help="retrieved negatives per claim (default: 1)")
    p.add_argument("--easy-per-claim", type=int, default=1, help="random negatives per claim (default: 1)")
    p.add_argument(
        "--wice-partial",
        default="nei",
        choices=["nei", "drop"],
        help="WiCE partially_supported claims with their supporting set: NOT_ENOUGH_INFO, or left out",
    )
    p.add_argument("--seed", type=int, default=13, help="random seed (default: %(default)s)")
    p.set_defaults(func=cmd_data_verifier)


def _model_args(p: argparse.ArgumentParser, defaults: NLICliDefaults) -> None:
    p.add_argument(
        "--model", default=defaults.nli_model, help="pair-model directory or hub id (default: %(default)s)"
    )
    p.add_argument(
        "--label-map",
        help='JSON map of model labels to ours, e.g. \'{"LABEL_0": "SUPPORTED", ...}\' '
        "(our own names and entailment/contradiction/neutral are known already)",
    )
    p.add_argument(
        "--pair-order",
        default="auto",
        choices=["auto", "claim_evidence", "evidence_claim"],
        help="auto: the claim first for our models, the evidence (premise) first for others",
    )
    p.add_argument(
        "--max-length", type=int, help="tokens per pair (default: what the model records, else 512)"
    )
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    p.add_argument(
        "--nli-data",
        default=DEFAULT_NLI_DATA_DIR,
        help="where relative --pairs/--claims files are read from (default: %(default)s)",
    )


def add_nli_parser(subparsers: Any, defaults: NLICliDefaults) -> None:
    """Register ``verifact nli tune`` and ``verifact nli evaluate``."""
    p = subparsers.add_parser("nli", help="the local NLI verifier: tune on dev, evaluate on claim files")
    sub = p.add_subparsers(dest="nli_command", required=True)

    p = sub.add_parser("tune", help="fit the temperature (dev pairs) and the aggregation rule (dev claims)")
    _model_args(p, defaults)
    p.add_argument("--pairs", default="dev.tsv", help="dev pairs for the temperature (default: %(default)s)")
    p.add_argument(
        "--claims",
        nargs="+",
        default=["cf_claims_dev.jsonl", "covid_claims_dev.jsonl"],
        help="dev claim files for the rule (default: %(default)s)",
    )
    p.add_argument(
        "--aggregator",
        default="best",
        choices=["rule", "learned", "best"],
        help="what turns passage probabilities into a verdict: the hand rule, the logistic regression "
        "fitted on dev claims, or the one with the higher cross-validated dev macro-F1 "
        "(default: %(default)s)",
    )
    p.add_argument("--out", help="settings file to write (default: MODEL/nli_judge.json)")
    p.set_defaults(func=cmd_nli_tune)

    p = sub.add_parser("ensemble", help="average several pair models as one (tune it like a model)")
    p.add_argument("members", nargs="+", help="model directories (two or more)")
    p.add_argument("--out", required=True, help="the ensemble directory to write")
    p.set_defaults(func=cmd_nli_ensemble)

    p = sub.add_parser("evaluate", help="claim-level metrics with gold evidence")
    _model_args(p, defaults)
    p.add_argument(
        "--claims",
        nargs="+",
        default=["cf_claims_test.jsonl", "covid_claims_test.jsonl"],
        help="claim files to score (default: %(default)s)",
    )
    p.add_argument("--params", help="settings file (default: MODEL/nli_judge.json when present)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_nli_evaluate)
