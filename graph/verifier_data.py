"""Verifier training sets: the NLI pairs plus WiCE dev, counterfactual REFUTED claims and NEI negatives.

`build_verifier_data` first runs `graph.nli_data.build_nli_data` into the output folder, so
``dev.tsv``, the test pair files and the claim files are exactly what ``verifact data nli`` writes
(models stay comparable), then replaces ``train.tsv`` with the extended set, with one more column,
``augmentation``: "none" for annotated pairs, else the edit or negative kind that made the row.

Sources (train splits only):

- Climate-FEVER train claims (evidence-level pairs) and COVID-Fact train, as nli_data builds them.
- WiCE dev, used for training: ``dev.tsv`` stays WiCE-free, so WiCE test is scored with settings
  tuned on Climate-FEVER and COVID-Fact dev only. A "supported" claim with a supporting sentence set
  (joined, "Title: s1 s2") -> SUPPORTED, up to ``wice_max_sets`` sets, smallest first. A
  "partially_supported" claim with its smallest set -> NOT_ENOUGH_INFO: the set backs part of the
  claim, so the whole is not entailed (``wice_partial="drop"`` leaves them out). A "not_supported"
  claim with its smallest non-empty set -> NOT_ENOUGH_INFO, never REFUTED: WiCE has no refutations,
  and these are true Wikipedia sentences that the cited page fails to back. Per claim, up to
  ``wice_other_per_claim`` article sentences in no supporting set -> NOT_ENOUGH_INFO.
- Counterfactuals (`graph.counterfactual`, `graph.counterfactual_entities`): from SUPPORTED pairs,
  at most one checked edit each. Per source, edits stop when REFUTED rows reach ``refuted_ratio``
  x SUPPORTED rows (COVID-Fact, two thirds REFUTED already, gets none at the default 1.0); the edit
  kinds are taken in turn so that negation does not crowd out the rarer kinds.
- NOT_ENOUGH_INFO negatives for every train claim (`graph.verifier_negatives`): ``hard_per_claim``
  passages the retriever ranks high (optional, needs an index) and ``easy_per_claim`` random
  evidence passages of other claims, never gold, same-article, held-out or similar-claim evidence.

Quality control (`graph.verifier_rows`): length filters, de-duplication (`graph.nli_data.dedupe`;
annotated rows come first and win), dropping rows whose claim is a dev or test claim (an edit can
recreate one), down-sampling any label above ``max_label_share`` (generated negatives first, hard
and easy alike; None or 1 turns it off), and nli_data's leakage check on the result, which raises.
``report.json`` holds every count: per origin made and written, per edit kind tried, passed and
dropped by reason, negatives skipped by reason, rows removed by reason, label shares.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from classifier.reporting import write_json
from graph.counterfactual import (
    EDIT_KINDS,
    Edit,
    Outcome,
    Rejected,
    change_number,
    negate,
    select_edits,
    swap_antonym,
)
from graph.counterfactual_entities import EntityPool, swap_entity
from graph.errors import VerifierError
from graph.nli_data import _check_leakage, build_nli_data
from graph.nli_records import (
    NLIPair,
    claim_key,
    claim_keys,
    evidence_text,
    read_claims,
)
from graph.schemas import Label
from graph.verifier_negatives import (
    NegativeGuard,
    TrainClaim,
    content_words,
    easy_negatives,
    hard_negatives,
    norm,
    train_claims,
)
from graph.verifier_rows import (
    Drops,
    TrainRow,
    balance,
    clean,
    length_filter,
    read_pairs,
    row_report,
    write_train,
)
from retrieval.types import Passage

if TYPE_CHECKING:
    from retrieval.retriever import Retriever

WICE = "wice"
WICE_TITLE = "(meta data) TITLE:"
CLAIM_FILES = (
    "cf_claims_dev.jsonl",
    "covid_claims_dev.jsonl",
    "cf_claims_test.jsonl",
    "covid_claims_test.jsonl",
)


@dataclass(frozen=True)
class VerifierDataConfig:
    """The knobs of `build_verifier_data` (the CLI exposes the main ones)."""

    seed: int = 13
    refuted_ratio: float | None = 1.0
    """Per source, edits stop once REFUTED rows reach this many per SUPPORTED row; None: no cap."""
    hard_per_claim: int = 1
    hard_depth: int = 20
    """How many retrieved passages are looked at per claim."""
    easy_per_claim: int = 1
    wice_max_sets: int = 2
    wice_other_per_claim: int = 2
    wice_partial: Literal["nei", "drop"] = "nei"
    similar_claim: float = 0.3
    """Content-word Jaccard from which another claim's evidence is no negative (`NegativeGuard`)."""
    min_claim_chars: int = 15
    max_claim_chars: int = 500
    min_evidence_chars: int = 25
    max_evidence_chars: int = 2000
    max_label_share: float | None = 0.5
    """Down-sample any label above this share of train (1/3 to 1); None or 1: report only."""

    def check(self) -> None:
        """Raise `VerifierError` for settings that cannot work."""
        share = self.max_label_share
        if share is not None and not 1 / 3 <= share <= 1:
            raise VerifierError(f"max_label_share must be between 1/3 and 1, not {share}")
        if self.refuted_ratio is not None and self.refuted_ratio < 0:
            raise VerifierError(f"refuted_ratio must be >= 0, not {self.refuted_ratio}")
        if self.wice_partial not in ("nei", "drop"):
            raise VerifierError(f"wice_partial must be 'nei' or 'drop', not {self.wice_partial!r}")


