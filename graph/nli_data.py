"""The NLI verifier's training and benchmark sets, built from Climate-FEVER and COVID-Fact.

What `build_nli_data` writes (every TSV has the columns claim, evidence, label, source, claim_id):

- ``train.tsv``: Climate-FEVER evidence-level pairs of the train claims (the project-wide md5 split,
  `retrieval.climate_fever.split_of`) and the COVID-Fact official train split.
- ``dev.tsv``: the same from the Climate-FEVER dev claims and COVID-Fact dev. Model selection,
  temperature and aggregation are tuned here, and only here.
- ``cf_test.tsv``, ``covid_test.tsv``: the test parts, for benchmarks only; never train on them.
- ``cf_claims_{dev,test}.jsonl``, ``covid_claims_{dev,test}.jsonl``: one claim per line with its
  label and its evidence passages (`ClaimRecord`), so the claim-level aggregation rule is tuned on
  dev claims and scored on test claims.
- ``report.json``: counts per source, split and label, and every row dropped, and why.

Choices, and why:

- Labels: Climate-FEVER's evidence labels map SUPPORTS -> SUPPORTED, REFUTES -> REFUTED and
  NOT_ENOUGH_INFO -> NOT_ENOUGH_INFO. A pair carries its own sentence's label, never the claim's:
  the evidence of a SUPPORTS claim is mostly NOT_ENOUGH_INFO.
- Climate-FEVER evidence is written as "Title: text" (`evidence_text`), the form the evidence index
  embeds and the judge scores, so a sentence keeps its article's topic.
- COVID-Fact pairs are the claim with its evidence sentences joined (``covid_pairs="joined"``, the
  default): the claim label is defined on the evidence set, that is the dataset's official RTE form
  (so ``covid_test.tsv`` numbers compare with published ones), and one pair per sentence would copy
  the claim's label onto sentences that do not carry it alone and weigh claims by their sentence
  count. ``covid_pairs="sentences"`` writes one pair per sentence instead. COVID-Fact has no
  NOT_ENOUGH_INFO class.
- Lengths: Climate-FEVER pairs are short (median 64 MiniLM tokens, 2% over 128), joined COVID-Fact
  pairs are not (median 117, 43% over 128, 5% over 256): configs/cpu-minilm-nli.json trains with
  max_length 256 and length-grouped batches, so the long pairs are not cut and the short ones stay cheap.
- DISPUTED Climate-FEVER claims (supporting and refuting evidence both present) still give their
  evidence-level pairs. In the claim files they keep the label DISPUTED, which is none of the three
  verdicts: claim-level tuning and 3-way scoring leave them out (`LABELS` only), and benchmarks may
  report what the verifier says about them separately.
- Cleaning: exact repeats of a (claim, evidence) pair, up to case and white space, are written once
  (the first label wins; conflicts are counted). Train and dev rows whose claim is a test claim are
  dropped, and train rows whose claim is a dev claim, so no test claim is ever trained or tuned on.
  Claims are compared by `claim_key` (casefolded words, punctuation ignored): Climate-FEVER holds a
  few claims twice under different ids, once with brackets or a full stop, and the md5 split can
  put the copies on both sides. The result is checked after writing; a leak raises `VerifierError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

# classifier.data (and with it transformers) loads inside the functions that read files, so that
# `import graph.nli_judge` stays cheap.
from classifier.reporting import write_json
from graph.errors import VerifierError
from graph.nli_records import (
    ClaimRecord,
    EvidenceRecord,
    NLIPair,
    as_label,
    claim_key,
    claim_keys,
    evidence_text,
    write_pairs,
)
from graph.schemas import Label
from retrieval.climate_fever import SPLIT_RULE, Claim, Split, load_claims

CovidPairs = Literal["joined", "sentences"]
CLIMATE_FEVER = "climate_fever"
COVID_FACT = "covid_fact"
DISPUTED = "DISPUTED"
CLIMATE_FEVER_LABELS: dict[str, Label] = {
    "SUPPORTS": "SUPPORTED",
    "REFUTES": "REFUTED",
    "NOT_ENOUGH_INFO": "NOT_ENOUGH_INFO",
}
"""Climate-FEVER's evidence and claim labels in our names (claims may also be DISPUTED)."""
COVID_SPLIT_FILES: dict[Split, str] = {
    "train": "covid_fact/train.jsonl",
    "dev": "covid_fact/dev.jsonl",
    "test": "covid_fact/test.jsonl",
}


