"""The retriever: ranking, the three modes, fusion weights, filters, batches, bad queries, reranking."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from retrieval.errors import QueryError
from retrieval.index import EvidenceIndex, IndexConfig
from retrieval.retriever import Fusion, Mode, Retriever, SearchSettings
from retrieval.types import Passage, ScoredPassage
from tests.fakes import HashEncoder
from tests.retrieval.conftest import CORPUS, by_id

QUERY = "Did the Berlin Wall fall in November 1989?"


def _ids(hits: list[ScoredPassage]) -> list[str]:
    return [h.id for h in hits]


class ScriptedReranker:
    """Scores each passage by a table of substrings; records what it was asked."""

    def __init__(self, scores: dict[str, float] | None = None, default: float = 0.0) -> None:
        self.scores = scores or {}
        self.default = default
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """The score of the first table entry each passage contains, else the default."""
        self.calls.append((query, list(passages)))
        return [next((v for k, v in self.scores.items() if k in p), self.default) for p in passages]


class ReversingReranker:
    """Scores passages so that the reranked order is the fused order reversed."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Later passages score higher."""
        return [float(i) for i in range(len(passages))]


# -- ranking and fields -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_the_passage_sharing_the_query_words_ranks_first(index: EvidenceIndex, mode: Mode) -> None:
    hits = Retriever(index, SearchSettings(mode=mode)).search(QUERY, k=5)
    assert hits[0].id == "history-2"


