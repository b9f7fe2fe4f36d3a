"""One end-to-end run on real parts: trained small models, the packaged MiniLM, a FAISS index on disk."""

from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from classifier.args import parse_run_config
from classifier.train import MODEL_SUBDIR, run_training
from graph.nli_model import NLISettings
from graph.pipeline import Pipeline
from graph.report import VerifyOptions
from graph.services import PipelineConfig, load_services
from retrieval.encoder import PACKAGED_ENCODER, SentenceTransformerEncoder
from retrieval.index import EvidenceIndex
from retrieval.types import Passage
from tests.conftest import toy_overrides, toy_sentence
from tests.graph.conftest import NLIRun, toy_evidence

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def classifier_dir(tiny_base: Path, toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline-classifier")
    overrides = toy_overrides(tiny_base, toy_data, out, plots=False, test_file=None)
    assert run_training(parse_run_config(None, overrides)) is not None
    return out / MODEL_SUBDIR


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(5)
    passages = [
        Passage(
            id=f"p{i}",
            text=toy_evidence(rng, toy_sentence(rng, True), "SUPPORTED"),
            title="Toy",
            source="toy",
        )
        for i in range(30)
    ]
    index = EvidenceIndex(SentenceTransformerEncoder(PACKAGED_ENCODER))
    index.add(passages)
    out = tmp_path_factory.mktemp("pipeline-index") / "index"
    index.save(out)
    return out


def _torch_config(classifier_dir: Path, index_dir: Path, nli_run: NLIRun, **extra: Any) -> PipelineConfig:
    """Services on the trained toy models and the index, every model on torch."""
    return PipelineConfig(
        classifier_dir=str(classifier_dir),
        classifier_backend="torch",
        index_dir=str(index_dir),
        encoder_backend="torch",
        nli=NLISettings(model=str(nli_run.model), backend="torch"),
        **extra,
    )


def test_end_to_end_on_real_models_and_an_index_on_disk(
    classifier_dir: Path, index_dir: Path, nli_run: NLIRun, tmp_path: Path
) -> None:
    config = _torch_config(
        classifier_dir, index_dir, nli_run, trace_store=str(tmp_path / "traces.db"), dense_weight=2.0
    )
    loaded = load_services(config)
    try:
        rng = random.Random(11)
        claims = [toy_sentence(rng, True) for _ in range(3)]
        chatter = [toy_sentence(rng, False) for _ in range(3)]
        text = " ".join(s.capitalize() for pair in zip(claims, chatter, strict=True) for s in pair)
        result = Pipeline(loaded.context).verify(text, VerifyOptions(top_k=3, include_trace=True))
        store = loaded.context.trace_store
        stored = store.get(result.trace_id) if store is not None else None
    finally:
        asyncio.run(loaded.aclose())

    assert result.summary.sentences == 6
    # The toy classifier learned that numbers and policy words make a claim.
    assert result.summary.checked >= 2
    assert {c.sentence_index % 2 for c in result.claims} == {0}
    for claim in result.claims:
        assert text[claim.start : claim.end] == claim.text
        assert len(claim.evidence) == 3 and all(h.id.startswith("p") for h in claim.evidence)
        assert all(h.dense_score is not None for h in claim.evidence)
        assert set(claim.citations) <= {h.id for h in claim.evidence}
        assert claim.judge == "nli" and claim.error is None
    versions = result.trace.header.versions if result.trace else {}
    assert len(versions["classifier"]["hash"]) == 16
    assert versions["index"]["count"] == 30 and versions["index"]["content_hash"]
    # How evidence was ranked is part of what a replay needs.
    assert versions["index"]["search"] == {
        "mode": "hybrid",
        "fusion": "rrf",
        "dense_weight": 2.0,
        "lexical_weight": 1.0,
        "rrf_k": 10,
    }
    assert (versions["index"]["bm25"]["k1"], versions["index"]["bm25"]["b"]) == (0.9, 0.4)
    assert loaded.context.searcher.retriever.settings.dense_weight == 2.0
    assert versions["nli"]["hash"] and versions["prompt"]["hash"]
    assert stored is not None and stored.summary == result.summary


def test_onnx_models_run_single_threaded_passes_in_parallel_with_the_same_results(
    classifier_dir: Path, index_dir: Path, nli_run: NLIRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import retrieval.encoder
    from classifier.export import export_onnx
    from graph.blocking import blocking_threads as runtime_blocking_threads

    # The index here uses the torch encoder; record the layout the service asks the loader for.
    real_load = retrieval.encoder.load_encoder
    asked: list[dict[str, object]] = []

    def load_encoder(*args: object, **kwargs: object) -> object:
        asked.append({k: kwargs.get(k) for k in ("threads", "parallel", "max_batch_tokens")})
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(retrieval.encoder, "load_encoder", load_encoder)

    clf_dir, nli_dir = tmp_path / "clf", tmp_path / "nli"
    shutil.copytree(classifier_dir, clf_dir)
    shutil.copytree(nli_run.model, nli_dir)
    rng = random.Random(3)
    claims = [toy_sentence(rng, True) for _ in range(4)]
    export_onnx(clf_dir, claims, quantize=False)
    export_onnx(nli_dir, claims, [toy_evidence(rng, c, "SUPPORTED") for c in claims], quantize=False)
    text = " ".join(s.capitalize() for s in claims)

    def run(**knobs: int) -> tuple[list[tuple[str, float, float]], dict[str, int]]:
        config = PipelineConfig(
            classifier_dir=str(clf_dir),
            index_dir=str(index_dir),
            encoder_backend="torch",
            nli=NLISettings(model=str(nli_dir)),
            trace_store=None,
            **knobs,
        )
        loaded = load_services(config)
        try:
            clf = loaded.context.scorer.classifier  # type: ignore[attr-defined]
            nli = loaded.context.judges["nli"].scorer.scorer.classifier  # type: ignore[attr-defined]
            seen = {
                "clf_parallel": clf.parallel,
                "clf_threads": clf.backend.session.get_session_options().intra_op_num_threads,
                "nli_parallel": nli.parallel,
                "nli_threads": nli.backend.session.get_session_options().intra_op_num_threads,
                "nli_tokens": nli.max_batch_tokens,
            }
            assert asked.pop() == {
                "threads": seen["nli_threads"],
                "parallel": seen["nli_parallel"],
                "max_batch_tokens": seen["nli_tokens"],
            }
            runtime = loaded.context.versions["runtime"]
            assert runtime_blocking_threads() == runtime["blocking_threads"] == config.blocking_threads
            assert (runtime["model_threads"], runtime["model_parallel"]) == (
                seen["clf_threads"],
                seen["clf_parallel"],
            )
            assert runtime["batch_tokens"] == seen["nli_tokens"]
            result = Pipeline(loaded.context).verify(text, VerifyOptions(top_k=5))
        finally:
            asyncio.run(loaded.aclose())
        assert clf.parallel == 1 and nli.parallel == 1  # closing stopped their threads
        return [(c.verdict, c.score, c.confidence) for c in result.claims], seen

    parallel, seen = run(model_threads=1, model_parallel=3, batch_tokens=32, blocking_threads=7)
    assert seen == dict(clf_parallel=3, clf_threads=1, nli_parallel=3, nli_threads=1, nli_tokens=32)
    serial, seen = run(model_threads=2, model_parallel=1, batch_tokens=4096)
    assert seen == dict(clf_parallel=1, clf_threads=2, nli_parallel=1, nli_threads=2, nli_tokens=4096)
    cores = os.cpu_count() or 1
    _, seen = run(model_threads=0, model_parallel=2, batch_tokens=32)  # 0: one thread per core
    assert seen == dict(clf_parallel=2, clf_threads=cores, nli_parallel=2, nli_threads=cores, nli_tokens=32)
    assert parallel and len(parallel) == len(serial)
    for (v1, cw1, conf1), (v2, cw2, conf2) in zip(parallel, serial, strict=True):
        assert v1 == v2 and abs(cw1 - cw2) < 1e-5 and abs(conf1 - conf2) < 1e-5


def test_the_service_takes_an_ensemble_as_its_classifier(
    classifier_dir: Path, index_dir: Path, nli_run: NLIRun, tmp_path: Path
) -> None:
    from classifier.ensemble import build_ensemble
    from classifier.modeling import model_files_hash

    # Two copies of one model: the ensemble's scores must be the model's own.
    copies = [tmp_path / name for name in ("a", "b")]
    for copy in copies:
        shutil.copytree(classifier_dir, copy)
    build_ensemble(copies, tmp_path / "ens", backend="torch")
    rng = random.Random(3)
    text = " ".join(toy_sentence(rng, i % 2 == 0).capitalize() for i in range(4))
    results = []
    for clf in (classifier_dir, tmp_path / "ens"):
        loaded = load_services(_torch_config(clf, index_dir, nli_run))
        try:
            results.append(Pipeline(loaded.context).verify(text, VerifyOptions(include_trace=True)))
        finally:
            asyncio.run(loaded.aclose())
    single, ensemble = results
    assert ensemble.claims and [c.text for c in ensemble.claims] == [c.text for c in single.claims]
    assert [c.score for c in ensemble.claims] == pytest.approx([c.score for c in single.claims], abs=1e-6)
    hashes = [r.trace.header.versions["classifier"]["hash"] if r.trace else None for r in results]
    assert hashes == [model_files_hash(classifier_dir), model_files_hash(tmp_path / "ens")]
    assert hashes[0] != hashes[1]
