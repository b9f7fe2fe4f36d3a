"""The NLI verifier's data records: pairs, claims with their evidence, and how files hold them.

`graph.nli_data` builds them from the shared data sets; the judge, its tuning and the benchmarks
read them back. Pair files are TSVs with the columns of `PAIR_COLUMNS`; claim files are JSONL, one
`ClaimRecord` per line.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import VerifierError
from graph.schemas import LABELS, Label
from retrieval.types import Passage

PAIR_COLUMNS = ("claim", "evidence", "label", "source", "claim_id")
"""The columns of a pair file, in order."""
_WORDS = re.compile(r"\w+")


def as_label(value: str) -> Label:
    """`value` as one of our labels; raises `VerifierError` for anything else (DISPUTED included)."""
    for label in LABELS:
        if value == label:
            return label
    raise VerifierError(f"{value!r} is not one of {', '.join(LABELS)}")


def evidence_text(title: str, text: str) -> str:
    """The text a pair model sees for a passage: "Title: text", exactly as the index embeds it."""
    return Passage(id="-", text=text, title=title).embedding_text(with_title=True)


@dataclass(frozen=True)
class NLIPair:
    """One training or benchmark row: a claim, one evidence text and the label of the pair."""

    claim: str
    evidence: str
    label: Label
    source: str
    claim_id: str


@dataclass(frozen=True)
class EvidenceRecord:
    """One evidence passage of a claim in a claim file."""

    id: str
    text: str
    """The passage text without its title (the judge adds the title, as `EvidencePassage` has one)."""
    title: str = ""
    label: Label | None = None
    """The passage's own label where the dataset has one (Climate-FEVER), else None."""


@dataclass(frozen=True)
class ClaimRecord:
    """One claim with its gold label and gold evidence, as written to the claim files."""

    claim_id: str
    claim: str
    claim_label: str
    """One of `LABELS`, or DISPUTED (Climate-FEVER only; left out of 3-way scoring)."""
    source: str
    evidences: tuple[EvidenceRecord, ...] = field(default=())

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ClaimRecord:
        """Read a record written by `to_json`."""
        evidences = tuple(EvidenceRecord(**e) for e in row.get("evidences", ()))
        return cls(
            str(row["claim_id"]), str(row["claim"]), str(row["claim_label"]), str(row["source"]), evidences
        )


def read_claims(path: str | Path) -> list[ClaimRecord]:
    """Read a claim file (JSONL of `ClaimRecord`); raises `classifier.DataError` for a bad file."""
    from classifier.data import read_rows

    return [ClaimRecord.from_dict(row) for row in read_rows(Path(path))]


def claim_key(text: str) -> str:
    """A claim text as compared for leakage: its casefolded words, so punctuation variants match.

    COVID-Fact holds the same claim in train and test with and without a final full stop.
    """
    return " ".join(_WORDS.findall(text.casefold()))


def claim_keys(texts: Iterable[str]) -> set[str]:
    """The leakage keys of many claims (see `claim_key`)."""
    return {claim_key(t) for t in texts}


def write_pairs(path: Path, pairs: Sequence[NLIPair]) -> None:
    """Write pairs as a TSV that `classifier.data.read_rows` reads back exactly (fields quoted as needed)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(PAIR_COLUMNS)
        writer.writerows((p.claim, p.evidence, p.label, p.source, p.claim_id) for p in pairs)
