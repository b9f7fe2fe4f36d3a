"""Deterministic stand-ins for heavy models: a hash-based sentence encoder."""

from __future__ import annotations

import hashlib
import re

import numpy as np
from numpy.typing import NDArray

from retrieval.encoder import BaseEncoder

_WORD = re.compile(r"\w+")


def _bucket(token: str, dim: int) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and vectors must be stable.
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % dim


class HashEncoder(BaseEncoder):
    """A bag of hashed lowercased words, L2-normalised: texts sharing words get a higher cosine.

    Queries and documents are encoded the same way, so a passage's own text is its best query.
    Character trigrams are optional (off by default) so tests can reason about exact cosines.
    """

    def __init__(
        self,
        dim: int = 256,
        name: str = "hash-encoder",
        fingerprint: str | None = None,
        trigram_weight: float = 0.0,
    ) -> None:
        self._dim = dim
        self._name = name
        self._fingerprint = fingerprint or f"hash-{dim}-v1"
        self.trigram_weight = trigram_weight
        self.calls: list[tuple[str, int]] = []
        """(role, number of texts) per call, so tests can see what was (re-)encoded."""
        self.progress: list[bool] = []
        """``show_progress`` of every document call."""

    @property
    def backend(self) -> str:
        """What the manifest records as the backend."""
        return "hash"

    def vector(self, text: str) -> NDArray[np.float32]:
        """The normalised vector of one text (all zeros when it has no word characters)."""
        vec = np.zeros(self._dim, dtype=np.float32)
        words = _WORD.findall(text.lower())
        for word in words:
            vec[_bucket("w:" + word, self._dim)] += 1.0
        if self.trigram_weight:
            for word in words:
                padded = f"#{word}#"
                for i in range(len(padded) - 2):
                    vec[_bucket("c:" + padded[i : i + 3], self._dim)] += self.trigram_weight
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def _encode(self, texts: list[str], role: str, show_progress: bool) -> NDArray[np.float32]:
        self.calls.append((role, len(texts)))
        if role == "document":
            self.progress.append(show_progress)
        return super()._encode(texts, role, show_progress)

    def _embed(self, texts: list[str], role: str, show_progress: bool) -> NDArray[np.float32]:
        return np.stack([self.vector(t) for t in texts]).astype(np.float32)