def wice_source(
    path: Path, cfg: VerifierDataConfig, rng: random.Random
) -> tuple[list[TrainRow], list[TrainClaim], list[Passage]]:
    """WiCE dev as train rows, as claims (for negatives) and as supporting passages (the easy pool)."""
    from classifier.data import read_rows

    rows, claims, passages = [], [], []
    for rec in read_rows(path):
        claim, label, wid = str(rec["claim"]), str(rec["label"]), rec["meta"]["id"]
        sentences = [str(s).strip() for s in rec["evidence"]]
        title = sentences[0][len(WICE_TITLE) :].strip() if sentences[0].startswith(WICE_TITLE) else ""
        sets = sorted(
            {tuple(sorted(set(s))) for s in rec["supporting_sentences"] if s}, key=lambda s: (len(s), s)
        )
        used = {i for s in sets for i in s}
        chosen = sets[: cfg.wice_max_sets] if label == "supported" else sets[:1]
        if label == "partially_supported" and cfg.wice_partial == "drop":
            chosen = []
        for s in chosen:
            joined = " ".join(sentences[i].removeprefix("(meta data) ") for i in s)
            target: Label = "SUPPORTED" if label == "supported" else "NOT_ENOUGH_INFO"
            pair = NLIPair(claim, evidence_text(title, joined), target, WICE, f"wice:{wid}")
            rows.append(TrainRow(pair, "none", f"wice_{label}"))
        others = [
            i
            for i in range(1, len(sentences))
            if i not in used and not sentences[i].startswith("(meta data)")
        ]
        for i in sorted(rng.sample(others, min(len(others), cfg.wice_other_per_claim))):
            pair = NLIPair(claim, evidence_text(title, sentences[i]), "NOT_ENOUGH_INFO", WICE, f"wice:{wid}")
            rows.append(TrainRow(pair, "other_sentence", "other_sentence"))
        ids = {i: f"wice-dev-{wid}:{i}" for i in sorted(used) if 0 < i < len(sentences)}
        texts = frozenset(norm(sentences[i]) for i in ids)
        articles = frozenset({f"wice-dev-{wid}", title} - {""})
        claims.append(TrainClaim(f"wice:{wid}", claim, WICE, frozenset(ids.values()), texts, articles))
        passages += [Passage(ids[i], sentences[i], title) for i in ids]
    return rows, claims, passages


