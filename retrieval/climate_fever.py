"""Climate-FEVER as labelled retrieval data: the project-wide claim split and gold evidence.

The split is fixed by the md5 of ``claim_id`` (train 70%, dev 10%, test 20%) so that every
part of the project (retrieval benchmarks, encoder tuning, verifier training) uses the same
claims for the same purpose, and no test claim ever trains anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from retrieval.ingest import iter_jsonl
from retrieval.types import Passage

Split = Literal["train", "dev", "test"]
SPLIT_RULE = "int(md5(claim_id).hexdigest(), 16) % 100: < 70 train, < 80 dev, else test"
CLAIMS_FILE = "climate_fever/climate-fever.jsonl"
CORPUS_FILE = "climate_fever/corpus.jsonl"


def split_of(claim_id: str) -> Split:
    """The split a Climate-FEVER claim belongs to."""
    bucket = int(hashlib.md5(claim_id.encode("utf-8")).hexdigest(), 16) % 100
    return "train" if bucket < 70 else "dev" if bucket < 80 else "test"


@dataclass(frozen=True)
class Evidence:
    """One annotated evidence sentence of a claim."""

    id: str
    text: str
    article: str
    label: str
    """SUPPORTS, REFUTES or NOT_ENOUGH_INFO (the annotators' majority)."""


@dataclass(frozen=True)
class Claim:
    """A Climate-FEVER claim with its five annotated evidence sentences."""

    id: str
    text: str
    label: str
    split: Split
    evidences: tuple[Evidence, ...]

    @property
    def gold_ids(self) -> frozenset[str]:
        """Evidence that bears on the claim: every sentence not labelled NOT_ENOUGH_INFO."""
        return frozenset(e.id for e in self.evidences if e.label != "NOT_ENOUGH_INFO")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    hint = "set the data directory to the folder holding climate_fever/"
    return (record for _, record in iter_jsonl(path, missing_hint=hint))


def load_claims(data_dir: str | Path, split: Split | None = None) -> list[Claim]:
    """Claims in file order, optionally of one split."""
    claims = []
    for rec in _jsonl(Path(data_dir) / CLAIMS_FILE):
        cid = str(rec["claim_id"])
        evs = rec["evidences"]
        assert isinstance(evs, list)
        claim = Claim(
            id=cid,
            text=str(rec["claim"]),
            label=str(rec["claim_label"]),
            split=split_of(cid),
            evidences=tuple(
                Evidence(
                    str(e["evidence_id"]), str(e["evidence"]), str(e["article"]), str(e["evidence_label"])
                )
                for e in evs
            ),
        )
        if split is None or claim.split == split:
            claims.append(claim)
    return claims


def claim_key(text: str) -> str:
    """A claim's words, case-folded: the same claim written with other punctuation or case."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def training_claims(data_dir: str | Path) -> list[Claim]:
    """Train claims minus those that repeat a dev or test claim in other words or punctuation.

    Climate-FEVER lists some claims twice under different ids ("Polar bear numbers are
    increasing" and the same with a full stop), so the md5 split alone can put one copy in
    train and the other in test.
    """
    claims = load_claims(data_dir)
    held_out = {claim_key(c.text) for c in claims if c.split != "train"}
    return [c for c in claims if c.split == "train" and claim_key(c.text) not in held_out]


def corpus_passages(data_dir: str | Path) -> list[Passage]:
    """The 5,240 evidence sentences, titled by their Wikipedia article."""
    return [
        Passage(id=str(r["id"]), text=str(r["text"]), title=str(r["article"]), source="climate-fever")
        for r in _jsonl(Path(data_dir) / CORPUS_FILE)
    ]
