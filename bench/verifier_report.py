"""The verifier benchmark's report: which verdicts were wrong and why (heuristically), and the markdown.

The reason for a wrong verdict is computed, not annotated: the first of these that applies.

- ``evidence not retrieved`` (end to end): none of the claim's decisive gold passages was retrieved.
- ``number mismatch missed`` / ``date mismatch missed`` / ``negation missed``: SUPPORTED was said of
  a claim that is not, while the best-supporting passage differs from it in a number, a date or a
  negation (the cues of `graph.nli_features.consistency`).
- ``negation misread``: REFUTED was said of a supported claim whose best-refuting passage differs
  from it in a negation.
- ``NEI predicted though decisive passage present``: a passage had probability >= 0.5 for the gold
  label, and the aggregator still said NOT_ENOUGH_INFO.
- ``decisive passage missed by the model``: NOT_ENOUGH_INFO, with a passage annotated with the gold
  label among the evidence but no passage the model found decisive.
- ``no passage decisive``: NOT_ENOUGH_INFO, and nothing says which passage should have decided.
- ``non-decisive evidence taken as decisive``: SUPPORTED or REFUTED said of a claim the evidence
  does not settle.
- ``support and refutation confused``, else ``other``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import markdown_table
from bench.verdict_metrics import HEADERS, rows
from classifier.metrics import FloatArray
from graph.nli_features import claim_features
from graph.nli_records import ClaimRecord
from graph.nli_rule import LABEL_INDEX, Decision
from graph.schemas import LABELS

DECISIVE = ("SUPPORTED", "REFUTED")


@dataclass(frozen=True)
class Judged:
    """One claim as the verifier saw and decided it."""

    claim: ClaimRecord
    """The claim with the passages it was judged on (gold or retrieved)."""
    logits: FloatArray
    """The pair model's log-probabilities per passage, before the temperature."""
    probs: FloatArray
    """Calibrated per-passage probabilities, (passages, 3) in `LABELS` order."""
    decision: Decision
    texts: list[str]
    """The passage texts as the model saw them."""
    scores: list[float] | None = None
    """Retrieval scores per passage, when retrieved."""


def is_wrong(j: Judged) -> bool:
    """Whether the verdict misses the gold label (WiCE's not_supported: anything but SUPPORTED is right)."""
    gold = j.claim.claim_label
    if gold == "NOT_SUPPORTED":
        return j.decision.label == "SUPPORTED"
    return gold in LABEL_INDEX and j.decision.label != gold


def reason(j: Judged, gold_claim: ClaimRecord | None = None) -> str:
    """The heuristic reason for a wrong verdict (see the module docstring)."""
    gold, said, p = j.claim.claim_label, j.decision.label, j.probs
    # Retrieved passages carry no label; those that are gold evidence get theirs back by id.
    annotated = {e.id: e.label for e in gold_claim.evidences} if gold_claim else {}
    labels = [e.label or annotated.get(e.id) for e in j.claim.evidences]
    if gold_claim is not None and gold in DECISIVE:
        wanted = {e.id for e in gold_claim.evidences if e.label in DECISIVE}
        if wanted and not wanted & {e.id for e in j.claim.evidences}:
            return "evidence not retrieved"
    cues = claim_features(p, j.claim.claim, j.texts)
    if said == "SUPPORTED" and gold not in ("SUPPORTED", "NOT_ENOUGH_INFO"):
        for cue in ("number", "date", "negation"):
            if cues[f"sup_{cue}_mismatch"]:
                return "negation missed" if cue == "negation" else f"{cue} mismatch missed"
    if said == "REFUTED" and gold == "SUPPORTED" and cues["ref_negation_mismatch"]:
        return "negation misread"
    if said == "NOT_ENOUGH_INFO" and gold in DECISIVE:
        if len(p) and p[:, LABEL_INDEX[gold]].max() >= 0.5:
            return "NEI predicted though decisive passage present"
        if gold in labels:
            return "decisive passage missed by the model"
        return "no passage decisive"
    if gold in ("NOT_ENOUGH_INFO", "NOT_SUPPORTED"):
        return "non-decisive evidence taken as decisive"
    if {gold, said} == set(DECISIVE):
        return "support and refutation confused"
    return "other"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _passages(j: Judged, n: int = 3) -> list[dict[str, Any]]:
    """The `n` passages closest to deciding (highest SUPPORTED or REFUTED probability)."""
    order = sorted(range(len(j.texts)), key=lambda i: -max(j.probs[i, 0], j.probs[i, 1]))[:n]
    return [
        {
            "text": j.texts[i],
            **{label: round(float(v), 3) for label, v in zip(LABELS, j.probs[i], strict=True)},
        }
        for i in order
    ]