def test_hits_carry_rank_and_every_score(retriever: Retriever) -> None:
    hits = retriever.search(QUERY, k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    top = hits[0]
    assert top.passage == by_id("history-2")
    assert top.dense_score is not None and 0 < top.dense_score <= 1
    assert top.lexical_score is not None and top.lexical_score > 0
    assert (top.dense_rank, top.lexical_rank) == (1, 1)
    assert top.rerank_score is None


def test_to_dict_is_a_flat_json_view(retriever: Retriever) -> None:
    hit = retriever.search(QUERY, k=1)[0]
    d = hit.to_dict()
    assert d["id"] == "history-2" and d["rank"] == 1
    assert (d["title"], d["source"], d["url"]) == ("Berlin Wall", "wiki", "https://example.org/history-2")
    assert d["metadata"] == {"topic": "history", "year": 1989, "lang": "en"}
    assert (d["score"], d["dense_score"], d["lexical_score"]) == (
        hit.score,
        hit.dense_score,
        hit.lexical_score,
    )


def test_k_larger_than_the_corpus_returns_every_passage_once(index: EvidenceIndex) -> None:
    hits = Retriever(index, SearchSettings(mode="dense")).search(QUERY, k=100)
    assert sorted(_ids(hits)) == sorted(p.id for p in CORPUS)


def test_an_empty_index_returns_no_hits(encoder: HashEncoder) -> None:
    assert Retriever(EvidenceIndex(encoder)).search_batch(["anything", "at all"], k=3) == [[], []]


# -- modes ------------------------------------------------------------------------------------


def _assert_ranks_agree_up_to_ties(hits: list[ScoredPassage], source_ranks: list[int | None]) -> None:
    """The single list's ranks are a permutation of the final ones that only reorders equal scores."""
    assert sorted(r for r in source_ranks if r is not None) == [h.rank for h in hits]
    by_source_rank = [
        h.score for _, h in sorted(zip(source_ranks, hits, strict=True), key=lambda t: t[0] or 0)
    ]
    assert by_source_rank == [h.score for h in hits]


def test_dense_mode_scores_by_cosine_alone(index: EvidenceIndex, encoder: HashEncoder) -> None:
    hits = Retriever(index, SearchSettings(mode="dense")).search(QUERY, k=20)
    q = encoder.vector(QUERY)
    cosine = {p.id: float(q @ encoder.vector(p.embedding_text(True))) for p in CORPUS}
    assert sorted(_ids(hits)) == sorted(cosine)
    for h in hits:
        assert h.dense_score == pytest.approx(cosine[h.id], abs=1e-5)
        assert h.score == h.dense_score
        assert h.lexical_score is None and h.lexical_rank is None
    _assert_ranks_agree_up_to_ties(hits, [h.dense_rank for h in hits])


def test_bm25_mode_scores_by_bm25_alone(index: EvidenceIndex) -> None:
    hits = Retriever(index, SearchSettings(mode="bm25")).search(QUERY, k=20)
    assert hits, "the query shares words with the corpus"
    assert len(hits) < 20, "passages without a shared term are left out"
    for h in hits:
        assert h.score == h.lexical_score and h.score > 0
        assert h.dense_score is None and h.dense_rank is None
    _assert_ranks_agree_up_to_ties(hits, [h.lexical_rank for h in hits])


def test_hybrid_mode_fuses_reciprocal_ranks(index: EvidenceIndex) -> None:
    settings = SearchSettings(mode="hybrid", dense_weight=0.7, lexical_weight=1.3, rrf_k=10)
    hits = Retriever(index, settings).search(QUERY, k=20)
    assert len(hits) == 20
    for h in hits:
        expected = 0.0
        if h.dense_rank is not None:
            expected += 0.7 / (10 + h.dense_rank)
        if h.lexical_rank is not None:
            expected += 1.3 / (10 + h.lexical_rank)
        assert h.score == pytest.approx(expected)
    assert any(h.lexical_score is None for h in hits), "dense-only hits are kept, with no BM25 score"
    assert all(h.dense_score is not None for h in hits)


def _z_scores(scores: list[float | None]) -> list[float]:
    """Each score's z within the scores present; a missing one gets the lowest z."""
    present = [x for x in scores if x is not None]
    mean = sum(present) / len(present)
    spread = (sum((x - mean) ** 2 for x in present) / len(present)) ** 0.5
    z = [(x - mean) / spread if x is not None else None for x in scores]
    floor = min(v for v in z if v is not None)
    return [v if v is not None else floor for v in z]


def test_convex_fusion_sums_weighted_z_scores(index: EvidenceIndex) -> None:
    settings = SearchSettings(fusion="convex", dense_weight=0.7, lexical_weight=1.3)
    hits = Retriever(index, settings).search(QUERY, k=len(CORPUS))
    assert len(hits) == len(CORPUS), "every passage is a dense candidate, so all come back"
    assert any(h.lexical_score is None for h in hits) and any(h.lexical_score is not None for h in hits)
    dense = _z_scores([h.dense_score for h in hits])
    lexical = _z_scores([h.lexical_score for h in hits])
    for h, d, lx in zip(hits, dense, lexical, strict=True):
        assert h.score == pytest.approx(0.7 * d + 1.3 * lx)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.fixture
def split_index() -> EvidenceIndex:
    """Three passages where dense and BM25 disagree: stopwords count for the hash encoder only."""
    index = EvidenceIndex(HashEncoder(), IndexConfig(embed_title=False))
    index.add(
        [
            Passage(id="stopwords", text="the of and the of and zebra"),
            Passage(id="keywords", text="zebra giraffe savanna"),
            Passage(id="filler", text="penguins swim in cold antarctic water"),
        ]
    )
    return index


SPLIT_QUERY = "zebra giraffe the of and"


def test_dense_and_bm25_disagree_in_the_constructed_case(split_index: EvidenceIndex) -> None:
    dense = Retriever(split_index, SearchSettings(mode="dense")).search(SPLIT_QUERY, k=2)
    bm25 = Retriever(split_index, SearchSettings(mode="bm25")).search(SPLIT_QUERY, k=2)
    assert _ids(dense) == ["stopwords", "keywords"]
    assert _ids(bm25) == ["keywords", "stopwords"]


@pytest.mark.parametrize(
    ("dense_weight", "lexical_weight", "first"),
    [(3.0, 1.0, "stopwords"), (1.0, 3.0, "keywords"), (1.0, 0.0, "stopwords"), (0.0, 1.0, "keywords")],
)
@pytest.mark.parametrize("fusion", ["rrf", "convex"])
def test_fusion_weights_decide_which_list_wins(
    split_index: EvidenceIndex, dense_weight: float, lexical_weight: float, first: str, fusion: Fusion
) -> None:
    settings = SearchSettings(fusion=fusion, dense_weight=dense_weight, lexical_weight=lexical_weight)
    hits = Retriever(split_index, settings).search(SPLIT_QUERY, k=2)
    assert _ids(hits)[0] == first


def test_equal_fused_scores_fall_back_to_the_dense_score(split_index: EvidenceIndex) -> None:
    hits = Retriever(split_index).search(SPLIT_QUERY, k=2)
    assert hits[0].score == pytest.approx(hits[1].score)
    assert _ids(hits) == ["stopwords", "keywords"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "sparse"},
        {"fusion": "max"},
        {"dense_weight": -1.0},
        {"dense_weight": 0.0, "lexical_weight": 0.0},
        {"rrf_k": 0},
        {"candidates": 0},
    ],
)
def test_bad_search_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(QueryError):
        SearchSettings(**kwargs)  # type: ignore[arg-type]


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_filter_by_source_keeps_only_that_source(index: EvidenceIndex, mode: Mode) -> None:
    hits = Retriever(index, SearchSettings(mode=mode)).search(
        "percent rate cancer", k=20, filters={"source": "reports"}
    )
    assert hits
    assert {h.passage.source for h in hits} == {"reports"}