def augment(
    rows: Sequence[TrainRow], pool: EntityPool, cfg: VerifierDataConfig
) -> tuple[list[TrainRow], dict[str, dict[str, Any]]]:
    """REFUTED rows made from SUPPORTED ones by counterfactual edits, capped per source.

    Returns the rows and, per edit kind: not_applicable (nothing to edit), tried, dropped (by
    reason), passed, not_selected (over the cap, or its pair already edited) and made.
    """
    stats: dict[str, Counter[str]] = {k: Counter() for k in EDIT_KINDS}
    by_source: dict[str, list[tuple[int, Edit]]] = {}
    for i, r in enumerate(rows):
        if r.pair.label != "SUPPORTED":
            continue
        # A seed per pair: a pair's edits do not depend on which other pairs are in the set.
        rng, p = random.Random(f"{cfg.seed}:{r.pair.claim_id}:{r.pair.evidence}"), r.pair
        outcomes: tuple[Outcome, ...] = (
            negate(p.claim),
            change_number(p.claim, p.evidence, rng),
            swap_antonym(p.claim, rng),
            swap_entity(p.claim, p.evidence, pool, rng),
        )
        for kind, outcome in zip(EDIT_KINDS, outcomes, strict=True):
            stats[kind]["tried" if outcome else "not_applicable"] += 1
            if isinstance(outcome, Rejected):
                stats[kind][f"dropped:{outcome.reason}"] += 1
            elif isinstance(outcome, Edit):
                stats[kind]["passed"] += 1
                by_source.setdefault(p.source, []).append((i, outcome))
    out: list[TrainRow] = []
    for source, candidates in sorted(by_source.items()):
        labels = Counter(r.pair.label for r in rows if r.pair.source == source)
        budget = None
        if cfg.refuted_ratio is not None:
            budget = max(0, math.floor(cfg.refuted_ratio * labels["SUPPORTED"]) - labels["REFUTED"])
        chosen = set(select_edits(candidates, budget, random.Random(f"{cfg.seed}:{source}")))
        for j, (i, edit) in enumerate(candidates):
            stats[edit.kind]["made" if j in chosen else "not_selected"] += 1
            if j in chosen:
                p = rows[i].pair
                pair = NLIPair(edit.claim, p.evidence, "REFUTED", p.source, f"{p.claim_id}~{edit.kind}")
                out.append(TrainRow(pair, edit.kind, edit.kind))
    report = {
        k: {
            **{n: c[n] for n in ("not_applicable", "tried", "passed", "not_selected", "made")},
            "dropped": {n.split(":", 1)[1]: v for n, v in sorted(c.items()) if n.startswith("dropped:")},
        }
        for k, c in stats.items()
    }
    return out, report


def _held_out_keys(data_dir: str | Path, out: Path, dev_pairs: Sequence[NLIPair]) -> dict[str, set[str]]:
    """The claim keys of test claims (Climate-FEVER, COVID-Fact, WiCE) and of dev claims."""
    files = {n: read_claims(out / n) for n in CLAIM_FILES}
    test = claim_keys(c.claim for n, cs in files.items() if "test" in n for c in cs)
    wice_test = Path(data_dir) / WICE / "claim_test.jsonl"
    if wice_test.exists():
        from classifier.data import read_rows

        # Only the claims' texts are read, to keep them out of train.
        test |= claim_keys(str(r["claim"]) for r in read_rows(wice_test))
    dev = claim_keys(c.claim for n, cs in files.items() if "dev" in n for c in cs)
    return {"test": test, "dev": dev | claim_keys(p.claim for p in dev_pairs)}


def _negatives(
    data_dir: str | Path,
    out: Path,
    wice: tuple[list[TrainClaim], list[Passage]],
    blocked: dict[str, set[str]],
    cfg: VerifierDataConfig,
    retriever: Retriever | None,
) -> tuple[list[TrainRow], dict[str, Any]]:
    """Hard and easy NOT_ENOUGH_INFO rows for every train claim, and their counts."""
    claims, passages, bearing = train_claims(data_dir, blocked["test"] | blocked["dev"])
    claims += [c for c in wice[0] if claim_key(c.claim) not in blocked["test"] | blocked["dev"]]
    for c in wice[0]:
        for text in c.gold_texts:
            bearing.setdefault(text, []).append(content_words(c.claim))
    passages += wice[1]
    held = [e for n in CLAIM_FILES for c in read_claims(out / n) for e in c.evidences]
    train_ids, train_texts = {p.id for p in passages}, {norm(p.text) for p in passages}
    guard = NegativeGuard(
        frozenset(e.id for e in held) - train_ids,
        frozenset(norm(e.text) for e in held) - train_texts,
        bearing,
        cfg.similar_claim,
        cfg.min_evidence_chars,
        cfg.max_evidence_chars,
    )
    rng = random.Random(f"{cfg.seed}:easy")
    rows: list[TrainRow] = []
    report: dict[str, Any] = {"claims": len(claims)}
    if retriever is not None and cfg.hard_per_claim > 0:
        hard, skipped = hard_negatives(claims, retriever, guard, cfg.hard_per_claim, cfg.hard_depth)
        rows += [TrainRow(p, "hard_negative", "hard_negative") for p in hard]
        report["hard_negative"] = {"made": len(hard), "skipped": dict(sorted(skipped.items()))}
    pool = sorted({p.id: p for p in passages}.values(), key=lambda p: p.id)
    easy, skipped = easy_negatives(claims, pool, guard, cfg.easy_per_claim, rng)
    rows += [TrainRow(p, "easy_negative", "easy_negative") for p in easy]
    report["easy_negative"] = {"made": len(easy), "skipped": dict(sorted(skipped.items()))}
    return rows, report


