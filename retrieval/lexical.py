"""BM25 over the passages (bm25s), mapped to the same int64 ids as the vectors."""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retrieval.errors import IndexLoadError
from retrieval.types import Passage

logger = logging.getLogger(__name__)

_IDS_FILE = "vids.npy"
_PARAMS_FILE = "verifact.json"


def _stemmer(name: str | None) -> Any:
    if name is None or importlib.util.find_spec("Stemmer") is None:
        return None
    import Stemmer

    return Stemmer.Stemmer(name)


class LexicalIndex:
    """A BM25 index rebuilt from the passage store after changes (bm25s has no incremental add)."""

    def __init__(self, *, k1: float, b: float, stemmer: str | None = "english") -> None:
        """BM25 with ``k1`` and ``b`` (their defaults live in `retrieval.index.IndexConfig`)."""
        self.k1, self.b = k1, b
        self.stemmer_name = stemmer if _stemmer(stemmer) is not None else None
        self.model: Any = None
        self.vids: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.stale = True

    def mark_stale(self) -> None:
        """The passages changed; rebuild before the next search or save."""
        self.stale = True

    def describe(self) -> dict[str, Any]:
        """What the manifest records."""
        return {
            "library": "bm25s",
            "k1": self.k1,
            "b": self.b,
            "stemmer": self.stemmer_name,
            "stopwords": "en",
        }

    def _tokenize(self, texts: list[str]) -> Any:
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(self.stemmer_name), show_progress=False)

    def build(self, passages: Iterable[tuple[int, Passage]], with_title: bool) -> None:
        """Index every (FAISS id, passage)."""
        import bm25s

        vids: list[int] = []
        texts: list[str] = []
        for vid, p in passages:
            vids.append(vid)
            texts.append(p.embedding_text(with_title))
        self.vids = np.array(vids, dtype=np.int64)
        self.model = None
        if texts:
            self.model = bm25s.BM25(k1=self.k1, b=self.b)
            self.model.index(self._tokenize(texts), show_progress=False)
        self.stale = False

    def search(
        self, queries: Sequence[str], k: int, allowed: list[int] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top ``k`` (FAISS id, score) per query with a positive score, within ``allowed`` if given."""
        if self.model is None or not len(self.vids) or not queries:
            return [[] for _ in queries]
        mask = None
        if allowed is not None:
            mask = np.isin(self.vids, np.array(allowed, dtype=np.int64)).astype(np.float32)
            if not mask.any():
                return [[] for _ in queries]
        k_eff = min(k, len(self.vids))
        tokens = self._tokenize(list(queries))
        docs, scores = self.model.retrieve(
            tokens, k=k_eff, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [
            [(int(self.vids[d]), float(s)) for d, s in zip(row_docs, row_scores, strict=True) if s > 0]
            for row_docs, row_scores in zip(docs, scores, strict=True)
        ]

    def save(self, directory: Path) -> None:
        """Write the BM25 arrays (no pickle) and the id map."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / _IDS_FILE, self.vids)
        params = {**self.describe(), "empty": self.model is None}
        (directory / _PARAMS_FILE).write_text(json.dumps(params))
        if self.model is not None:
            self.model.save(str(directory), allow_pickle=False, show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read a saved BM25 index.

        Raises:
            IndexLoadError: when files are missing or unreadable.
        """
        import bm25s

        try:
            params = json.loads((directory / _PARAMS_FILE).read_text())
            lex = cls(k1=params["k1"], b=params["b"], stemmer=params["stemmer"])
            if params["stemmer"] and lex.stemmer_name is None:
                raise IndexLoadError(
                    f"{directory}: built with stemmer {params['stemmer']!r}; install PyStemmer"
                )
            lex.vids = np.load(directory / _IDS_FILE, allow_pickle=False)
            if not params["empty"]:
                lex.model = bm25s.BM25.load(str(directory), allow_pickle=False, load_vocab=True)
        except (OSError, KeyError, ValueError) as exc:
            raise IndexLoadError(f"{directory}: unreadable BM25 index ({exc})") from exc
        lex.stale = False
        return lex
