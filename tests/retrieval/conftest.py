"""Retrieval fixtures: a small evidence corpus, a hash encoder, and indexes built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.index import EvidenceIndex, IndexConfig
from retrieval.retriever import Retriever
from retrieval.types import Passage
from tests.fakes import HashEncoder

# Twenty passages on distinct topics, so a query built from one passage's words has one clear answer.
_ROWS: list[tuple[str, str, str, str, dict[str, object]]] = [
    # (id, title, text, source, metadata)
    (
        "climate-1",
        "Arctic sea ice",
        "Arctic sea ice extent reached a record low in September 2012 after a warm summer.",
        "wiki",
        {"topic": "climate", "year": 2012, "lang": "en"},
    ),
    (
        "climate-2",
        "Sea level",
        "Global sea level rise has accelerated since 1993 according to satellite altimetry.",
        "wiki",
        {"topic": "climate", "year": 1993, "lang": "en"},
    ),
    (
        "climate-3",
        "Polar bears",
        "Polar bears depend on floating ice platforms to hunt seals along the coast.",
        "news",
        {"topic": "climate", "year": 2019, "lang": "en"},
    ),
    (
        "health-1",
        "Vaccines",
        "Large cohort studies found no link between the measles vaccine and autism.",
        "wiki",
        {"topic": "health", "year": 2019, "lang": "en"},
    ),
    (
        "health-2",
        "Smoking",
        "Tobacco smoking is the leading preventable cause of lung cancer worldwide.",
        "reports",
        {"topic": "health", "year": 2020, "lang": "en"},
    ),
    (
        "health-3",
        "Coffee",
        "Moderate coffee drinking is associated with a lower risk of liver disease.",
        "news",
        {"topic": "health", "year": 2021, "lang": "en"},
    ),
    (
        "space-1",
        "Moon landing",
        "Apollo eleven astronauts walked on the Moon in July 1969.",
        "wiki",
        {"topic": "space", "year": 1969, "lang": "en"},
    ),
    (
        "space-2",
        "Mars rover",
        "The Perseverance rover collected rock cores in Jezero crater on Mars.",
        "news",
        {"topic": "space", "year": 2021, "lang": "en"},
    ),
    (
        "space-3",
        "Great Wall",
        "The Great Wall of China is not visible to the naked eye from low orbit.",
        "wiki",
        {"topic": "space", "year": 2004, "lang": "en"},
    ),
    (
        "economy-1",
        "Unemployment",
        "The national unemployment rate fell to four percent during the spring quarter.",
        "reports",
        {"topic": "economy", "year": 2018, "lang": "en"},
    ),
    (
        "economy-2",
        "Inflation",
        "Consumer price inflation peaked at nine percent before central banks raised interest rates.",
        "reports",
        {"topic": "economy", "year": 2022, "lang": "en"},
    ),
    (
        "economy-3",
        "Minimum wage",
        "Raising the minimum wage had small effects on teenage employment in several studies.",
        "news",
        {"topic": "economy", "year": 2016, "lang": "en"},
    ),
    (
        "history-1",
        "Napoleon",
        "Napoleon Bonaparte was of average height for a Frenchman of his era.",
        "wiki",
        {"topic": "history", "year": 1821, "lang": "en"},
    ),
    (
        "history-2",
        "Berlin Wall",
        "The Berlin Wall fell in November 1989 opening the border between east and west.",
        "wiki",
        {"topic": "history", "year": 1989, "lang": "en"},
    ),
    (
        "history-3",
        "Vikings",
        "Viking warriors did not wear horned helmets into battle.",
        "news",
        {"topic": "history", "year": 900, "lang": "en"},
    ),
    (
        "science-1",
        "Goldfish memory",
        "Goldfish can remember trained feeding cues for several months.",
        "news",
        {"topic": "science", "year": 2003, "lang": "en"},
    ),
    (
        "science-2",
        "Lightning",
        "Lightning often strikes the same tall tower many times in a single storm.",
        "wiki",
        {"topic": "science", "year": 2010, "lang": "en"},
    ),
    (
        "science-3",
        "Boiling water",
        "Water boils at a lower temperature on high mountains because air pressure drops.",
        "wiki",
        {"topic": "science", "year": 2001, "lang": "en"},
    ),
    (
        "sport-1",
        "Marathon",
        "Eliud Kipchoge ran a marathon distance in under two hours in Vienna.",
        "news",
        {"topic": "sport", "year": 2019, "lang": "en"},
    ),
    (
        "sport-2",
        "Football",
        "Die Weltmeisterschaft im Fussball fand in Katar im Winter statt.",
        "news",
        {"topic": "sport", "year": 2022, "lang": "de"},
    ),
]

CORPUS: tuple[Passage, ...] = tuple(
    Passage(id=pid, text=text, title=title, source=source, url=f"https://example.org/{pid}", metadata=meta)
    for pid, title, text, source, meta in _ROWS
)


def by_id(pid: str) -> Passage:
    """The fixture passage with id ``pid``."""
    return next(p for p in CORPUS if p.id == pid)


@pytest.fixture
def corpus() -> list[Passage]:
    """The twenty fixture passages, in a fresh list."""
    return list(CORPUS)


@pytest.fixture
def encoder() -> HashEncoder:
    """The hash encoder every fixture index is built with."""
    return HashEncoder()


@pytest.fixture
def index(encoder: HashEncoder, corpus: list[Passage]) -> EvidenceIndex:
    """An exact (flat) index of the fixture corpus."""
    idx = EvidenceIndex(encoder)
    idx.add(corpus)
    return idx


@pytest.fixture
def hnsw_index(encoder: HashEncoder, corpus: list[Passage]) -> EvidenceIndex:
    """The fixture corpus in an HNSW index (the threshold lowered so twenty passages qualify)."""
    idx = EvidenceIndex(encoder, IndexConfig(hnsw_threshold=5))
    idx.add(corpus)
    return idx


@pytest.fixture
def retriever(index: EvidenceIndex) -> Retriever:
    """A hybrid retriever over the flat fixture index."""
    return Retriever(index)


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    """Where a test saves its index (not created yet)."""
    return tmp_path / "indexes" / "evidence"
