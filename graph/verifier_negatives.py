"""NOT_ENOUGH_INFO negatives for verifier training: retrieved (hard) and random (easy) passages.

A passage becomes a claim's negative only if `why_not_negative` finds nothing against it: it is not
the claim's gold evidence (by id or text), not from an article of its evidence (title or id prefix),
not held-out material (evidence of dev or test claims, WiCE test pages), and not label-bearing
evidence of a similar train claim. That last rule is there because datasets repeat claims in other
words ("polar bear numbers are increasing" / "polar bear populations are increasing"): a passage
that supports one of them is no negative for the other.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from graph.counterfactual import words
from graph.nli_data import CLIMATE_FEVER, COVID_FACT, covid_fact_claims
from graph.nli_records import NLIPair, claim_key, evidence_text
from retrieval.climate_fever import load_claims
from retrieval.types import Passage

if TYPE_CHECKING:
    from retrieval.retriever import Retriever

HELD_OUT_ID_PREFIXES = ("wice-test-",)
"""Index ids of held-out pages: bench.retrieval_data names WiCE test sentences "wice-test-<id>:<i>"."""
_STOP = frozenset(
    words("a an the of in on to is are was were be by for and or that this it its with as at from")
)


@dataclass(frozen=True)
class TrainClaim:
    """A train claim with what its negatives must avoid."""

    claim_id: str
    claim: str
    source: str
    gold_ids: frozenset[str]
    gold_texts: frozenset[str]
    """Its evidence texts, as `norm` gives them."""
    articles: frozenset[str] = field(default=frozenset())
    """Titles and id prefixes of the articles its evidence comes from."""


@dataclass(frozen=True)
class NegativeGuard:
    """What no claim may take as a negative, and the rules' knobs."""

    held_out_ids: frozenset[str] = frozenset()
    held_out_texts: frozenset[str] = frozenset()
    evidence_claims: dict[str, list[frozenset[str]]] = field(default_factory=dict)
    """Label-bearing evidence text -> the content words of the train claims it bears on."""
    similar_claim: float = 0.3
    """Content-word Jaccard from which two claims count as the same claim."""
    min_chars: int = 25
    max_chars: int = 2000
    """Bounds on the evidence text ("Title: text") of a negative."""


def norm(text: str) -> str:
    """A passage text as compared for identity: white space squeezed, casefolded."""
    return " ".join(text.split()).casefold()


def content_words(claim: str) -> frozenset[str]:
    """A claim's words without the commonest function words, for the similarity rule."""
    return frozenset(claim_key(claim).split()) - _STOP


def _article(passage_id: str) -> str:
    return passage_id.rsplit(":", 1)[0] if ":" in passage_id else ""


def why_not_negative(p: Passage, claim: TrainClaim, guard: NegativeGuard) -> str | None:
    """Why `p` cannot be a NOT_ENOUGH_INFO passage for `claim`, or None when it can."""
    text = norm(p.text)
    if p.id in claim.gold_ids or text in claim.gold_texts:
        return "gold_evidence"
    if p.title in claim.articles or _article(p.id) in claim.articles:
        return "same_article"
    if p.id.startswith(HELD_OUT_ID_PREFIXES) or p.id in guard.held_out_ids or text in guard.held_out_texts:
        return "held_out_passage"
    words = content_words(claim.claim)
    for other in guard.evidence_claims.get(text, []):
        if len(words & other) >= guard.similar_claim * max(1, len(words | other)):
            return "evidence_of_similar_claim"
    if not guard.min_chars <= len(evidence_text(p.title, p.text)) <= guard.max_chars:
        return "length"
    return None


def _pair(claim: TrainClaim, p: Passage) -> NLIPair:
    return NLIPair(
        claim.claim, evidence_text(p.title, p.text), "NOT_ENOUGH_INFO", claim.source, claim.claim_id
    )


