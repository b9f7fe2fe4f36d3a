"""Benchmark corpora: Climate-FEVER alone, and padded with COVID-Fact and WiCE distractors."""

from __future__ import annotations

import json
from pathlib import Path

from retrieval.climate_fever import SPLIT_RULE, corpus_passages, load_claims
from retrieval.ingest import PassageDeduplicator
from retrieval.types import Passage

WICE_TITLE = "(meta data) TITLE:"


def covid_passages(data_dir: Path) -> list[Passage]:
    """COVID-Fact evidence sentences (untitled: the corpus has no page titles)."""
    path = data_dir / "covid_fact" / "corpus.jsonl"
    return [
        Passage(id=str(r["id"]), text=str(r["text"]), source="covid-fact")
        for r in map(json.loads, path.open())
    ]


def wice_passages(data_dir: Path) -> list[Passage]:
    """Sentences of the web articles WiCE claims cite, titled by the page's title line."""
    out = []
    for split in ("dev", "test"):
        for rec in map(json.loads, (data_dir / "wice" / f"claim_{split}.jsonl").open()):
            sentences = rec["evidence"]
            title = ""
            if sentences and sentences[0].startswith(WICE_TITLE):
                title = sentences[0][len(WICE_TITLE) :].strip()
            for i, text in enumerate(sentences):
                if (i == 0 and title) or not text.strip():
                    continue
                out.append(
                    Passage(
                        id=f"wice-{split}-{rec['meta']['id']}:{i}",
                        text=text.strip(),
                        title=title,
                        source="wice",
                    )
                )
    return out


def padded_corpus(data_dir: Path) -> tuple[list[Passage], dict[str, int]]:
    """Climate-FEVER first (so its ids win exact-text ties), then the distractors, de-duplicated."""
    dedup = PassageDeduplicator()
    kept: list[Passage] = []
    sizes: dict[str, int] = {}
    for name, passages in (
        ("climate-fever", corpus_passages(data_dir)),
        ("covid-fact", covid_passages(data_dir)),
        ("wice", wice_passages(data_dir)),
    ):
        before = len(kept)
        kept.extend(p for p in passages if dedup.admit(p, name))
        sizes[name] = len(kept) - before
    sizes["duplicates_skipped"] = dedup.duplicates
    return kept, sizes


def write_split(data_dir: Path, out: Path) -> dict[str, int]:
    """Record the claim split (ids per split) so that it is written down, not only computed."""
    claims = load_claims(data_dir)
    by_split: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for c in claims:
        by_split[c.split].append(c.id)
    with_gold = {s: sum(1 for c in claims if c.split == s and c.gold_ids) for s in by_split}
    out.write_text(
        json.dumps({"rule": SPLIT_RULE, "claims_with_gold": with_gold, **by_split}, indent=1) + "\n",
        encoding="utf-8",
    )
    return {s: len(ids) for s, ids in by_split.items()}
