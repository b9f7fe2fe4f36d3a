"""Sentence splitting with character offsets, by pysbd (rule-based, offline, well kept)."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from graph.report import Sentence


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
        cursor = 0
        for piece in self._segmenter().segment(text):
            core = piece.strip()
            if not core:
                continue
            start = text.find(core, cursor)
            if start < 0:  # pysbd changed the piece after all; keep going rather than lose the text
                start = cursor + (len(piece) - len(piece.lstrip()))
                core = text[start : start + len(core)]
            end = start + len(core)
            out.append(Sentence(index=len(out), text=core, start=start, end=end))
            cursor = end
        return out