def hard_negatives(
    claims: Sequence[TrainClaim],
    retriever: Retriever,
    guard: NegativeGuard,
    per_claim: int,
    depth: int = 20,
    batch: int = 256,
) -> tuple[list[NLIPair], Counter[str]]:
    """The `per_claim` best-ranked passages of the top `depth` that pass `why_not_negative`.

    Returns the pairs and how many looked-at passages each rule turned down (plus
    ``claims_short``: claims that got fewer than `per_claim`).
    """
    pairs: list[NLIPair] = []
    skipped: Counter[str] = Counter()
    for start in range(0, len(claims), batch):
        chunk = claims[start : start + batch]
        results = retriever.search_batch([c.claim for c in chunk], k=depth)
        for claim, hits in zip(chunk, results, strict=True):
            taken = 0
            for hit in hits:
                if taken == per_claim:
                    break
                reason = why_not_negative(hit.passage, claim, guard)
                if reason:
                    skipped[reason] += 1
                else:
                    pairs.append(_pair(claim, hit.passage))
                    taken += 1
            skipped["claims_short"] += taken < per_claim
    return pairs, skipped


def easy_negatives(
    claims: Sequence[TrainClaim],
    pool: Sequence[Passage],
    guard: NegativeGuard,
    per_claim: int,
    rng: random.Random,
) -> tuple[list[NLIPair], Counter[str]]:
    """`per_claim` random passages of `pool` (other claims' evidence) per claim; counts as above."""
    pairs: list[NLIPair] = []
    skipped: Counter[str] = Counter()
    for claim in claims:
        taken = 0
        for p in rng.sample(pool, min(len(pool), 10 * per_claim)) if per_claim else []:
            reason = why_not_negative(p, claim, guard)
            if reason:
                skipped[reason] += 1
                continue
            pairs.append(_pair(claim, p))
            taken += 1
            if taken == per_claim:
                break
        skipped["claims_short"] += taken < per_claim
    return pairs, skipped


def train_claims(
    data_dir: str | Path, blocked: set[str]
) -> tuple[list[TrainClaim], list[Passage], dict[str, list[frozenset[str]]]]:
    """Climate-FEVER and COVID-Fact train claims (minus `blocked` claim keys), their evidence
    passages, and their label-bearing evidence (text -> claims' content words)."""
    claims, passages = [], []
    bearing: dict[str, list[frozenset[str]]] = {}
    for c in load_claims(data_dir, "train"):
        if claim_key(c.text) in blocked:
            continue
        ev = c.evidences
        ids, texts = frozenset(e.id for e in ev), frozenset(norm(e.text) for e in ev)
        claims.append(TrainClaim(c.id, c.text, CLIMATE_FEVER, ids, texts, frozenset(e.article for e in ev)))
        passages += [Passage(e.id, e.text, e.article) for e in ev]
        for e in ev:
            if e.label != "NOT_ENOUGH_INFO":
                bearing.setdefault(norm(e.text), []).append(content_words(c.text))
    for r in covid_fact_claims(data_dir, "train"):
        if claim_key(r.claim) in blocked:
            continue
        ids, texts = frozenset(e.id for e in r.evidences), frozenset(norm(e.text) for e in r.evidences)
        claims.append(TrainClaim(r.claim_id, r.claim, COVID_FACT, ids, texts))
        passages += [Passage(e.id, e.text) for e in r.evidences]
        for text in texts:
            bearing.setdefault(text, []).append(content_words(r.claim))
    return claims, passages, bearing


def open_retriever(index_dir: str | Path) -> Retriever:
    """A hybrid retriever over a saved `EvidenceIndex`, with the encoder its manifest names.

    Raises:
        retrieval.errors.RetrievalError: no index there, or its encoder cannot be loaded.
    """
    from retrieval.encoder import load_encoder
    from retrieval.index import EvidenceIndex
    from retrieval.retriever import Retriever

    manifest = EvidenceIndex.read_manifest(index_dir)
    return Retriever(EvidenceIndex.load(index_dir, load_encoder(str(manifest["encoder"]["name"]))))