def test_filter_by_metadata_key(retriever: Retriever) -> None:
    hits = retriever.search(QUERY, k=20, filters={"topic": "climate"})
    assert sorted(_ids(hits)) == ["climate-1", "climate-2", "climate-3"]
    assert _ids(retriever.search(QUERY, k=20, filters={"year": 2019, "source": "news"})) != []
    assert {h.id for h in retriever.search(QUERY, k=20, filters={"year": 2019, "source": "news"})} == {
        "climate-3",
        "sport-1",
    }


def test_filter_by_a_list_of_values(retriever: Retriever) -> None:
    hits = retriever.search(QUERY, k=20, filters={"topic": ["space", "sport"], "lang": ("en",)})
    assert sorted(_ids(hits)) == ["space-1", "space-2", "space-3", "sport-1"]


def test_filter_matching_nothing_returns_no_hits(retriever: Retriever) -> None:
    assert retriever.search(QUERY, k=5, filters={"source": "nowhere"}) == []
    assert retriever.search(QUERY, k=5, filters={"no_such_key": "x"}) == []


@pytest.mark.parametrize("filters", [{"topic": []}, {"topic": [{"nested": 1}]}])
def test_malformed_filter_is_refused(retriever: Retriever, filters: dict[str, object]) -> None:
    with pytest.raises(QueryError, match="filter 'topic'"):
        retriever.search(QUERY, k=5, filters=filters)  # type: ignore[arg-type]


# -- batches ----------------------------------------------------------------------------------


def test_search_batch_returns_one_list_per_query_in_order(retriever: Retriever, encoder: HashEncoder) -> None:
    queries = [QUERY, "measles vaccine autism", "marathon under two hours"]
    encoder.calls.clear()
    batch = retriever.search_batch(queries, k=4)
    assert encoder.calls == [("query", 3)], "one encoder call for the whole batch"
    assert [hits[0].id for hits in batch] == ["history-2", "health-1", "sport-1"]
    assert batch == [retriever.search(q, k=4) for q in queries]


def test_search_batch_with_filters_equals_individual_searches(retriever: Retriever) -> None:
    queries = ["sea ice", "mars rover"]
    filters = {"source": ["news", "wiki"]}
    assert retriever.search_batch(queries, k=3, filters=filters) == [
        retriever.search(q, k=3, filters=filters) for q in queries
    ]


