"""Fakes at the pipeline's seams: a keyword scorer, a word-overlap searcher, a scripted judge."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graph.context import Context, SentenceScore
from graph.judges import abstain
from graph.report import EvidenceHit
from graph.schemas import EvidencePassage, Judgement, JudgeTrace, Label, Verdict
from graph.splitter import PysbdSplitter
from graph.tracestore import SqlTraceStore, open_trace_store

CLAIM_CUES = ("percent", "rose", "fell", "million", "degrees", "record", "caused")

DOCS = [
    EvidenceHit(
        id="d1", title="Climate", text="Global temperatures rose 1.1 degrees since 1880.", rank=0, score=0
    ),
    EvidenceHit(id="d2", title="Jobs", text="Unemployment fell to 3.5 percent in 2019.", rank=0, score=0),
    EvidenceHit(
        id="d3", title="Sea", text="Sea level rose 20 centimetres over the last century.", rank=0, score=0
    ),
    EvidenceHit(id="d4", title="Ice", text="Arctic sea ice reached a record low in 2012.", rank=0, score=0),
]

TEXT = (
    "Global temperatures rose 1.1 degrees since 1880. Thank you all for coming tonight. "
    "Unemployment fell to 3.5 percent in 2019. What a wonderful crowd!"
)
"""Two claims (sentences 0 and 2) between two chatty sentences."""


class KeywordScorer:
    """Check-worthy when a sentence has a digit or a cue word; can be told to fail."""

    def __init__(self, threshold: float = 0.5) -> None:
        self._threshold = threshold
        self.calls: list[list[str]] = []
        self.fail: Exception | None = None

    @property
    def threshold(self) -> float:
        return self._threshold

    def score(self, sentences: Sequence[str]) -> list[SentenceScore]:
        if self.fail is not None:
            raise self.fail
        self.calls.append(list(sentences))
        out = []
        for s in sentences:
            hits = sum(cue in s.lower() for cue in CLAIM_CUES) + bool(re.search(r"\d", s))
            out.append(SentenceScore(min(0.2 + 0.3 * hits, 0.99), truncated=len(s) > 500))
        return out


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9.]+", text.lower()))


@dataclass
class OverlapSearcher:
    """Ranks `DOCS` (or given passages) by shared words; can be told to fail."""

    docs: list[EvidenceHit] = field(default_factory=lambda: list(DOCS))
    fail: Exception | None = None
    queries: list[tuple[str, int]] = field(default_factory=list)

    def search(self, claim: str, k: int) -> list[EvidenceHit]:
        if self.fail is not None:
            raise self.fail
        self.queries.append((claim, k))
        q = _words(claim)
        scored = sorted(self.docs, key=lambda d: -len(q & _words(d.text)))
        hits = []
        for rank, d in enumerate(scored[:k], 1):
            overlap = len(q & _words(d.text))
            hits.append(
                d.model_copy(update={"rank": rank, "score": overlap / 10, "lexical_score": float(overlap)})
            )
        return hits


class ScriptedJudge:
    """SUPPORTED when the best passage shares most of the claim's words, REFUTED for "never", else NEI."""

    def __init__(self, name: str = "fake", delay_s: float = 0.0) -> None:
        self._name = name
        self.delay_s = delay_s
        self.seen: list[tuple[str, list[str]]] = []

    @property
    def name(self) -> str:
        return self._name

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        self.seen.append((claim, [p.id for p in evidence]))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        trace = JudgeTrace(judge=self._name, model="scripted", details={"claim_words": len(_words(claim))})
        if not evidence:
            return Judgement(verdict=abstain(self._name, "no evidence"), trace=trace)
        best = evidence[0]
        share = len(_words(claim) & _words(best.text)) / max(len(_words(claim)), 1)
        label: Label
        if "never" in claim.lower():
            label, conf = "REFUTED", 0.8
        elif share >= 0.6:
            label, conf = "SUPPORTED", round(share, 3)
        else:
            return Judgement(verdict=abstain(self._name, f"overlap {share:.2f} too low"), trace=trace)
        verdict = Verdict(
            label=label,
            confidence=conf,
            rationale=f"[{best.id}] says so",
            citations=(best.id,),
            judge=self._name,
        )
        return Judgement(verdict=verdict, trace=trace)


def fake_context(
    store_path: Path | None = None,
    *,
    scorer: KeywordScorer | None = None,
    searcher: OverlapSearcher | None = None,
    llm: ScriptedJudge | None = None,
    max_concurrency: int = 4,
) -> Context:
    """A `Context` of fakes, with a real SQLite trace store when a path is given."""
    store: SqlTraceStore | None = open_trace_store(str(store_path)) if store_path else None
    judges = {"nli": ScriptedJudge("nli-fake")}
    if llm is not None:
        judges["llm"] = llm
    return Context(
        splitter=PysbdSplitter(),
        scorer=scorer or KeywordScorer(),
        searcher=searcher or OverlapSearcher(),
        judges=judges,
        trace_store=store,
        versions={"verifact": "test", "prompt": {"hash": "abc"}},
        max_concurrency=max_concurrency,
    )
