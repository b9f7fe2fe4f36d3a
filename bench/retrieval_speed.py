"""Retrieval speed: indexing throughput against plain sentence-transformers, query latency, HNSW recall.

    python -m bench.retrieval_speed [--data-dir DIR] [--sample 4000] [--sizes 10000,25000,50000,100000]

Corpus: the padded Climate-FEVER corpus (80k) topped up with CT24 sentences to 100k passages.
Writes bench/results/retrieval_speed.{json,md,png}.
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.report import RESULTS, machine, markdown_table, save
from bench.retrieval_data import padded_corpus
from retrieval.climate_fever import load_claims
from retrieval.encoder import PACKAGED_ENCODER, SentenceTransformerEncoder, resolve_encoder_path
from retrieval.index import EvidenceIndex, IndexConfig
from retrieval.ingest import PassageDeduplicator
from retrieval.onnx_encoder import OnnxEncoder
from retrieval.retriever import Retriever, SearchSettings
from retrieval.types import Passage

logger = logging.getLogger("bench.retrieval_speed")


class PrecomputedEncoder:
    """Serves vectors computed once, so index build time is measured apart from encoding time."""

    def __init__(self, inner: Any, texts: list[str], vectors: NDArray[np.float32]) -> None:
        self.inner = inner
        self.table = dict(zip(texts, vectors, strict=True))
        self.name, self.fingerprint, self.dim = inner.name, inner.fingerprint, inner.dim
        self.backend = getattr(inner, "backend", "?")

    def encode_query(self, texts: list[str]) -> NDArray[np.float32]:
        """Queries are encoded for real: their latency is part of a search."""
        return self.inner.encode_query(texts)  # type: ignore[no-any-return]

    def encode_document(self, texts: list[str], show_progress: bool = False) -> NDArray[np.float32]:
        """Look the passages up."""
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def corpus(data_dir: Path, size: int) -> list[Passage]:
    """The padded corpus, topped up with CT24 debate sentences to ``size`` passages."""
    passages, _ = padded_corpus(data_dir)
    dedup = PassageDeduplicator()
    passages = [p for p in passages if dedup.admit(p, "padded")]
    with (data_dir / "ct24_checkworthy_en" / "train.tsv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            p = Passage(id=f"ct24:{row['Sentence_id']}", text=row["Text"].strip(), source="ct24")
            if len(passages) >= size:
                break
            if p.text and dedup.admit(p, "ct24"):
                passages.append(p)
    return passages[:size]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    arr = np.array(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def rss_of_loaded_index(path: Path) -> dict[str, float]:
    """Resident memory of a fresh process before and after it loads the index (MiB)."""
    code = (
        "import resource,sys\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1])*4096/2**20\n"
        "from retrieval.encoder import load_encoder\n"
        "from retrieval.index import EvidenceIndex\n"
        "enc=load_encoder()\n"
        "before=rss()\n"
        f"ix=EvidenceIndex.load({str(path)!r}, enc)\n"
        "print(before, rss())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(float, out.stdout.split()[-2:])
    return {"process_with_encoder_mib": round(before, 1), "index_mib": round(after - before, 1)}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the measurements and write the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--sample", type=int, default=4000)
    parser.add_argument("--sizes", default="10000,25000,50000,100000")
    parser.add_argument("--queries", type=int, default=300)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = Path(ns.data_dir)
    sizes = [int(s) for s in ns.sizes.split(",")]
    passages = corpus(data, max(sizes))
    texts = [p.embedding_text(True) for p in passages]
    rng = random.Random(0)
    sample_idx = rng.sample(range(len(passages)), ns.sample)
    sample = [passages[i] for i in sample_idx]
    results: dict[str, Any] = {"corpus_size": len(passages), "sample": ns.sample, "machine": machine()}

    # 1. Throughput, one run: plain sentence-transformers against our index build on the same passages.
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(resolve_encoder_path(PACKAGED_ENCODER), device="cpu")
    sample_texts = [p.embedding_text(True) for p in sample]
    st_model.encode(sample_texts[:64])
    t = time.perf_counter()
    reference = st_model.encode(sample_texts, batch_size=32, normalize_embeddings=True)
    results["baseline_pps"] = ns.sample / (time.perf_counter() - t)
    onnx = OnnxEncoder.from_model(PACKAGED_ENCODER)
    onnx.encode_document(sample_texts[:64])
    report = EvidenceIndex(onnx).add(sample)
    results["ours_pps"] = report.passages_per_second
    ours_vectors = onnx.encode_document(sample_texts)
    cos = (ours_vectors * reference).sum(1)
    results["cosine_to_baseline"] = {"mean": float(cos.mean()), "min": float(cos.min())}
    torch_report = EvidenceIndex(SentenceTransformerEncoder(PACKAGED_ENCODER)).add(sample)
    results["ours_torch_pps"] = torch_report.passages_per_second
    results["speedup"] = results["ours_pps"] / results["baseline_pps"]
    logger.info("throughput: baseline %.0f, ours %.0f pps", results["baseline_pps"], results["ours_pps"])

    # 2. Encode the whole corpus once; build each size from those vectors and time its parts.
    t = time.perf_counter()
    vectors = onnx.encode_document(texts, show_progress=True)
    encode_seconds = time.perf_counter() - t
    results["corpus_encode_pps"] = len(texts) / encode_seconds
    pre = PrecomputedEncoder(onnx, texts, vectors)
    claims = [c.text for c in load_claims(data)][: ns.queries]
    scaling = []
    largest: EvidenceIndex | None = None
    for size in sizes:
        index = EvidenceIndex(pre, IndexConfig())
        t = time.perf_counter()
        index.add(passages[:size])
        index_seconds = time.perf_counter() - t
        t = time.perf_counter()
        index.lexical_search(["warm up"], 1)
        bm25_seconds = time.perf_counter() - t
        row: dict[str, Any] = {
            "passages": size,
            "index_type": index.index_type,
            "encode_s_at_measured_pps": round(size / results["corpus_encode_pps"], 1),
            "faiss_sqlite_s": round(index_seconds, 2),
            "bm25_s": round(bm25_seconds, 2),
        }
        for mode in ("hybrid", "dense"):
            retriever = Retriever(index, SearchSettings(mode=mode, candidates=50))
            retriever.search(claims[0], k=10)
            lat = []
            for q in claims:
                t = time.perf_counter()
                retriever.search(q, k=10)
                lat.append(time.perf_counter() - t)
            row[f"{mode}_p50_ms"], row[f"{mode}_p95_ms"] = (round(x, 2) for x in percentiles(lat))
        scaling.append(row)
        logger.info("scaling: %s", row)
        largest = index
    assert largest is not None
    results["scaling"] = scaling
    top = scaling[-1]
    results["query_p50_ms"], results["query_p95_ms"] = top["hybrid_p50_ms"], top["hybrid_p95_ms"]
    results["query_latency_at"] = top["passages"]

    # 3. HNSW against exact search on the same vectors.
    exact = EvidenceIndex(pre, IndexConfig(hnsw_threshold=10**9))
    exact.add(passages)
    qv = onnx.encode_query([c.text for c in load_claims(data)])
    approx_hits = largest.dense_search(qv, 10)
    exact_hits = exact.dense_search(qv, 10)
    overlap = [
        len({v for v, _ in a} & {v for v, _ in e}) / 10 for a, e in zip(approx_hits, exact_hits, strict=True)
    ]
    results["hnsw_recall@10"] = float(np.mean(overlap))
    results["hnsw"] = {"index_type": largest.index_type, "queries": len(qv), **vars(largest.config)}

    # 4. Memory and disk of the saved largest index.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index"
        largest.encoder = onnx
        largest.save(path)
        results["disk_mib"] = round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)
        results["memory"] = rss_of_loaded_index(path)

    rows = [
        ["plain sentence-transformers encode", f"{results['baseline_pps']:.0f}", "1.00x"],
        [
            "verifact index add (torch encoder)",
            f"{results['ours_torch_pps']:.0f}",
            f"{results['ours_torch_pps'] / results['baseline_pps']:.2f}x",
        ],
        [
            "verifact index add (int8 ONNX, default)",
            f"{results['ours_pps']:.0f}",
            f"{results['speedup']:.2f}x",
        ],
    ]
    md = [
        "# Retrieval speed",
        "",
        f"Throughput on {ns.sample} passages of the padded corpus, one run (passages/s):",
        "",
        markdown_table(["path", "passages/s", "vs baseline"], rows),
        "",
        f"int8 vectors against sentence-transformers: mean cosine {cos.mean():.4f}, min {cos.min():.4f}.",
        "",
        "Scaling (vectors encoded once, at the measured rate; FAISS + SQLite and BM25 times measured):",
        "",
        markdown_table(list(scaling[0].keys()), [list(r.values()) for r in scaling]),
        "",
        f"HNSW recall@10 against exact search at {top['passages']} passages: {results['hnsw_recall@10']:.4f} "
        f"({len(qv)} claim queries).",
        f"Loaded index memory: {results['memory']['index_mib']} MiB; on disk {results['disk_mib']} MiB.",
        "",
        "![scaling](retrieval_speed.png)",
    ]
    print("\n".join(md))
    plot(scaling, RESULTS / "retrieval_speed.png")
    save("retrieval_speed", results, "\n".join(md))


def plot(scaling: list[dict[str, Any]], path: Path) -> None:
    """Build time and latency against corpus size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["passages"] for r in scaling]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(n, [r["encode_s_at_measured_pps"] for r in scaling], "o-", label="encode")
    a.plot(n, [r["faiss_sqlite_s"] for r in scaling], "o-", label="FAISS + SQLite")
    a.plot(n, [r["bm25_s"] for r in scaling], "o-", label="BM25")
    a.set_xlabel("passages")
    a.set_ylabel("seconds")
    a.set_title("build time")
    a.legend()
    for mode in ("hybrid", "dense"):
        b.plot(n, [r[f"{mode}_p50_ms"] for r in scaling], "o-", label=f"{mode} p50")
        b.plot(n, [r[f"{mode}_p95_ms"] for r in scaling], "o--", label=f"{mode} p95")
    b.set_xlabel("passages")
    b.set_ylabel("ms per query (k=10)")
    b.set_title("query latency")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