def pick_errors(
    judged: Mapping[str, Sequence[Judged]], per_set: int, gold_sets: Sequence[ClaimRecord]
) -> dict[str, Any]:
    """Reason counts over every wrong verdict, and `per_set` examples per set (lowest md5 of the id).

    A claim shown for one set is not shown again for the next (Climate-FEVER's gold and end-to-end
    sets hold the same claims), so the examples cover more claims.

    Args:
        judged: Per set, its judged claims.
        per_set: Examples kept per set.
        gold_sets: The gold-evidence claims of the end-to-end set, to tell what retrieval missed.
    """
    by_id = {c.claim_id: c for c in gold_sets}
    counts: dict[str, dict[str, int]] = {}
    examples: list[dict[str, Any]] = []
    shown: set[str] = set()
    for name, js in judged.items():
        wrong = sorted((j for j in js if is_wrong(j)), key=lambda j: _md5(j.claim.claim_id))
        gold_of = by_id if name.endswith("e2e") else {}
        reasons = [reason(j, gold_of.get(j.claim.claim_id)) for j in wrong]
        counts[name] = dict(Counter(reasons).most_common())
        fresh = [(j, why) for j, why in zip(wrong, reasons, strict=True) if j.claim.claim_id not in shown]
        for j, why in fresh[:per_set]:
            shown.add(j.claim.claim_id)
            examples.append(
                {
                    "set": name,
                    "claim_id": j.claim.claim_id,
                    "claim": j.claim.claim,
                    "gold": j.claim.claim_label,
                    "predicted": j.decision.label,
                    "confidence": round(j.decision.confidence, 3),
                    "reason": why,
                    "passages": _passages(j),
                }
            )
    return {"reason_counts": counts, "examples": examples}


def error_section(errors: Mapping[str, Any]) -> str:
    """The markdown of the error analysis: reason counts per set, then every example with its evidence."""
    lines = [
        "## Error analysis",
        "",
        "Reasons over all wrong verdicts (heuristic, see `bench.verifier_report`):",
        "",
    ]
    for name, counts in errors["reason_counts"].items():
        lines.append(f"- {name}: " + (", ".join(f"{r} {n}" for r, n in counts.items()) or "none wrong"))
    lines += ["", f"{len(errors['examples'])} wrong verdicts (per set, lowest md5 of the claim id):", ""]
    for k, e in enumerate(errors["examples"], 1):
        lines += [
            f"{k}. **{e['set']}** `{e['claim_id']}`: gold {e['gold']}, said {e['predicted']} "
            f"({e['confidence']:.2f}); reason: *{e['reason']}*",
            f"   > {e['claim']}",
        ]
        for p in e["passages"]:
            text = p["text"] if len(p["text"]) <= 240 else p["text"][:237] + "..."
            lines.append(
                f"   - S {p['SUPPORTED']:.2f} / R {p['REFUTED']:.2f} / N {p['NOT_ENOUGH_INFO']:.2f}: {text}"
            )
    return "\n".join(lines)


def report(results: dict[str, Any], about: dict[str, Any]) -> str:
    """The markdown report."""
    w, cv = results["wice_test"], about.get("dev", {})
    lines = [
        "# Verifier quality",
        "",
        f"Model `{about['model']}`, aggregator **{about['aggregator']}** (chosen on dev: {about['chosen']}). "
        "Test claims only. COVID-Fact's macro-F1 is over its two gold labels (`macro_f1_3way` in the "
        "JSON is the verdict benchmark's three-way figure, capped at 0.67 as COVID-Fact has no NEI).",
        "",
        markdown_table(HEADERS, rows(results)),
        "",
        f"- COVID-Fact gold: accuracy {results['covid_fact_gold']['accuracy']:.4f}, 2-label macro-F1 "
        f"{results['covid_fact_gold']['macro_f1']:.4f} (targets 0.80 and 0.75)",
        f"- Climate-FEVER gold 3-way macro-F1 {results['climate_fever_gold']['macro_f1']:.4f} (target 0.65)",
        f"- e2e: {results['climate_fever_e2e']['evidence']}, decisive gold passages retrieved "
        f"{results['climate_fever_e2e']['gold_evidence_recall']:.3f}",
        f"- WiCE test (top {about['wice_passages']} BM25 sentences of the article): supported vs "
        f"not_supported n={w['n']}, accuracy {w['accuracy']:.4f}, macro-F1 {w['macro_f1']:.4f}, majority "
        f"{w['majority_accuracy']:.4f}; partially_supported (n={w['partially_supported']['n']}) called "
        f"SUPPORTED {w['partially_supported']['called_supported']:.3f}; a whole gold sentence set among the "
        f"passages for {w['evidence']['claims_with_a_whole_gold_set']:.1%} of the claims that have one, "
        f"{w['evidence']['gold_sentences_kept']:.1%} of gold sentences kept",
        f"- Latency: {results['latency_ms_per_claim']:.1f} ms per claim with 5 passages "
        f"({about['latency']['backend']}, p90 {about['latency']['p90_ms']:.1f} ms; target 50 ms)",
        f"- Training pairs: {results['training_pairs']} (from `{about['training']['report']}`)",
        "",
        "## Rule and learned aggregator",
        "",
        "Dev claims, cross-validated (what chose): "
        + (
            "; ".join(
                f"{name} macro-F1 {m['macro_f1']:.4f}, accuracy {m['accuracy']:.4f}, ECE {m['ece']:.4f}"
                for name, m in cv.items()
            )
            or "not recorded (settings from before the learned aggregator)"
        ),
        "",
        markdown_table(
            ["set", *results["aggregators"]["covid_fact_gold"]],
            [[name, *block.values()] for name, block in results["aggregators"].items()],
        ),
        "",
        error_section(results["errors"]),
        "",
        f"Machine: {about.get('machine', {})}",
    ]
    return "\n".join(lines)
