"""The verdict benchmark's LLM part: which judge (an endpoint, the packaged Gemma, or none), and its run."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from bench.verdict_metrics import judgement_stats, verdict_metrics
from graph.judges import Judge
from graph.nli_records import ClaimRecord
from graph.schemas import EvidencePassage, Judgement

NO_ENDPOINT = "skipped: no endpoint (set VERIFACT_LLM_BASE_URL and VERIFACT_LLM_MODEL)"
GEMMA_DEFAULT_LIMIT = 30
"""Claims per set for ``--gemma`` without ``--llm-limit``: one thread takes about 25 s per claim."""
GEMMA_NOTE = (
    "the floor: Gemma 3 270M (Q4_K_M, llama.cpp on CPU) is far too weak to judge claims; it shows "
    "what the protocol yields with the smallest model, not what an LLM judge can do"
)


def sample(claims: Sequence[ClaimRecord], limit: int | None) -> list[ClaimRecord]:
    """`limit` claims in a fixed order that does not follow the file (lowest md5 of the id), or all."""
    if limit is None or limit >= len(claims):
        return list(claims)
    return sorted(claims, key=lambda c: hashlib.md5(c.claim_id.encode("utf-8")).hexdigest())[:limit]


def passages(claim: ClaimRecord) -> list[EvidencePassage]:
    """A claim's evidence as the judges take it."""
    return [EvidencePassage(id=e.id, text=e.text, title=e.title) for e in claim.evidences]


async def judge_claims(judge: Judge, claims: Sequence[ClaimRecord]) -> list[Judgement]:
    """Judge every claim; the judge bounds its own concurrency."""
    return list(await asyncio.gather(*(judge.judge(c.claim, passages(c)) for c in claims)))


async def judge_sets(
    judge: Judge, sets: dict[str, list[ClaimRecord]]
) -> dict[str, tuple[list[Judgement], float]]:
    """Each set's judgements and wall seconds, all in one event loop.

    An `LLMJudge` is bound to the loop it first ran on, so the sets share one; the judge is closed at
    the end, since the benchmark built it.
    """
    out: dict[str, tuple[list[Judgement], float]] = {}
    try:
        for name, claims in sets.items():
            started = time.perf_counter()
            judgements = await judge_claims(judge, claims)
            out[name] = (judgements, time.perf_counter() - started)
    finally:
        close = getattr(judge, "aclose", None)
        if close is not None:
            await close()
    return out


def llm_block(judge: Judge, sets: dict[str, list[ClaimRecord]]) -> dict[str, Any]:
    """The LLM judge on each set, plus the metrics pooled over all of them at the top level."""
    out: dict[str, Any] = {}
    gold: list[str] = []
    labels: list[str] = []
    confidence: list[float] = []
    for name, (judgements, seconds) in asyncio.run(judge_sets(judge, sets)).items():
        set_gold = [c.claim_label for c in sets[name]]
        set_labels = [j.verdict.label for j in judgements]
        set_confidence = [j.verdict.confidence for j in judgements]
        out[name] = {
            **verdict_metrics(set_gold, set_labels, set_confidence),
            "seconds": round(seconds, 2),
            "run": judgement_stats(judgements),
        }
        gold += set_gold
        labels += set_labels
        confidence += set_confidence
    pooled = verdict_metrics(gold, labels, confidence)
    out.update({k: pooled[k] for k in ("n", "accuracy", "macro_f1", "ece", "majority_accuracy")})
    out["pooled_over"] = list(sets)
    return out


def choose_llm(
    ns: argparse.Namespace, stack: ExitStack, environ: Mapping[str, str]
) -> tuple[Judge, dict[str, Any]] | str:
    """The LLM judge: the packaged Gemma server with ``--gemma``, else the endpoint named by `environ`
    (``VERIFACT_LLM_BASE_URL``, ``VERIFACT_LLM_MODEL``, optional ``VERIFACT_LLM_API_KEY``), else the
    line saying why there is none. A started server is stopped when `stack` closes.

    Args:
        ns: The benchmark's options (``gemma``, ``gemma_ctx``, ``gemma_threads``, ``llm_*``).
        stack: Owns the Gemma server's lifetime.
        environ: The environment, as read by the benchmark's ``main``.
    """
    from graph.llm_judge import LLMJudge
    from graph.llm_settings import LLMSettings

    common: dict[str, Any] = {"timeout_s": ns.llm_timeout, "max_tokens": ns.llm_max_tokens, "max_retries": 1}
    if ns.gemma:
        from bench.llama_server import GEMMA_JUDGE_SETTINGS, LlamaServer

        server = stack.enter_context(LlamaServer.gemma(n_ctx=ns.gemma_ctx, n_threads=ns.gemma_threads))
        # The prompt must fit the small context: the rules and five passages of 400 characters do.
        settings = LLMSettings(
            base_url=server.base_url,
            model=server.model_name,
            max_passage_chars=400,
            **GEMMA_JUDGE_SETTINGS,
            **common,
        )
        info: dict[str, Any] = {
            "model": server.model_name,
            "server": "llama-cpp-python (packaged GGUF)",
            "note": GEMMA_NOTE,
            "startup_s": round(server.startup_s, 1),
        }
    else:
        base_url, model = environ.get("VERIFACT_LLM_BASE_URL"), environ.get("VERIFACT_LLM_MODEL")
        if not (base_url and model):
            return NO_ENDPOINT
        settings = LLMSettings(
            base_url=base_url,
            model=model,
            api_key=environ.get("VERIFACT_LLM_API_KEY", ""),
            max_concurrency=ns.llm_concurrency,
            **common,
        )
        info = {"model": model, "server": base_url}
    info["settings"] = settings.model_dump(exclude={"base_url"})
    return LLMJudge(settings), info