def test_search_batch_of_no_queries_is_empty(retriever: Retriever) -> None:
    assert retriever.search_batch([], k=3) == []


# -- bad queries ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_refused(retriever: Retriever, query: str) -> None:
    with pytest.raises(QueryError, match="non-empty string"):
        retriever.search(query)


@pytest.mark.parametrize("k", [0, -1, 1001])
def test_k_outside_1_to_1000_is_refused(retriever: Retriever, k: int) -> None:
    with pytest.raises(QueryError, match=f"k must be between 1 and 1000, got {k}"):
        retriever.search(QUERY, k=k)


def test_k_of_1000_is_allowed(retriever: Retriever) -> None:
    assert len(retriever.search(QUERY, k=1000)) == 20


def test_a_plain_string_passed_to_search_batch_is_refused(retriever: Retriever) -> None:
    with pytest.raises(QueryError, match="list of queries, not one string"):
        retriever.search_batch(QUERY)  # type: ignore[arg-type]


@pytest.mark.parametrize("queries", [[QUERY, ""], [QUERY, None]])
def test_a_bad_query_in_a_batch_is_refused(retriever: Retriever, queries: list[object]) -> None:
    with pytest.raises(QueryError, match="every query must be a non-empty string"):
        retriever.search_batch(queries)  # type: ignore[arg-type]


# -- reranking --------------------------------------------------------------------------------


def test_reranker_reorders_hits_and_records_its_scores(index: EvidenceIndex) -> None:
    plain = Retriever(index, SearchSettings(rerank_depth=5)).search(QUERY, k=5)
    reranked = Retriever(index, SearchSettings(rerank_depth=5), reranker=ReversingReranker()).search(
        QUERY, k=5
    )
    assert _ids(reranked) == list(reversed(_ids(plain)))
    assert [h.rank for h in reranked] == [1, 2, 3, 4, 5]
    assert [h.rerank_score for h in reranked] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert all(h.score == h.rerank_score for h in reranked)
    # Retrieval scores are kept, so a trace can show why each candidate was considered.
    before = {h.id: (h.dense_score, h.lexical_score) for h in plain}
    assert {h.id: (h.dense_score, h.lexical_score) for h in reranked} == before


def test_reranker_can_promote_a_candidate_from_below_k(index: EvidenceIndex) -> None:
    plain = Retriever(index, SearchSettings(mode="dense")).search(QUERY, k=20)
    deep = plain[9].id  # tenth by dense score: outside the top 3 without reranking
    reranker = ScriptedReranker({by_id(deep).text: 10.0})
    settings = SearchSettings(mode="dense", rerank_depth=12)
    hits = Retriever(index, settings, reranker=reranker).search(QUERY, k=3)
    assert hits[0].id == deep and hits[0].rerank_score == 10.0
    assert hits[0].dense_score == plain[9].dense_score
    assert hits[0].dense_rank is not None and hits[0].dense_rank > 3
    [(query, texts)] = reranker.calls
    assert query == QUERY and len(texts) == 12
    # The reranker sees the title with the text, like the encoder does.
    assert f"{by_id(deep).title}: {by_id(deep).text}" in texts


def test_reranker_runs_once_per_query_in_a_batch(index: EvidenceIndex) -> None:
    reranker = ScriptedReranker()
    queries = [QUERY, "sea ice", "vaccine"]
    batch = Retriever(index, reranker=reranker).search_batch(queries, k=2)
    assert [q for q, _ in reranker.calls] == queries
    assert all(h.rerank_score == 0.0 for hits in batch for h in hits)


def test_reranker_is_not_called_when_nothing_matches(index: EvidenceIndex) -> None:
    reranker = ScriptedReranker()
    assert Retriever(index, reranker=reranker).search(QUERY, filters={"source": "nowhere"}) == []
    assert reranker.calls == []
