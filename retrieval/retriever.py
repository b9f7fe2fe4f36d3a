"""Hybrid search: dense and BM25 candidates fused by reciprocal rank, optionally reranked."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from retrieval.errors import QueryError
from retrieval.index import EvidenceIndex
from retrieval.store import Filters
from retrieval.types import Passage, ScoredPassage

logger = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
Fusion = Literal["rrf", "convex"]
MAX_K = 1000


class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One score per passage."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder from a local directory (or the hub when online)."""

    def __init__(self, name: str, max_length: int = 256) -> None:
        from sentence_transformers import CrossEncoder

        from retrieval.errors import EncoderError

        self.name = name
        try:
            self.model = CrossEncoder(name, device="cpu", max_length=max_length)
        except Exception as exc:  # hub errors, missing files and bad configs all land here
            raise EncoderError(f"cannot load reranker {name!r}: {exc}") from exc

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Relevance logits for each passage."""
        if not passages:
            return []
        out = self.model.predict([(query, p) for p in passages], batch_size=32, show_progress_bar=False)
        return [float(x) for x in out]


@dataclass(frozen=True)
class SearchSettings:
    """How a search ranks."""

    mode: Mode = "hybrid"
    fusion: Fusion = "rrf"
    """How hybrid mode merges the lists: ``rrf`` sums weight / (rrf_k + rank); ``convex`` sums weight *
    the score's z-score within its list's candidates (a passage missing from a list gets that list's
    lowest z). Convex at dense weight 1.5 was +0.011 recall@5 over RRF on ~830 cross-fitted claims,
    1.8 standard errors: not enough to replace RRF (bench/results/retrieval_tune.md)."""
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    rrf_k: int = 10
    """The constant in 1 / (rrf_k + rank); larger flattens the difference between ranks. 10 and
    200 candidates were chosen on ~830 cross-fitted Climate-FEVER claims (bench/results/retrieval_tune.md)."""
    candidates: int = 200
    """How deep each of dense and BM25 looks before fusion."""
    rerank_depth: int = 30
    """How many fused hits the reranker rescores (when there is one)."""

    def __post_init__(self) -> None:
        if self.mode not in ("hybrid", "dense", "bm25"):
            raise QueryError(f"unknown search mode {self.mode!r}; use hybrid, dense or bm25")
        if self.fusion not in ("rrf", "convex"):
            raise QueryError(f"unknown fusion {self.fusion!r}; use rrf or convex")
        if self.dense_weight < 0 or self.lexical_weight < 0 or self.dense_weight + self.lexical_weight == 0:
            raise QueryError("fusion weights must be non-negative and not both zero")
        if self.rrf_k < 1 or self.candidates < 1:
            raise QueryError("rrf_k and candidates must be at least 1")


class Retriever:
    """``search`` and ``search_batch`` over an :class:`EvidenceIndex`."""

    def __init__(
        self, index: EvidenceIndex, settings: SearchSettings | None = None, reranker: Reranker | None = None
    ) -> None:
        self.index = index
        self.settings = settings or SearchSettings()
        self.reranker = reranker

    def search(self, query: str, k: int = 5, filters: Filters | None = None) -> list[ScoredPassage]:
        """The ``k`` best passages for ``query``, with every score that placed them.

        Raises:
            QueryError: on an empty query, k outside 1..1000 or a malformed filter.
        """
        return self.search_batch([query], k, filters)[0]

    def search_batch(
        self, queries: Sequence[str], k: int = 5, filters: Filters | None = None
    ) -> list[list[ScoredPassage]]:
        """``search`` for many queries at once: one encoder call, one FAISS call, one BM25 call."""
        if isinstance(queries, str):
            raise QueryError("search_batch takes a list of queries, not one string")
        if not 1 <= k <= MAX_K:
            raise QueryError(f"k must be between 1 and {MAX_K}, got {k}")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise QueryError("every query must be a non-empty string")
        if not queries:
            return []
        s = self.settings
        depth = max(s.candidates, k, s.rerank_depth if self.reranker else 0)
        allowed = self.index.allowed_vids(filters)
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        lexical: list[list[tuple[int, float]]] = [[] for _ in queries]
        if s.mode in ("hybrid", "dense"):
            vecs = self.index.encoder.encode_query(list(queries))
            dense = self.index.dense_search(vecs, depth, allowed)
        if s.mode in ("hybrid", "bm25"):
            lexical = self.index.lexical_search(list(queries), depth, allowed)
        fused = [self._fuse(d, lx) for d, lx in zip(dense, lexical, strict=True)]
        shown = max(k, s.rerank_depth) if self.reranker else k
        wanted = {vid for rows in fused for vid, *_ in rows[:shown]}
        passages = self.index.store.fetch(sorted(wanted))
        return [self._finish(q, rows, passages, k) for q, rows in zip(queries, fused, strict=True)]

    def _fuse(
        self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]
    ) -> list[tuple[int, float, dict[str, Any]]]:
        s = self.settings
        info: dict[int, dict[str, Any]] = {}
        for rank, (vid, score) in enumerate(dense, start=1):
            info.setdefault(vid, {})["dense"] = (rank, score)
        for rank, (vid, score) in enumerate(lexical, start=1):
            info.setdefault(vid, {})["lexical"] = (rank, score)
        vote = self._convex_votes(dense, lexical) if s.fusion == "convex" else self._rrf_vote
        rows = []
        for vid, parts in info.items():
            if s.mode == "dense":
                final = parts["dense"][1]
            elif s.mode == "bm25":
                final = parts["lexical"][1]
            else:
                final = vote("dense", s.dense_weight, parts) + vote("lexical", s.lexical_weight, parts)
            rows.append((vid, final, parts))
        # Ties (equal fused scores) fall back to the dense score, then the id, so order is stable.
        rows.sort(key=lambda r: (-r[1], -r[2].get("dense", (0, -2.0))[1], r[0]))
        return rows

    def _rrf_vote(self, name: str, weight: float, parts: dict[str, Any]) -> float:
        return weight / (self.settings.rrf_k + parts[name][0]) if name in parts else 0.0

    @staticmethod
    def _convex_votes(
        dense: list[tuple[int, float]], lexical: list[tuple[int, float]]
    ) -> Callable[[str, float, dict[str, Any]], float]:
        """weight * z-score within each list; a passage a list missed gets the list's lowest z."""
        floor: dict[str, float] = {}
        stats: dict[str, tuple[float, float]] = {}
        for name, rows in (("dense", dense), ("lexical", lexical)):
            if rows:
                scores = [score for _, score in rows]
                mean = sum(scores) / len(scores)
                spread = (sum((x - mean) ** 2 for x in scores) / len(scores)) ** 0.5 or 1.0
                stats[name] = (mean, spread)
                floor[name] = (min(scores) - mean) / spread

        def vote(name: str, weight: float, parts: dict[str, Any]) -> float:
            if name not in stats:
                return 0.0
            if name not in parts:
                return weight * floor[name]
            mean, spread = stats[name]
            score: float = parts[name][1]
            return weight * (score - mean) / spread

        return vote

    def _finish(
        self, query: str, rows: list[tuple[int, float, dict[str, Any]]], passages: dict[int, Passage], k: int
    ) -> list[ScoredPassage]:
        rerank: dict[int, float] = {}
        if self.reranker is not None and rows:
            head = rows[: max(k, self.settings.rerank_depth)]
            scores = self.reranker.score(query, [passages[v].embedding_text(True) for v, *_ in head])
            rerank = {vid: sc for (vid, *_), sc in zip(head, scores, strict=True)}
            rows = sorted(head, key=lambda r: -rerank[r[0]]) + rows[len(head) :]
        hits = []
        for rank, (vid, final, parts) in enumerate(rows[:k], start=1):
            d, lx = parts.get("dense"), parts.get("lexical")
            hits.append(
                ScoredPassage(
                    passage=passages[vid],
                    rank=rank,
                    score=rerank.get(vid, final),
                    dense_score=d[1] if d else None,
                    lexical_score=lx[1] if lx else None,
                    dense_rank=d[0] if d else None,
                    lexical_rank=lx[0] if lx else None,
                    rerank_score=rerank.get(vid),
                )
            )
        return hits
