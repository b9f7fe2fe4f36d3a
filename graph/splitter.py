"""Sentence splitting with character offsets, by pysbd (rule-based, offline, well kept)."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from graph.report import Sentence

BLOCK_CHARS = 10_000
"""pysbd's time grows with the square of its input (it searches the whole text for each abbreviation
and each sentence): a 1 MB text took minutes. Longer texts are segmented one window of this many
characters at a time; each window's last sentence, which the window may have cut short, is left to
the next one, so the boundaries are pysbd's own."""


class SentenceSplitter(Protocol):
    """Splits a text into sentences that point back into it (``text[s.start:s.end] == s.text``)."""

    def split(self, text: str) -> list[Sentence]:
        """The sentences of ``text`` in order; empty for a blank text."""
        ...


class PysbdSplitter:
    """pysbd's segmenter, with offsets computed by walking the text.

    pysbd with ``clean=False`` returns contiguous pieces of the input (trailing whitespace
    included), so each piece is found from where the previous one ended; its own ``char_span`` mode
    searches by regex and misplaces repeated sentences. Segmenters are cached per thread because a
    segmenter keeps per-call state.
    """

    def __init__(self, language: str = "en") -> None:
        """Split ``language`` text (an ISO 639-1 code pysbd knows)."""
        import pysbd

        pysbd.Segmenter(language=language, clean=False)  # fail now on an unknown language
        self.language = language
        self._local = threading.local()

    def _segmenter(self) -> Any:
        seg = getattr(self._local, "segmenter", None)
        if seg is None:
            import pysbd

            seg = self._local.segmenter = pysbd.Segmenter(language=self.language, clean=False)
        return seg

    def split(self, text: str) -> list[Sentence]:
        """See `SentenceSplitter.split`."""
        if not text.strip():
            return []
        out: list[Sentence] = []
        start = 0
        while start < len(text):
            end = min(start + BLOCK_CHARS, len(text))
            pieces = self._segmenter().segment(text[start:end])
            last = end == len(text) or len(pieces) < 2
            if not last:
                pieces = pieces[:-1]  # maybe cut short by the window: segmented again with what follows
            cursor = _place(text, pieces, start, end, out)
            # One piece filling a whole window (no boundary in BLOCK_CHARS characters) is cut there.
            start = end if last or cursor == start else cursor
        return out


def _place(text: str, pieces: list[str], cursor: int, end: int, out: list[Sentence]) -> int:
    """Find each piece in ``text[cursor:end]``, append its sentence to ``out``; the new cursor."""
    for piece in pieces:
        core = piece.strip()
        if not core:
            continue
        found = text.find(core, cursor, end)
        if found < 0:  # pysbd changed the piece after all; keep going rather than lose the text
            found = cursor + (len(piece) - len(piece.lstrip()))
            core = text[found : min(found + len(core), end)]
        out.append(Sentence(index=len(out), text=core, start=found, end=found + len(core)))
        cursor = found + len(core)
    return cursor