def build_verifier_data(
    data_dir: str | Path,
    out_dir: str | Path,
    config: VerifierDataConfig | None = None,
    retriever: Retriever | None = None,
) -> dict[str, Any]:
    """Write the NLI files, then the extended ``train.tsv`` and ``report.json``; return the report.

    Args:
        data_dir: The shared data folder (climate_fever/, covid_fact/, wice/).
        out_dir: Where the files go (created; existing files are replaced).
        config: The knobs; the defaults when None.
        retriever: Where hard negatives come from (`graph.verifier_negatives.open_retriever`);
            None skips them.

    Raises:
        retrieval.errors.IngestError, classifier.DataError: a data file is missing or malformed.
        VerifierError: bad settings, or a held-out claim would leak into train (a bug, never expected).
    """
    cfg = config or VerifierDataConfig()
    cfg.check()
    out = Path(out_dir)
    nli_report = build_nli_data(data_dir, out)
    dev_pairs = read_pairs(out / "dev.tsv")
    blocked = _held_out_keys(data_dir, out, dev_pairs)
    drops: Drops = Counter()
    bounds = (cfg.min_claim_chars, cfg.max_claim_chars), (cfg.min_evidence_chars, cfg.max_evidence_chars)

    base = [TrainRow(p) for p in read_pairs(out / "train.tsv")]
    wice_file = Path(data_dir) / WICE / "claim_dev.jsonl"
    wice_rows, wice_claims, wice_passages = (
        wice_source(wice_file, cfg, random.Random(f"{cfg.seed}:wice")) if wice_file.exists() else ([], [], [])
    )
    rows = clean(length_filter(base + wice_rows, *bounds, drops), blocked, drops)
    pool = EntityPool(t for r in rows for t in (r.pair.claim, r.pair.evidence))
    edited, edits = augment(rows, pool, cfg)
    negatives, neg_report = _negatives(data_dir, out, (wice_claims, wice_passages), blocked, cfg, retriever)
    made = Counter(r.origin for r in base + wice_rows + edited + negatives)

    rows = clean(rows + length_filter(edited + negatives, *bounds, drops), blocked, drops)
    rows = balance(rows, cfg.max_label_share, random.Random(f"{cfg.seed}:balance"), drops)
    files = {n: read_claims(out / n) for n in CLAIM_FILES[:2]}
    train_pairs = {"train.tsv": [r.pair for r in rows], "dev.tsv": dev_pairs}
    leakage = _check_leakage(train_pairs, files, blocked["test"], blocked["dev"])
    write_train(out / "train.tsv", rows)
    report = {"data_dir": str(data_dir), **_report(edits, neg_report, cfg, retriever is not None)}
    report.update(row_report(rows, made, drops), dev=nli_report["files"]["dev.tsv"], leakage=leakage)
    for kind, block in edits.items():
        block["written"] = report["origins"].get(kind, {}).get("written", 0)
    report["nli_data"] = nli_report
    write_json(out / "report.json", report)
    return report


def _report(
    edits: dict[str, dict[str, Any]], negatives: dict[str, Any], cfg: VerifierDataConfig, hard: bool
) -> dict[str, Any]:
    """The settings and generation counts of report.json (the row counts come from `row_report`)."""
    partial = "NOT_ENOUGH_INFO" if cfg.wice_partial == "nei" else "dropped"
    return {
        "config": asdict(cfg),
        "hard_negatives": hard and cfg.hard_per_claim > 0,
        "wice_labels": {
            "supported": "SUPPORTED",
            "partially_supported": partial,
            "not_supported": "NOT_ENOUGH_INFO",
        },
        "augmentation": edits,
        "negatives": negatives,
    }
