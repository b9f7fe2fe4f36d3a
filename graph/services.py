"""Loading the pipeline's real services (classifier, index, judges, trace store) from one config.

Adapters here put the classifier, the retriever and the NLI pair model behind the graph's seams,
each with a `MicroBatcher`, so concurrent claims and requests share model calls.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from classifier.metrics import FloatArray
from graph.batching import MicroBatcher
from graph.blocking import DEFAULT_BLOCKING_THREADS, set_blocking_threads
from graph.context import Context, SentenceScore
from graph.judges import Judge
from graph.llm_settings import LLMSettings
from graph.nli_model import NLISettings, PairScorer
from graph.otel import TraceSink
from graph.report import EvidenceHit

logger = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnx"]
SearchMode = Literal["hybrid", "dense", "bm25"]


class PipelineConfig(BaseModel):
    """Where the models, the index and the traces are, and how to run them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    classifier_dir: str = "runs/cpu-minilm/model"
    """The check-worthiness model directory (trained by ``verifact train``)."""
    classifier_backend: Backend = "auto"
    index_dir: str = "runs/index"
    """The evidence index directory (built by ``verifact index build``)."""
    encoder_backend: Backend = "auto"
    encoder_cache: str | None = None
    """Where ONNX exports of the encoder are kept; None for the default folder."""
    nli: NLISettings = Field(default_factory=lambda: NLISettings(model="runs/cpu-minilm-nli/model"))
    llm: LLMSettings | None = None
    """An OpenAI-compatible endpoint; None runs the local NLI judge only."""
    require_agreement: bool = False
    """With an LLM: answer NOT_ENOUGH_INFO unless the NLI second opinion agrees."""
    trace_store: str | None = "runs/traces.db"
    """A SQLite file path or any SQLAlchemy URL; None keeps no traces."""
    otlp_endpoint: str | None = None
    """Export every run as OpenTelemetry spans to this OTLP/HTTP endpoint (needs the otel extra)."""
    otlp_capture_content: bool = False
    """Put prompts, replies, claims and passages on the spans too."""
    max_concurrency: int = Field(default=8, ge=1, le=256)
    """Per-claim steps running at once within one run."""
    batch_wait_ms: float = Field(default=2.0, ge=0.0, le=100.0)
    """How long a model call waits for other requests to join its batch."""
    onnx_spinning: bool = False
    """Let ONNX Runtime's idle threads spin-wait; off, as the models' sessions share few cores (see
    `classifier.predict.set_onnx_spinning`)."""
    model_threads: int = Field(default=1, ge=0, le=256)
    """Intra-op threads of each ONNX session (classifier, encoder, NLI verifier; for the verifier it
    replaces `nli.threads`, as `model_parallel` and `batch_tokens` replace theirs); 0: one per core.

    One thread per forward pass, with `model_parallel` passes at once, beats one pass spread over
    every core for these small models: on 2 cores, in one call over 160 real pairs, an NLI pair costs
    3.3 ms as single-threaded passes two at a time against 5.1 ms on one session using both cores
    (bench/results/service_load.md).
    """
    model_parallel: int = Field(default=0, ge=0, le=256)
    """Forward passes of one classifier, encoder or NLI call run at once (ONNX models; torch spreads
    one pass over the cores itself); 0: one per core."""
    batch_tokens: int = Field(default=256, ge=16)
    """Padded tokens per forward pass at most: smaller passes give `model_parallel` more to share
    out, at no cost per token down to about 4 pairs of 64 tokens."""
    blocking_threads: int = Field(default=DEFAULT_BLOCKING_THREADS, ge=1, le=4096)
    """Threads for the runs' blocking calls, most of which only wait on a model batch; sized for
    waiting callers, not cores (see `graph.blocking`). The pool is process-wide: loading sets it."""
    search_mode: SearchMode = "hybrid"
    """How evidence is ranked: dense and BM25 fused by reciprocal rank, or either alone."""
    fusion: Literal["rrf", "convex"] = "rrf"
    """How hybrid merges the two lists: reciprocal rank, or a weighted sum of z-scored scores."""
    dense_weight: float = Field(default=1.0, ge=0.0)
    """The dense list's weight in the fusion."""
    lexical_weight: float = Field(default=1.0, ge=0.0)
    """The BM25 list's weight in the fusion."""
    rrf_k: int = Field(default=10, ge=1)
    """The fusion's rank constant, 1 / (rrf_k + rank): larger flattens the difference between ranks."""

    def model_layout(self) -> dict[str, int]:
        """The ONNX sessions' layout as the models load it: ``threads`` and ``parallel`` with 0
        resolved to one per core (explicit, as a parallel load left unset picks 1 thread), and
        ``batch_tokens``."""
        cores = os.cpu_count() or 1
        return {
            "threads": self.model_threads or cores,
            "parallel": self.model_parallel or cores,
            "batch_tokens": self.batch_tokens,
        }

    def search(self) -> dict[str, Any]:
        """The search settings, as `retrieval.retriever.SearchSettings` takes (and checks) them and
        traces record them."""
        return {
            "mode": self.search_mode,
            "fusion": self.fusion,
            "dense_weight": self.dense_weight,
            "lexical_weight": self.lexical_weight,
            "rrf_k": self.rrf_k,
        }


