"""The service under load: uvicorn on 127.0.0.1, POST /verify at concurrency 1, 4 and 16.

    python -m bench.service_load [--requests 120,160,320] [--naive-paragraphs 80]

Paragraphs: five sentences each, drawn from real data (two Climate-FEVER test claims and three CT24
dev_test sentences, shuffled), seeded. The server runs with the embedded defaults (the same
``VERIFACT_*`` settings as ``verifact serve``) and the local NLI judge. In the same run, after the
server has stopped, a naive sequential pipeline (one sentence, one passage, one model call at a time,
no batching) processes paragraphs on the same models, once with ONNX Runtime's default session
settings and once with the service's; the faster run is the baseline. Writes
bench/results/service_load.{json,md,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np

from bench.report import RESULTS, machine, markdown_table, save


def paragraphs(data_dir: Path, n: int, seed: int = 7) -> list[str]:
    """``n`` five-sentence paragraphs of real claims and debate sentences."""
    from retrieval.climate_fever import load_claims

    rng = random.Random(seed)
    claims = [c.text.strip() for c in load_claims(data_dir, "test")]
    with (data_dir / "ct24_checkworthy_en" / "dev_test.tsv").open(encoding="utf-8") as fh:
        debate = [r["Text"].strip() for r in csv.DictReader(fh, delimiter="\t") if r["Text"].strip()]
    out = []
    for _ in range(n):
        sentences = rng.sample(claims, 2) + rng.sample(debate, 3)
        rng.shuffle(sentences)
        out.append(" ".join(s if s[-1] in ".!?" else s + "." for s in sentences))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def start_server(
    port: int, trace_db: Path, extra_env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``verifact serve`` in a child process, waited on until /readyz answers 200.

    The server's stderr goes to ``log`` (default: ``server.log`` beside ``trace_db``), never to a pipe:
    nobody reads a pipe while the load runs, and once its 64 KiB buffer is full every log write blocks
    the server (a fault run that logs for each failed LLM call stalls that way, and then cannot stop).
    """
    log = log or trace_db.with_name("server.log")
    # The load generator is one client address: lift the per-caller concurrency limit above c16.
    env = {
        **os.environ,
        "VERIFACT_TRACE_DB": str(trace_db),
        "VERIFACT_PORT": str(port),
        "VERIFACT_MAX_CONCURRENT_PER_KEY": "64",
        **(extra_env or {}),
    }
    with log.open("ab") as sink:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {_tail(log)}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if r.status_code == 200:
                return proc
            if r.json().get("status") == "failed":
                raise RuntimeError(f"server failed to load: {r.json().get('reason')}")
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server not ready after 180 s: {_tail(log)}")


def _tail(log: Path, limit: int = 4000) -> str:
    return log.read_bytes()[-limit:].decode("utf-8", "replace") if log.is_file() else ""


async def drive(base: str, texts: list[str], concurrency: int, total: int) -> dict[str, Any]:
    """``total`` requests, ``concurrency`` in flight at once; latency percentiles, rps and errors."""
    latencies: list[float] = []
    errors = 0
    claims = 0
    queue = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors, claims
            for i in queue:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/verify", json={"text": texts[i % len(texts)], "judge": "nli"})
                    ok = r.status_code == 200
                    if ok:
                        claims += len(r.json()["claims"])
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000.0)
                errors += not ok

        # One request first, so the first measured one does not pay for warm-up.
        await client.post("/verify", json={"text": texts[0], "judge": "nli"})
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    lat = np.array(latencies)
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "rps": round(total / wall, 2),
        "errors": errors,
        "requests": total,
        "claims_per_request": round(claims / max(total - errors, 1), 2),
    }


class _Models(NamedTuple):
    clf: Any
    retriever: Any
    judge: Any
    splitter: Any
    threshold: float

    def close(self) -> None:
        self.clf.close()
        self.judge.scorer.close()


