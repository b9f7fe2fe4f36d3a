"""Values that cross the retrieval package's boundary: passages and scored search hits."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy stays out of light imports (the CLI's help, the tune parser)
    import numpy as np
    from numpy.typing import NDArray

#: The stable int64 id space FAISS uses: 63 bits, so ids stay non-negative.
_ID_MASK = (1 << 63) - 1


def content_id(text: str) -> str:
    """The id of a passage that came without one: a hash of its text."""
    return "h" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def vector_id(passage_id: str) -> int:
    """The int64 FAISS id of a passage id; stable across rebuilds, machines and versions."""
    digest = hashlib.blake2b(passage_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


@dataclass(frozen=True)
class Passage:
    """One unit of evidence in the index."""

    id: str
    """Stable id: the one the input gave, else a hash of the text."""
    text: str
    """The passage text, as shown to judges and people."""
    title: str = ""
    """Document title (a Wikipedia article, a file name); embedded with the text."""
    source: str = ""
    """Where it came from (a file, a collection); filterable."""
    url: str = ""
    """A link to the original, when known."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Anything else the input carried; values are filterable by key."""

    def embedding_text(self, with_title: bool) -> str:
        """The text the encoder and BM25 see: the title gives a sentence its topic."""
        return f"{self.title}: {self.text}" if with_title and self.title else self.text

    def metadata_json(self) -> str:
        """Metadata serialised for storage, keys sorted so equal passages compare equal."""
        return json.dumps(self.metadata, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class ScoredPassage:
    """A search hit with every score that decided its place."""

    passage: Passage
    rank: int
    """1-based position in the final ranking."""
    score: float
    """The final score the ranking is sorted by (fused, or reranked)."""
    dense_score: float | None
    """Cosine similarity of query and passage; None when dense search did not return it."""
    lexical_score: float | None
    """BM25 score; None when lexical search did not return it."""
    dense_rank: int | None = None
    lexical_rank: int | None = None
    rerank_score: float | None = None
    """The cross-encoder's score, when a reranker ran."""

    @property
    def id(self) -> str:
        """The passage id."""
        return self.passage.id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for the CLI, traces and the API."""
        p = self.passage
        return {
            "id": p.id,
            "rank": self.rank,
            "score": self.score,
            "dense_score": self.dense_score,
            "lexical_score": self.lexical_score,
            "dense_rank": self.dense_rank,
            "lexical_rank": self.lexical_rank,
            "rerank_score": self.rerank_score,
            "text": p.text,
            "title": p.title,
            "source": p.source,
            "url": p.url,
            "metadata": p.metadata,
        }


class Encoder(Protocol):
    """Turns text into L2-normalised vectors; queries and documents may be encoded differently."""

    @property
    def name(self) -> str:
        """What to record in a manifest: a path, a hub id or the packaged alias."""
        ...

    @property
    def fingerprint(self) -> str:
        """A hash of the weights, so an index can tell a retrained model from the one it used."""
        ...

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        ...

    def encode_query(self, texts: list[str]) -> NDArray[np.float32]:
        """Embed search queries (claims)."""
        ...

    def encode_document(self, texts: list[str], show_progress: bool = False) -> NDArray[np.float32]:
        """Embed passages."""
        ...