def climate_fever_pairs(claims: Iterable[Claim]) -> list[NLIPair]:
    """Every evidence sentence of every claim as a pair labelled with the sentence's own label."""
    return [
        NLIPair(c.text, evidence_text(e.article, e.text), CLIMATE_FEVER_LABELS[e.label], CLIMATE_FEVER, c.id)
        for c in claims
        for e in c.evidences
    ]


def climate_fever_claims(claims: Iterable[Claim]) -> list[ClaimRecord]:
    """Climate-FEVER claims as claim records, DISPUTED kept as such."""
    return [
        ClaimRecord(
            claim_id=c.id,
            claim=c.text,
            claim_label=CLIMATE_FEVER_LABELS.get(c.label, c.label),
            source=CLIMATE_FEVER,
            evidences=tuple(
                EvidenceRecord(e.id, e.text, e.article, CLIMATE_FEVER_LABELS[e.label]) for e in c.evidences
            ),
        )
        for c in claims
    ]


def covid_fact_claims(data_dir: str | Path, split: Split) -> list[ClaimRecord]:
    """One official COVID-Fact split as claim records (ids "covid:<line in the full dataset>")."""
    from classifier.data import read_rows

    records = []
    for row in read_rows(Path(data_dir) / COVID_SPLIT_FILES[split]):
        label = as_label(str(row["label"]).strip().upper())
        texts = [str(t) for t in row["evidence"]]
        ids = [
            str(i) for i in row.get("evidence_ids") or [f"covid:{row['line']}:{k}" for k in range(len(texts))]
        ]
        records.append(
            ClaimRecord(
                claim_id=f"covid:{row['line']}",
                claim=str(row["claim"]),
                claim_label=label,
                source=COVID_FACT,
                evidences=tuple(EvidenceRecord(i, t) for i, t in zip(ids, texts, strict=True)),
            )
        )
    return records


def covid_fact_pairs(claims: Iterable[ClaimRecord], mode: CovidPairs = "joined") -> list[NLIPair]:
    """COVID-Fact pairs labelled with the claim's label: evidence joined, or one pair per sentence."""
    pairs: list[NLIPair] = []
    for c in claims:
        label = as_label(c.claim_label)
        texts = [" ".join(e.text for e in c.evidences)] if mode == "joined" else [e.text for e in c.evidences]
        pairs.extend(NLIPair(c.claim, t, label, COVID_FACT, c.claim_id) for t in texts if t.strip())
    return pairs


def dedupe(pairs: Sequence[NLIPair]) -> tuple[list[NLIPair], int, int]:
    """Drop repeats of a (claim, evidence) pair; returns the kept pairs, repeats, and label conflicts."""
    from classifier.data import normalise_text

    seen: dict[tuple[str, str], Label] = {}
    kept: list[NLIPair] = []
    conflicts = 0
    for p in pairs:
        key = (normalise_text(p.claim), normalise_text(p.evidence))
        if key in seen:
            conflicts += seen[key] != p.label
            continue
        seen[key] = p.label
        kept.append(p)
    return kept, len(pairs) - len(kept), conflicts