class ClassifierScorer:
    """`CheckWorthinessScorer` over a `classifier.predict.CheckWorthinessClassifier`."""

    def __init__(self, classifier: Any, *, batch_wait_ms: float = 2.0) -> None:
        """Wrap a loaded binary classifier (its stored threshold is the default)."""
        self.classifier = classifier
        threshold = classifier.threshold
        self._threshold = 0.5 if threshold is None else float(threshold)
        self._batcher: MicroBatcher[str, SentenceScore] = MicroBatcher(
            self._score_now, max_wait_ms=batch_wait_ms, name="verifact-classifier"
        )

    @property
    def threshold(self) -> float:
        """See `CheckWorthinessScorer.threshold`."""
        return self._threshold

    def _score_now(self, sentences: list[str]) -> list[SentenceScore]:
        return [SentenceScore(p.score, p.truncated) for p in self.classifier.predict(sentences)]

    def score(self, sentences: Sequence[str]) -> list[SentenceScore]:
        """See `CheckWorthinessScorer.score`."""
        return self._batcher(sentences)

    def close(self) -> None:
        """Stop the batching thread, then the classifier's own threads."""
        self._batcher.close()
        self.classifier.close()


class IndexSearcher:
    """`EvidenceSearcher` over a `retrieval.retriever.Retriever`; concurrent searches share one batch."""

    def __init__(self, retriever: Any, *, index_dir: str | None = None, batch_wait_ms: float = 2.0) -> None:
        """Wrap a retriever; ``index_dir`` is where `add_passages` saves the grown index."""
        self.retriever = retriever
        self.index_dir = index_dir
        # FAISS and the passage store are not safe for a write during a read.
        self._lock = threading.Lock()
        self._batcher: MicroBatcher[tuple[str, int], list[EvidenceHit]] = MicroBatcher(
            self._search_now, max_items=64, max_wait_ms=batch_wait_ms, name="verifact-retriever"
        )

    def _search_now(self, queries: list[tuple[str, int]]) -> list[list[EvidenceHit]]:
        out: list[list[EvidenceHit]] = [[] for _ in queries]
        with self._lock:
            for k in sorted({k for _, k in queries}):
                positions = [i for i, (_, kk) in enumerate(queries) if kk == k]
                found = self.retriever.search_batch([queries[i][0] for i in positions], k)
                for i, hits in zip(positions, found, strict=True):
                    out[i] = [to_hit(h) for h in hits]
        return out

    def add_passages(self, passages: Sequence[Any]) -> tuple[int, int, int]:
        """Add `retrieval.types.Passage` values and save the index; (added, duplicates, total).

        Raises:
            RetrievalError: an id collision, an encoder failure, or a failed save (the previous
                index on disk stays loadable).
        """
        with self._lock:
            index = self.retriever.index
            known = index.store.texts_of([p.id for p in passages])
            report = index.add(passages)
            if report.added and self.index_dir:
                try:
                    index.save(self.index_dir)
                except BaseException:
                    # What is not on disk must not be in memory either: a retry must add it again.
                    index.delete([p.id for p in passages if p.id not in known])
                    raise
            return report.added, report.duplicates, len(index)

    def __len__(self) -> int:
        """Passages in the index."""
        return len(self.retriever.index)

    def search(self, claim: str, k: int) -> list[EvidenceHit]:
        """See `EvidenceSearcher.search`."""
        return self._batcher([(claim, k)])[0]

    def close(self) -> None:
        """Stop the batching thread."""
        self._batcher.close()


