"""The verdict benchmark's arithmetic and report: claim-level metrics, LLM run statistics, tables, plots."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import markdown_table, save
from classifier.metrics import binned_calibration_error, confusion, multiclass_metrics
from graph.schemas import LABELS, Judgement

NAME = "verdict_quality"
"""The result files' stem: verdict_quality.json, .md, and verdict_quality_<block>.png."""
SETS = ("covid_fact_gold", "climate_fever_gold", "climate_fever_e2e")
"""The NLI blocks of the result file, in report order."""
LLM_SETS = ("covid_fact_gold", "climate_fever_gold")
"""The gold sets the LLM judge is run on."""
_INDEX: dict[str, int] = {label: i for i, label in enumerate(LABELS)}


def verdict_metrics(
    gold: Sequence[str], predicted: Sequence[str], confidence: Sequence[float]
) -> dict[str, Any]:
    """Claim-level scores of verdicts against gold labels, with the majority-class baseline.

    The definitions are those of `graph.nli_tune.evaluate_claims` (``verifact nli evaluate``):
    accuracy and macro-F1 over the three `LABELS` (a class absent from both gold and predictions
    scores F1 0, so COVID-Fact's macro-F1 is out of three classes too), ECE of the stated confidence
    against whether the verdict was right (15 equal-width bins), and the accuracy of always answering
    the most frequent gold label. Gold labels outside `LABELS` (Climate-FEVER's DISPUTED) are left
    out of every score; what was answered for them is counted under ``other_labels``.

    Args:
        gold: Each claim's gold label (one of `LABELS`, or another label such as DISPUTED).
        predicted: Each claim's verdict label, one of `LABELS`.
        confidence: Each verdict's confidence in [0, 1].
    """
    if not len(gold) == len(predicted) == len(confidence):
        raise ValueError(
            f"got {len(gold)} gold labels, {len(predicted)} verdicts, {len(confidence)} confidences"
        )
    unknown = sorted(set(predicted) - set(LABELS))
    if unknown:
        raise ValueError(f"verdict labels {unknown} are not among {list(LABELS)}")
    kept = [i for i, g in enumerate(gold) if g in _INDEX]
    y = np.array([_INDEX[gold[i]] for i in kept], dtype=np.int64)
    p = np.array([_INDEX[predicted[i]] for i in kept], dtype=np.int64)
    conf = np.array([confidence[i] for i in kept], dtype=np.float64)
    scores = multiclass_metrics(y, p, LABELS)
    counts = Counter(y.tolist())
    majority = max(counts, key=lambda k: (counts[k], -k)) if counts else 0
    majority_f1 = multiclass_metrics(y, np.full_like(y, majority), LABELS)["macro_f1"] if len(y) else 0.0
    other: dict[str, Counter[str]] = {}
    for g, v in zip(gold, predicted, strict=True):
        if g not in _INDEX:
            other.setdefault(g, Counter())[v] += 1
    return {
        "n": len(kept),
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        **{f"f1_{label}": scores[f"f1_{label}"] for label in LABELS},
        "ece": binned_calibration_error(conf, p == y),
        "majority_label": LABELS[majority],
        "majority_accuracy": counts[majority] / len(y) if len(y) else 0.0,
        "majority_macro_f1": majority_f1,
        "gold": {label: int(np.sum(y == i)) for i, label in enumerate(LABELS)},
        "predicted": {label: int(np.sum(p == i)) for i, label in enumerate(LABELS)},
        "confusion": confusion(y, p, len(LABELS)).tolist(),
        "other_labels": {
            k: {label: v[label] for label in LABELS if v[label]} for k, v in sorted(other.items())
        },
    }


def judgement_stats(judgements: Sequence[Judgement]) -> dict[str, Any]:
    """What an LLM run cost and how it went: failures, downgrades, modes, tokens and latency."""
    verdicts = [j.verdict for j in judgements]
    latencies = np.array([j.trace.latency_ms for j in judgements], dtype=np.float64)
    usage: Counter[str] = Counter()
    for j in judgements:
        usage.update(j.trace.usage)
    return {
        "calls": len(judgements),
        "failed": sum(v.error is not None for v in verdicts),
        "downgraded": sum(v.error is None and v.downgraded_reason is not None for v in verdicts),
        "invented_citations": sum(len(v.invalid_citations) for v in verdicts),
        "modes": dict(sorted(Counter(str(j.trace.mode) for j in judgements).items())),
        "requests": sum(j.trace.attempts for j in judgements),
        "retries": sum(j.trace.retries for j in judgements),
        "usage": dict(sorted(usage.items())),
        "latency_ms_mean": float(latencies.mean()) if len(latencies) else 0.0,
        "latency_ms_max": float(latencies.max()) if len(latencies) else 0.0,
        "errors": dict(Counter(_error_kind(v.error) for v in verdicts if v.error).most_common(5)),
    }