def _label_counts(pairs: Iterable[NLIPair]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for p in pairs:
        counts.setdefault(p.source, Counter())[p.label] += 1
    return {source: dict(sorted(c.items())) for source, c in sorted(counts.items())}


def _clean(pairs: list[NLIPair], blocked: dict[str, set[str]]) -> tuple[list[NLIPair], dict[str, int]]:
    """De-duplicate, then drop pairs whose claim is in one of the `blocked` claim sets (name -> keys)."""
    kept, repeats, conflicts = dedupe(pairs)
    removed = {"duplicates": repeats, "conflicting_duplicates": conflicts}
    for name, keys in blocked.items():
        before = len(kept)
        kept = [p for p in kept if claim_key(p.claim) not in keys]
        removed[f"claim_in_{name}"] = before - len(kept)
    return kept, removed


def build_nli_data(
    data_dir: str | Path, out_dir: str | Path, covid_pairs: CovidPairs = "joined"
) -> dict[str, Any]:
    """Write the NLI pair files, claim files and ``report.json`` to `out_dir`; return the report.

    Args:
        data_dir: The folder holding ``climate_fever/`` and ``covid_fact/``.
        out_dir: Where the files go (created; existing files are replaced).
        covid_pairs: "joined" (one pair per claim) or "sentences" (one per evidence sentence).

    Raises:
        retrieval.errors.IngestError, classifier.DataError: a data file is missing or malformed.
        VerifierError: a test claim would leak into train or dev (a bug, never expected).
    """
    if covid_pairs not in ("joined", "sentences"):
        raise VerifierError(f"covid_pairs must be 'joined' or 'sentences', not {covid_pairs!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cf = load_claims(data_dir)
    cf_by_split = {s: [c for c in cf if c.split == s] for s in ("train", "dev", "test")}
    covid = {s: covid_fact_claims(data_dir, s) for s in COVID_SPLIT_FILES}

    test_keys = claim_keys([c.text for c in cf_by_split["test"]] + [c.claim for c in covid["test"]])
    dev_keys = claim_keys([c.text for c in cf_by_split["dev"]] + [c.claim for c in covid["dev"]])
    raw = {
        s: climate_fever_pairs(cf_by_split[s]) + covid_fact_pairs(covid[s], covid_pairs)
        for s in ("train", "dev")
    }
    files: dict[str, list[NLIPair]] = {}
    removed: dict[str, dict[str, int]] = {}
    files["train.tsv"], removed["train.tsv"] = _clean(raw["train"], {"test": test_keys, "dev": dev_keys})
    files["dev.tsv"], removed["dev.tsv"] = _clean(raw["dev"], {"test": test_keys})
    files["cf_test.tsv"], removed["cf_test.tsv"] = _clean(climate_fever_pairs(cf_by_split["test"]), {})
    files["covid_test.tsv"], removed["covid_test.tsv"] = _clean(
        covid_fact_pairs(covid["test"], covid_pairs), {}
    )
    for name, pairs in files.items():
        write_pairs(out / name, pairs)

    claim_files = {
        "cf_claims_dev.jsonl": climate_fever_claims(cf_by_split["dev"]),
        "cf_claims_test.jsonl": climate_fever_claims(cf_by_split["test"]),
        "covid_claims_dev.jsonl": covid["dev"],
        "covid_claims_test.jsonl": covid["test"],
    }
    for name in ("cf_claims_dev.jsonl", "covid_claims_dev.jsonl"):
        before = len(claim_files[name])
        claim_files[name] = [c for c in claim_files[name] if claim_key(c.claim) not in test_keys]
        removed[name] = {"claim_in_test": before - len(claim_files[name])}
    for name, records in claim_files.items():
        (out / name).write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")

    leakage = _check_leakage(files, claim_files, test_keys, dev_keys)
    report: dict[str, Any] = {
        "data_dir": str(data_dir),
        "split_rule": SPLIT_RULE,
        "climate_fever_labels": CLIMATE_FEVER_LABELS,
        "covid_pairs": covid_pairs,
        "evidence_format": "climate_fever: 'Title: text'; covid_fact: text (no titles)",
        "counts": _counts_by_split(files),
        "files": {
            **{n: {"rows": len(p), "by_source": _label_counts(p)} for n, p in files.items()},
            **{
                n: {"claims": len(r), "by_label": dict(sorted(Counter(c.claim_label for c in r).items()))}
                for n, r in claim_files.items()
            },
        },
        "removed": removed,
        "leakage": leakage,
    }
    write_json(out / "report.json", report)
    return report


def _counts_by_split(files: dict[str, list[NLIPair]]) -> dict[str, dict[str, dict[str, int]]]:
    """Pairs per source, split and label, as written."""
    split_of_file = {"train.tsv": "train", "dev.tsv": "dev", "cf_test.tsv": "test", "covid_test.tsv": "test"}
    counts: dict[str, dict[str, Counter[str]]] = {}
    for name, pairs in files.items():
        for p in pairs:
            counts.setdefault(p.source, {}).setdefault(split_of_file[name], Counter())[p.label] += 1
    return {
        src: {split: dict(sorted(c.items())) for split, c in by_split.items()}
        for src, by_split in sorted(counts.items())
    }


def _check_leakage(
    files: dict[str, list[NLIPair]],
    claim_files: dict[str, list[ClaimRecord]],
    test_keys: set[str],
    dev_keys: set[str],
) -> dict[str, int]:
    """Count test claims in train and dev as written; anything but zero raises."""
    train = claim_keys(p.claim for p in files["train.tsv"])
    dev = claim_keys(p.claim for p in files["dev.tsv"]) | claim_keys(
        c.claim for n in ("cf_claims_dev.jsonl", "covid_claims_dev.jsonl") for c in claim_files[n]
    )
    found = {
        "test_claims": len(test_keys),
        "train_claims": len(train),
        "dev_claims": len(dev),
        "train_claims_in_test": len(train & test_keys),
        "dev_claims_in_test": len(dev & test_keys),
        "train_claims_in_dev": len(train & dev_keys),
    }
    leaks = {k: v for k, v in found.items() if k.endswith(("_in_test", "_in_dev")) and v}
    if leaks:
        raise VerifierError(f"held-out claims leaked into training or tuning data: {leaks}")
    return found