def to_hit(scored: Any) -> EvidenceHit:
    """A `retrieval.types.ScoredPassage` as the graph carries it."""
    p = scored.passage
    return EvidenceHit(
        id=p.id,
        text=p.text,
        title=p.title,
        source=p.source,
        url=p.url,
        rank=scored.rank,
        score=float(scored.score),
        dense_score=scored.dense_score,
        lexical_score=scored.lexical_score,
    )


class BatchedPairScorer:
    """A `PairScorer` whose calls from concurrent claims are merged into one forward pass."""

    def __init__(self, scorer: PairScorer, *, batch_wait_ms: float = 2.0) -> None:
        """Wrap a pair scorer."""
        self.scorer = scorer
        """The wrapped scorer (the model the batches reach)."""
        self._batcher: MicroBatcher[tuple[str, str], FloatArray] = MicroBatcher(
            self._score_now, max_wait_ms=batch_wait_ms, name="verifact-nli"
        )

    @property
    def matrix(self) -> FloatArray:
        """See `PairScorer.matrix`."""
        return self.scorer.matrix

    def describe(self) -> dict[str, Any]:
        """See `PairScorer.describe`."""
        return self.scorer.describe()

    def _score_now(self, pairs: list[tuple[str, str]]) -> list[FloatArray]:
        rows = self.scorer.log_probs([c for c, _ in pairs], [e for _, e in pairs])
        return list(rows)

    def log_probs(self, claims: Sequence[str], evidences: Sequence[str]) -> FloatArray:
        """See `PairScorer.log_probs`."""
        rows = self._batcher(list(zip(claims, evidences, strict=True)))
        return np.stack(rows) if rows else np.zeros((0, len(self.matrix)), dtype=np.float64)

    def close(self) -> None:
        """Stop the batching thread, then the model's own threads."""
        self._batcher.close()
        close = getattr(self.scorer, "close", None)
        if close is not None:
            close()


