"""The real packaged MiniLM behind the index: paraphrases find their passage, on torch and int8 ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quantize import MAX_BATCH_DRIFT, SCHEME
from retrieval.encoder import PACKAGED_ENCODER, SentenceTransformerEncoder, load_encoder
from retrieval.index import EvidenceIndex
from retrieval.onnx_encoder import MIN_COSINE, ONNX_FILE, OnnxEncoder
from retrieval.retriever import Retriever, SearchSettings
from retrieval.types import Passage

CORPUS = [
    Passage("sea", "Global mean sea level has risen about 20 centimetres since 1900.", "Sea level rise"),
    Passage("bears", "Polar bear numbers are expected to fall as Arctic sea ice shrinks.", "Polar bear"),
    Passage("co2", "Atmospheric carbon dioxide passed 420 parts per million in 2023.", "Carbon dioxide"),
    Passage("vax", "Large cohort studies found no link between the MMR vaccine and autism.", "MMR vaccine"),
    Passage("coral", "Marine heatwaves cause mass bleaching of coral reefs.", "Coral bleaching"),
    Passage("wind", "Wind turbines supplied about a fifth of Germany's electricity last year.", "Wind power"),
    Passage("budget", "The city council approved the new school budget on Tuesday.", "Local news"),
    Passage(
        "glacier", "Most mountain glaciers worldwide have been retreating for decades.", "Retreat of glaciers"
    ),
]
# Paraphrases that share few words with their passage, so BM25 alone would not find them.
QUERIES = {
    "The oceans are higher now than a century ago.": "sea",
    "Shrinking ice threatens the white bears of the north.": "bears",
    "Jabs do not give children developmental disorders.": "vax",
    "Ice masses in the mountains keep getting smaller.": "glacier",
}


@pytest.fixture(scope="module")
def torch_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(PACKAGED_ENCODER)


@pytest.mark.integration
@pytest.mark.slow
def test_a_paraphrased_claim_finds_its_passage(
    torch_encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    index = EvidenceIndex(torch_encoder)
    index.add(CORPUS)
    index.save(tmp_path / "ix")
    reopened = EvidenceIndex.load(tmp_path / "ix", torch_encoder)
    for mode in ("dense", "hybrid"):
        retriever = Retriever(reopened, SearchSettings(mode=mode))
        for query, expected in QUERIES.items():
            top = retriever.search(query, k=3)
            assert top[0].id == expected, (mode, query, [h.id for h in top])
            assert top[0].dense_score is not None and top[0].dense_score > 0.3


@pytest.mark.integration
@pytest.mark.slow
def test_int8_export_agrees_with_torch_and_is_cached(
    torch_encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    onnx = OnnxEncoder.from_model(PACKAGED_ENCODER, cache_dir=tmp_path)
    exported = tmp_path / onnx.fingerprint / ONNX_FILE
    assert exported.is_file() and (exported.parent / "export.json").is_file()
    assert onnx.fingerprint == torch_encoder.fingerprint and onnx.dim == torch_encoder.dim == 384
    texts = [p.embedding_text(True) for p in CORPUS] + list(QUERIES)
    ours, ref = onnx.encode_document(texts), torch_encoder.encode_document(texts)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert float((ours * ref).sum(1).min()) > 0.98
    # Same ranking of the corpus for every query, so an index built on torch loads with ONNX.
    index = EvidenceIndex(torch_encoder)
    index.add(CORPUS)
    index.save(tmp_path / "ix")
    again = load_encoder(PACKAGED_ENCODER, "auto", cache_dir=tmp_path)
    assert isinstance(again, OnnxEncoder) and again.path.stat().st_mtime == exported.stat().st_mtime
    retriever = Retriever(EvidenceIndex.load(tmp_path / "ix", again), SearchSettings(mode="dense"))
    for query, expected in QUERIES.items():
        assert retriever.search(query, k=1)[0].id == expected


@pytest.mark.integration
@pytest.mark.slow
def test_onnx_layouts_give_the_same_vectors_in_input_order(tmp_path: Path) -> None:
    texts = [p.embedding_text(True) for p in CORPUS] * 6 + list(QUERIES)
    onnx = OnnxEncoder.from_model(PACKAGED_ENCODER, cache_dir=tmp_path)
    path = onnx.path
    # One pass per batch of about one text: the passes are the same in both layouts, so the
    # vectors must match exactly, threads or not.
    serial = OnnxEncoder(PACKAGED_ENCODER, onnx.layout, path, max_batch_tokens=1, threads=2)
    par = OnnxEncoder(PACKAGED_ENCODER, onnx.layout, path, max_batch_tokens=1, parallel=3)
    assert (serial.parallel, par.parallel) == (1, 3)
    assert par.session.get_session_options().intra_op_num_threads == 1
    assert np.array_equal(par.encode_document(texts), serial.encode_document(texts))
    default = OnnxEncoder(PACKAGED_ENCODER, onnx.layout, path)
    assert default.max_batch_tokens == (256 if default.parallel > 1 else 2048)
    # Single-threaded passes keep small batches; one session over several threads takes large ones.
    one = OnnxEncoder(PACKAGED_ENCODER, onnx.layout, path, threads=1)
    wide = OnnxEncoder(PACKAGED_ENCODER, onnx.layout, path, threads=2)
    assert (one.parallel, one.max_batch_tokens, wide.parallel, wide.max_batch_tokens) == (1, 256, 1, 2048)
    loaded = load_encoder(PACKAGED_ENCODER, "onnx", tmp_path, threads=1, parallel=2, max_batch_tokens=64)
    assert (loaded.path, loaded.parallel, loaded.max_batch_tokens) == (path, 2, 64)
    assert loaded.session.get_session_options().intra_op_num_threads == 1
    # Activations are quantized per token, so a text's vector is its own: alone, in any batch and
    # beside any padding it moves by float rounding at most, queries and passages alike.
    alone = serial.encode_document(texts)  # max_batch_tokens=1: one text per pass
    queries, passages = default.encode_query(texts), default.encode_document(texts)
    assert np.abs(queries - alone).max() <= MAX_BATCH_DRIFT
    assert np.abs(passages - alone).max() <= MAX_BATCH_DRIFT
    for i in (0, 3, len(texts) - 1):
        assert np.abs(default.encode_query([texts[i]])[0] - queries[i]).max() <= MAX_BATCH_DRIFT
    report = json.loads((path.parent / "export.json").read_text())
    assert report["activations"] == f"int8 {SCHEME}"
    assert report["max_batch_drift"] <= MAX_BATCH_DRIFT < 1 - MIN_COSINE