def _error_kind(error: str) -> str:
    """An error without its variable details (numbers, quoted text), so alike failures count together."""
    return re.sub(r"\d+(\.\d+)?", "N", error)[:100]


def rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """One table row per scored block: the NLI sets, then the LLM sets (when the LLM ran)."""
    out: list[list[Any]] = []
    blocks: list[tuple[str, str, Any]] = [("nli", name, results.get(name)) for name in SETS]
    llm = results.get("llm")
    if isinstance(llm, dict):
        blocks += [(f"llm ({llm.get('model', '?')})", name, llm.get(name)) for name in LLM_SETS]
    for judge, name, m in blocks:
        if not isinstance(m, dict) or "accuracy" not in m:
            continue
        out.append(
            [
                judge,
                name,
                m["n"],
                m["accuracy"],
                m["macro_f1"],
                *(m[f"f1_{label}"] for label in LABELS),
                m["ece"],
                m["majority_accuracy"],
                m["majority_macro_f1"],
            ]
        )
    return out


HEADERS = [
    "judge",
    "set",
    "claims",
    "accuracy",
    "macro-F1",
    *(f"F1 {label}" for label in LABELS),
    "ECE",
    "majority acc.",
    "majority macro-F1",
]


def plot_confusions(results: Mapping[str, Any], directory: Path, stem: str) -> list[Path]:
    """One confusion-matrix PNG per scored block (``<stem>_<set>.png``, ``<stem>_llm_<set>.png``)."""
    from classifier.reporting import plot_confusion

    blocks: list[tuple[str, str, Any]] = [(name, name, results.get(name)) for name in SETS]
    llm = results.get("llm")
    if isinstance(llm, dict):
        blocks += [(f"llm_{name}", f"{llm.get('model', 'llm')}: {name}", llm.get(name)) for name in LLM_SETS]
    written = []
    for key, title, m in blocks:
        if not isinstance(m, dict) or "confusion" not in m:
            continue
        # plot_confusion counts (gold, predicted) pairs; expand the stored matrix back into them.
        matrix = np.asarray(m["confusion"], dtype=np.int64)
        gold = np.repeat(np.arange(len(LABELS)), matrix.sum(axis=1))
        predicted = np.concatenate([np.repeat(np.arange(len(LABELS)), row) for row in matrix])
        path = directory / f"{stem}_{key}.png"
        plot_confusion(gold, predicted.astype(np.int64), LABELS, path, f"{title} (n={m['n']})")
        written.append(path)
    return written


def report(results: dict[str, Any], extra: dict[str, Any]) -> str:
    """The markdown report."""
    llm, nli = results["llm"], extra.get("nli", {})
    lines = [
        "# Verdict quality",
        "",
        "Test claims only; temperature and aggregation rule were fitted on dev (`verifact nli tune`). "
        "DISPUTED Climate-FEVER claims are left out of the scores (see `other_labels` in the JSON). "
        "Majority: always answering the most frequent gold label of the set.",
        "",
        markdown_table(HEADERS, rows(results)),
        "",
        f"- NLI model: `{nli.get('model', '?')}` (tuned: {nli.get('tuned')})",
        f"- e2e evidence: {results['climate_fever_e2e'].get('evidence')} from "
        f"`{results['climate_fever_e2e'].get('index', {}).get('dir', '?')}`; decisive gold passages "
        f"retrieved: {results['climate_fever_e2e'].get('gold_evidence_recall', 0.0):.3f}",
        f"- LLM: {llm if isinstance(llm, str) else llm.get('model')}",
    ]
    if isinstance(llm, dict) and llm.get("note"):
        lines.append(f"- {llm['note']}")
    lines += ["", *(f"![{name}]({NAME}_{name}.png)" for name in SETS)]
    if isinstance(llm, dict):
        lines += [f"![llm {name}]({NAME}_llm_{name}.png)" for name in LLM_SETS]
    lines += ["", f"Machine: {extra.get('machine', {})}"]
    return "\n".join(lines)


def write(results: dict[str, Any], extra: dict[str, Any], directory: Path) -> str:
    """Write the JSON, the markdown and the confusion-matrix PNGs; return the table printed."""
    save(NAME, results, report(results, extra), directory=directory)
    plot_confusions(results, directory, NAME)
    return markdown_table(HEADERS, rows(results))