def _load_models(*, spinning: bool, threads: int, parallel: int, batch_tokens: int | None) -> _Models:
    """The server's models, opened in the given ONNX Runtime session layout (``batch_tokens`` None:
    each library's default)."""
    from api.config import Settings
    from api.prepare import resolve_model_dirs
    from classifier.predict import CheckWorthinessClassifier, set_onnx_spinning
    from graph.nli_judge import NLIJudge
    from graph.splitter import PysbdSplitter
    from retrieval.encoder import load_encoder
    from retrieval.index import EvidenceIndex
    from retrieval.onnx_encoder import set_onnx_spinning as set_encoder_spinning
    from retrieval.retriever import Retriever

    settings = resolve_model_dirs(Settings())
    set_onnx_spinning(spinning)
    set_encoder_spinning(spinning)
    tokens = {} if batch_tokens is None else {"max_batch_tokens": batch_tokens}
    clf = CheckWorthinessClassifier.load(
        settings.classifier_dir, num_threads=threads, parallel=parallel, **tokens
    )
    manifest = EvidenceIndex.read_manifest(settings.index_dir)
    encoder = load_encoder(manifest["encoder"]["name"], threads=threads, parallel=parallel, **tokens)
    retriever = Retriever(EvidenceIndex.load(settings.index_dir, encoder))
    nli: dict[str, Any] = {"threads": threads, "parallel": parallel}
    if batch_tokens is not None:
        nli["batch_tokens"] = batch_tokens
    judge = NLIJudge.load(settings.pipeline().nli.model_copy(update=nli))
    threshold = clf.threshold if clf.threshold is not None else 0.5
    return _Models(clf, retriever, judge, PysbdSplitter(), threshold)


def naive_rps(texts: list[str], *, spinning: bool, threads: int | None) -> dict[str, Any]:
    """The same models, no batching: one sentence, one search, one pair at a time, sequentially.

    ``spinning`` and ``threads`` are the ONNX Runtime session settings (idle threads spin-wait;
    intra-op threads, None: one per core) the models open with.
    """
    from graph.schemas import EvidencePassage

    threads = threads or os.cpu_count() or 1
    models = _load_models(spinning=spinning, threads=threads, parallel=1, batch_tokens=None)
    clf, retriever, judge, splitter, threshold = models
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        for sentence in splitter.split(text):
            (pred,) = clf.predict([sentence.text])
            if pred.score < threshold:
                continue
            hits = retriever.search(sentence.text, 5)
            rows = [
                judge.probabilities(
                    sentence.text, [EvidencePassage(id=h.id, text=h.passage.text, title=h.passage.title)]
                )
                for h in hits
            ]
            judge.decide(np.vstack(rows))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    sentences = [s.text for text in texts[:8] for s in splitter.split(text)][:32]
    hit = retriever.search(sentences[0], 5)
    passages = [EvidencePassage(id=h.id, text=h.passage.text, title=h.passage.title) for h in hit]
    return {
        "onnx_spinning": spinning,
        "onnx_threads": threads,
        "paragraphs": len(texts),
        "seconds": round(wall, 2),
        "rps": round(len(texts) / wall, 3),
        "cpu_ms_per_paragraph": round(cpu * 1000.0 / len(texts), 1),
        # What batching can gain on this CPU: model cost per item alone and in a batch.
        "ms_per_item": {
            "classifier_batch_1": _per_item(lambda: [clf.predict([s]) for s in sentences], len(sentences)),
            "classifier_batch_32": _per_item(lambda: clf.predict(sentences), len(sentences)),
            "nli_batch_1": _per_item(lambda: [judge.probabilities(sentences[0], [p]) for p in passages], 5),
            "nli_batch_5": _per_item(lambda: judge.probabilities(sentences[0], passages), 5),
        },
    }