def package_version() -> str:
    """The installed verifact-server version, or "unknown" from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verifact-server")
    except PackageNotFoundError:
        return "unknown"


class LoadedServices:
    """A `Context` and what must be closed when the service stops."""

    def __init__(self, context: Context, closers: list[Any]) -> None:
        """Keep the context and the objects with a ``close`` or ``aclose``."""
        self.context = context
        self._closers = closers

    async def aclose(self) -> None:
        """Close batchers, the LLM client and the trace store."""
        for obj in reversed(self._closers):
            try:
                if hasattr(obj, "aclose"):
                    await obj.aclose()
                else:
                    obj.close()
            except Exception as exc:  # closing is best effort; one failure must not stop the rest
                logger.warning("closing %r failed: %s", obj, exc)


def load_services(config: PipelineConfig) -> LoadedServices:
    """Load every model, the index and the trace store once; blocking, takes seconds.

    Raises:
        ClassifierError, RetrievalError, JudgeError, TraceStoreError: a part cannot be loaded.
    """
    closers: list[Any] = []
    try:
        return _load(config, closers)
    except BaseException:
        for obj in reversed(closers):
            try:
                if hasattr(obj, "close"):
                    obj.close()
            except Exception as exc:  # the load error is the one to report, not this
                logger.warning("closing %r after a failed load failed: %s", obj, exc)
        raise


def _load(config: PipelineConfig, closers: list[Any]) -> LoadedServices:
    from classifier.modeling import model_files_hash
    from classifier.predict import CheckWorthinessClassifier, set_onnx_spinning
    from graph.nli_judge import NLIJudge
    from graph.prompts import PROMPT_HASH, PROMPT_VERSION
    from graph.second_opinion import SecondOpinionJudge
    from graph.splitter import PysbdSplitter
    from graph.tracestore import open_trace_store
    from retrieval.encoder import load_encoder
    from retrieval.index import EvidenceIndex
    from retrieval.onnx_encoder import set_onnx_spinning as set_encoder_spinning
    from retrieval.retriever import Retriever, SearchSettings

    set_onnx_spinning(config.onnx_spinning)
    set_encoder_spinning(config.onnx_spinning)
    set_blocking_threads(config.blocking_threads)
    layout = config.model_layout()
    threads, parallel = layout["threads"], layout["parallel"]
    clf = CheckWorthinessClassifier.load(
        config.classifier_dir,
        backend=config.classifier_backend,
        num_threads=threads,
        max_batch_tokens=config.batch_tokens,
        parallel=parallel,
    )
    scorer = ClassifierScorer(clf, batch_wait_ms=config.batch_wait_ms)
    closers.append(scorer)
    manifest = EvidenceIndex.read_manifest(config.index_dir)
    encoder = load_encoder(
        str(manifest["encoder"]["name"]),
        config.encoder_backend,
        config.encoder_cache,
        threads=threads,
        parallel=parallel,
        max_batch_tokens=config.batch_tokens,
    )
    index = EvidenceIndex.load(config.index_dir, encoder)
    retriever = Retriever(index, SearchSettings(**config.search()))
    searcher = IndexSearcher(retriever, index_dir=config.index_dir, batch_wait_ms=config.batch_wait_ms)
    closers.append(searcher)
    nli = NLIJudge.load(config.nli.model_copy(update=layout))
    pairs = BatchedPairScorer(nli.scorer, batch_wait_ms=config.batch_wait_ms)
    closers.append(pairs)
    nli_judge = NLIJudge(pairs, nli.params, name=config.nli.name)
    judges: dict[str, Judge] = {"nli": nli_judge}
    if config.llm is not None:
        from graph.llm_judge import LLMJudge

        llm = LLMJudge(config.llm)
        closers.append(llm)
        judges["llm"] = SecondOpinionJudge(llm, nli_judge, require_agreement=config.require_agreement)
    store = open_trace_store(config.trace_store) if config.trace_store else None
    if store is not None:
        closers.append(store)
    versions: dict[str, Any] = {
        "verifact": package_version(),
        "classifier": {
            "dir": str(Path(config.classifier_dir).resolve()),
            "hash": model_files_hash(Path(config.classifier_dir)),
            "backend": type(clf.backend).__name__,
            "threshold": scorer.threshold,
        },
        "nli": {
            "model": pairs.describe().get("model"),
            "hash": pairs.describe().get("model_hash"),
            "tuned": nli.params.tuned,
        },
        "index": {
            "dir": str(Path(config.index_dir).resolve()),
            "content_hash": manifest.get("content_hash"),
            "count": manifest.get("count"),
            "encoder": manifest.get("encoder"),
            "bm25": manifest.get("lexical"),
            "search": config.search(),
        },
        "prompt": {"version": PROMPT_VERSION, "hash": PROMPT_HASH},
        "llm": config.llm.model_dump(mode="json") if config.llm else None,
        # int8 scores move slightly with how inputs are batched, so a replay needs the layout too.
        "runtime": {
            "model_threads": threads,
            "model_parallel": parallel,
            "batch_tokens": config.batch_tokens,
            "onnx_spinning": config.onnx_spinning,
            "blocking_threads": config.blocking_threads,
        },
    }
    sinks: list[TraceSink] = []
    if config.otlp_endpoint:
        from graph.otel import otlp_exporter

        exporter = otlp_exporter(config.otlp_endpoint, capture_content=config.otlp_capture_content)
        closers.append(exporter)
        sinks.append(exporter)
    context = Context(
        splitter=PysbdSplitter(),
        trace_sinks=tuple(sinks),
        scorer=scorer,
        searcher=searcher,
        judges=judges,
        trace_store=store,
        versions=versions,
        max_concurrency=config.max_concurrency,
    )
    return LoadedServices(context, closers)