def batched_ceiling(
    texts: list[str], repeats: int = 3, layout: dict[str, int] | None = None
) -> dict[str, Any]:
    """The service's model work on ``texts`` with no serving around it: an upper bound on any server.

    All paragraphs at once, each stage one call over everything (split, classify every sentence,
    search every claim, score every (claim, passage) pair, decide per claim), in the server's session
    layout. No HTTP, graph, trace or waiting for a batch to fill: what is left is what batching on
    this machine can do. The median of ``repeats`` runs counts. ``layout`` (threads, parallel,
    batch_tokens) replaces the server's.
    """
    from api.config import Settings
    from graph.nli_calibration import verdict_probabilities
    from graph.nli_records import evidence_text

    service = Settings().pipeline()
    layout = layout or service.model_layout()
    models = _load_models(spinning=service.onnx_spinning, **layout)
    clf, retriever, judge, splitter, threshold = models

    def run(batch: list[str]) -> dict[str, float]:
        clock: dict[str, float] = {}
        cpu, started = time.process_time(), time.perf_counter()
        sentences = [s.text for text in batch for s in splitter.split(text)]
        clock["split"] = time.perf_counter()
        claims = [s for s, p in zip(sentences, clf.predict(sentences), strict=True) if p.score >= threshold]
        clock["classify"] = time.perf_counter()
        hits = retriever.search_batch(claims, 5)
        clock["retrieve"] = time.perf_counter()
        pair_claims = [c for c, found in zip(claims, hits, strict=True) for _ in found]
        pair_texts = [evidence_text(h.passage.title, h.passage.text) for found in hits for h in found]
        logits = judge.scorer.log_probs(pair_claims, pair_texts)
        probs = verdict_probabilities(logits, judge.scorer.matrix, judge.params.temperature)
        start = 0
        for found in hits:
            judge.decide(probs[start : start + len(found)])
            start += len(found)
        clock["judge"] = time.perf_counter()
        marks = [started, *clock.values()]
        out = {name: (marks[i + 1] - marks[i]) for i, name in enumerate(clock)}
        out.update(total=clock["judge"] - started, cpu=time.process_time() - cpu)
        out.update(sentences=len(sentences), claims=len(claims))
        out["pairs"] = len(pair_texts)
        return out

    try:
        run(texts[:4])
        runs = sorted((run(texts) for _ in range(repeats)), key=lambda r: r["total"])
    finally:
        models.close()
    mid = runs[len(runs) // 2]
    return {
        "paragraphs": len(texts),
        "sentences": int(mid["sentences"]),
        "claims": int(mid["claims"]),
        "pairs": int(mid["pairs"]),
        "seconds": round(mid["total"], 3),
        "rps": round(len(texts) / mid["total"], 3),
        "cpu_ms_per_paragraph": round(mid["cpu"] * 1000.0 / len(texts), 1),
        "ms_per_paragraph": {
            k: round(mid[k] * 1000.0 / len(texts), 2) for k in ("split", "classify", "retrieve", "judge")
        },
        "layout": layout,
    }


def nli_layouts(texts: list[str], pairs: int = 160) -> dict[str, float]:
    """ms per NLI pair, in one call over ``pairs`` real (claim, passage) pairs, per session layout.

    The same int8 model either way: one session spreading each forward pass over every core (the
    ONNX Runtime default), or single-threaded passes run two at a time (the service's default).
    """
    from api.config import Settings
    from api.prepare import resolve_model_dirs
    from classifier.predict import set_onnx_spinning
    from graph.nli_model import PairModel
    from graph.nli_records import evidence_text
    from graph.splitter import PysbdSplitter
    from retrieval.encoder import load_encoder
    from retrieval.index import EvidenceIndex
    from retrieval.retriever import Retriever

    settings = resolve_model_dirs(Settings())
    manifest = EvidenceIndex.read_manifest(settings.index_dir)
    retriever = Retriever(EvidenceIndex.load(settings.index_dir, load_encoder(manifest["encoder"]["name"])))
    sentences = [s.text for text in texts for s in PysbdSplitter().split(text)][: pairs // 5]
    claims, evidence = [], []
    for sentence, hits in zip(sentences, retriever.search_batch(sentences, 5), strict=True):
        for hit in hits:
            claims.append(sentence)
            evidence.append(evidence_text(hit.passage.title, hit.passage.text))
    nli = settings.pipeline().nli
    layouts: dict[str, dict[str, Any]] = {
        "one_session_all_cores_512_tokens": {"threads": None, "parallel": 1, "batch_tokens": 512},
        "single_thread_passes_two_at_once_256_tokens": {"threads": 1, "parallel": 2, "batch_tokens": 256},
    }
    previous = set_onnx_spinning(False)
    out: dict[str, float] = {}
    try:
        for name, knobs in layouts.items():
            model = PairModel.load(nli.model_copy(update=knobs))
            out[name] = _per_item(lambda m=model: m.log_probs(claims, evidence), len(claims), repeats=3)
            model.close()
    finally:
        set_onnx_spinning(previous)
    return out


def _per_item(call: Any, items: int, repeats: int = 5) -> float:
    call()
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return round((time.perf_counter() - started) * 1000.0 / (repeats * items), 2)


def plot(results: dict[str, Any], path: Path) -> None:
    """Latency percentiles and throughput per concurrency, beside the naive pipeline's throughput, the
    batched ceiling and the 3x target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = ["c1", "c4", "c16"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.25
    for j, key in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        ax1.bar(np.arange(3) + (j - 1) * width, [results[c][key] for c in levels], width, label=key[:3])
    ax1.set_xticks(range(3), levels)
    ax1.set_ylabel("latency (ms)")
    ax1.set_title("/verify latency")
    ax1.legend()
    names = [*levels, "naive", "ceiling"]
    rates = [*(results[c]["rps"] for c in levels), results["naive_rps"], results["batched_ceiling"]["rps"]]
    colors = ["tab:green"] * 3 + ["tab:gray", "tab:blue"]
    ax2.bar(names, rates, color=colors)
    ax2.axhline(3 * results["naive_rps"], color="tab:red", linestyle="--", label="3x naive (target)")
    ax2.set_ylim(0, 1.2 * max(*rates, 3 * results["naive_rps"]))
    ax2.legend(loc="upper left")
    ax2.set_ylabel("paragraphs / s")
    ax2.set_title("throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=os.environ.get("VERIFACT_DATA_DIR", "../shared/data"))
    parser.add_argument("--requests", default="120,160,320", help="requests at concurrency 1, 4 and 16")
    parser.add_argument("--naive-paragraphs", type=int, default=80)
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.requests.split(",")]
    texts = paragraphs(Path(args.data_dir), 200)
    port = _free_port()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="verifact-load-") as tmp:
        proc = start_server(port, Path(tmp) / "traces.db")
        try:
            base = f"http://127.0.0.1:{port}"
            versions = httpx.get(f"{base}/readyz").json().get("versions", {})
            for level, total in zip((1, 4, 16), counts, strict=True):
                results[f"c{level}"] = asyncio.run(drive(base, texts, level, total))
                print(f"c{level}: {json.dumps(results[f'c{level}'])}", flush=True)
            results["peak_rss_mb"] = round(_peak_rss_mb(proc.pid), 1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    # The naive pipeline at its best: ONNX Runtime's own session defaults (idle threads spin, one
    # intra-op thread per core) and the service's (no spinning, one thread a run), the faster one
    # counting.
    from api.config import Settings

    service = Settings()
    variants = {
        "onnx_runtime_defaults": naive_rps(texts[: args.naive_paragraphs], spinning=True, threads=None),
        "service_sessions": naive_rps(
            texts[: args.naive_paragraphs],
            spinning=service.onnx_spinning,
            threads=service.model_threads or None,
        ),
    }
    for name, variant in variants.items():
        print(f"naive ({name}): {json.dumps(variant)}", flush=True)
    naive = max(variants.values(), key=lambda v: float(v["rps"]))
    results["naive_rps"] = naive["rps"]
    results["throughput_ratio_vs_naive"] = round(results["c16"]["rps"] / naive["rps"], 2)
    results["naive"] = naive
    results["naive_variants"] = variants
    ceiling = batched_ceiling(texts[: args.naive_paragraphs])
    print(f"batched ceiling: {json.dumps(ceiling)}", flush=True)
    results["batched_ceiling"] = ceiling
    results["ceiling_ratio_vs_naive"] = round(ceiling["rps"] / naive["rps"], 2)
    # Other session layouts for the same work, so that the ceiling is not one layout's artefact.
    others = {
        "1_thread_2_at_once_128_tokens": {"threads": 1, "parallel": 2, "batch_tokens": 128},
        "1_thread_2_at_once_512_tokens": {"threads": 1, "parallel": 2, "batch_tokens": 512},
        "1_thread_2_at_once_1024_tokens": {"threads": 1, "parallel": 2, "batch_tokens": 1024},
        "2_threads_1_at_once_512_tokens": {"threads": 2, "parallel": 1, "batch_tokens": 512},
    }
    results["ceiling_rps_by_layout"] = {
        name: batched_ceiling(texts[: args.naive_paragraphs], layout=knobs)["rps"]
        for name, knobs in others.items()
    }
    print(f"ceiling by layout: {json.dumps(results['ceiling_rps_by_layout'])}", flush=True)
    results["nli_ms_per_pair_by_layout"] = nli_layouts(texts)
    print(f"NLI by session layout: {json.dumps(results['nli_ms_per_pair_by_layout'])}", flush=True)
    layout = service.pipeline().model_layout()
    results["server_sessions"] = {
        "onnx_spinning": service.onnx_spinning,
        # As the sessions load them (0: one per core).
        "model_threads": layout["threads"],
        "model_parallel": layout["parallel"],
        "batch_tokens": layout["batch_tokens"],
        "blocking_threads": service.blocking_threads,
    }
    results["targets"] = {"c1_p50_ms": 150, "c1_p95_ms": 300, "throughput_ratio_vs_naive": 3}
    results["met"] = {
        "c1_p50": results["c1"]["p50_ms"] <= 150,
        "c1_p95": results["c1"]["p95_ms"] <= 300,
        "throughput": results["throughput_ratio_vs_naive"] >= 3,
    }
    results["models"] = {k: versions.get(k) for k in ("classifier", "nli", "index")}
    results["machine"] = machine()
    rows = [
        [c, results[c]["requests"], results[c]["p50_ms"], results[c]["p95_ms"], results[c]["p99_ms"],
         results[c]["rps"], results[c]["errors"]]
        for c in ("c1", "c4", "c16")
    ]  # fmt: skip
    table = markdown_table(["concurrency", "requests", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors"], rows)
    md = (
        "# Service load: POST /verify, local NLI judge, 5-sentence paragraphs of real data\n\n"
        f"{table}\n\nNaive sequential pipeline: {naive['rps']} paragraphs/s "
        f"({naive['paragraphs']} paragraphs in {naive['seconds']} s, the faster of "
        + ", ".join(
            f"{v['rps']} with spinning {'on' if v['onnx_spinning'] else 'off'} and {v['onnx_threads']} "
            "intra-op thread(s)"
            for v in variants.values()
        )
        + "). "
        f"Throughput at concurrency 16 vs naive: **{results['throughput_ratio_vs_naive']}x** "
        "(target >= 3x).\n"
        f"Batched ceiling: the same model work on the naive run's {ceiling['paragraphs']} paragraphs, "
        "every stage as one call over all of them in the server's session layout, with no HTTP, graph, "
        f"traces or batch waits: {ceiling['rps']} paragraphs/s, **{results['ceiling_ratio_vs_naive']}x** "
        "the naive pipeline: a server running these models in this layout on this CPU cannot beat "
        f"that. Wall time per paragraph by stage (ms): {json.dumps(ceiling['ms_per_paragraph'])}. CPU "
        f"per paragraph: {ceiling['cpu_ms_per_paragraph']} ms batched, "
        f"{naive['cpu_ms_per_paragraph']} ms naive. The ceiling in other session layouts (paragraphs/s): "
        f"{json.dumps(results['ceiling_rps_by_layout'])}.\n"
        "Model cost per item on this CPU, alone and in small batches (ms; nli_batch_5 is one claim's "
        f"5 passages padded to the longest): {json.dumps(naive['ms_per_item'])}.\n"
        f"Server sessions: {json.dumps(results['server_sessions'])}. NLI cost per pair in one call "
        f"over 160 real pairs, by session layout (ms): {json.dumps(results['nli_ms_per_pair_by_layout'])}.\n"
        f"Server peak RSS: {results['peak_rss_mb']} MiB. Targets at concurrency 1: p50 <= 150 ms "
        f"({'met' if results['met']['c1_p50'] else 'missed'}), p95 <= 300 ms "
        f"({'met' if results['met']['c1_p95'] else 'missed'}).\n"
    )
    print(md)
    save("service_load", results, md)
    plot(results, RESULTS / "service_load.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
