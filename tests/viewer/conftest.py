"""Fixtures for the viewer's browser tests: the app on a real uvicorn server, and headless Chromium."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from api.config import Settings
from api.main import create_app
from graph.context import Context
from graph.report import EvidenceHit
from graph.schemas import AttemptRecord, ChatMessage, EvidencePassage, Judgement, JudgeTrace
from graph.services import LoadedServices
from graph.splitter import PysbdSplitter
from graph.tracestore import open_trace_store
from tests.live_server import serve
from tests.pipeline_fakes import DOCS, KeywordScorer, OverlapSearcher, ScriptedJudge

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous waits: this suite shares two cores with benchmarks now and then.
expect.set_options(timeout=10_000)
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "viewer"
"""Screenshots of the pages under test (gitignored)."""

SCRIPT_PAYLOAD = "<script>window.__pwned=1</script>"
IMG_PAYLOAD = '<img src=x onerror="window.__pwned=2">'
XSS_DOC = EvidenceHit(
    id="x1",
    title=f"Tides {IMG_PAYLOAD}",
    text=f"Sea level rose 20 centimetres {SCRIPT_PAYLOAD} since 1900 {IMG_PAYLOAD} along the coast.",
    source="<b>harbour records</b>",
    url="javascript:window.__pwned=4",
    rank=0,
    score=0,
)
"""A document whose title, text, source and URL carry script payloads."""
EXTRA_DOCS = [
    EvidenceHit(
        id="d5",
        title="Population",
        text="The world population passed eight billion people in November 2022.",
        source="un.org",
        url="https://www.un.org/en/global-issues/population",
        rank=0,
        score=0,
    ),
]

SYSTEM_PROMPT = (
    "You are a careful fact-checker. Judge the claim only against the numbered passages. "
    'Answer with one JSON object: {"label", "confidence", "rationale", "citations"}.'
)


def _user_prompt(claim: str, evidence: Sequence[EvidencePassage]) -> str:
    # Angle-bracket delimiters on purpose: the viewer must show them as text.
    passages = "\n".join(f'<passage id="{p.id}">{p.text}</passage>' for p in evidence)
    return f"Claim: {claim}\n\nPassages:\n{passages}"


class PromptJudge:
    """An LLM-like judge: the scripted judge's labels with the prompt, raw reply, usage and attempts
    an LLM judge records, and a second opinion that disagrees on claims about ice."""

    def __init__(self) -> None:
        self._inner = ScriptedJudge("llm-fake")
        self._nli = ScriptedJudge("nli-fake")
        self.delay_s = 0.0
        """Seconds each call sleeps, so a browser can watch the nodes of a run finish one by one."""

    @property
    def name(self) -> str:
        return "llm-fake"

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        first = (await self._inner.judge(claim, evidence)).verdict
        second = (await self._nli.judge(claim, evidence)).verdict
        if "ice" in claim.lower().split():
            second = second.model_copy(
                update={
                    "label": "REFUTED",
                    "confidence": 0.66,
                    "rationale": "The pair model reads a contradiction.",
                }
            )
        verdict = first
        if first.citations:
            best = next(p for p in evidence if p.id == first.citations[0])
            rationale = f"Passage [{best.id}] says “{best.text[:90]}”; {best.id} matches the claim."
            verdict = first.model_copy(update={"rationale": rationale})
        agreement = None if first.error or second.error else first.label == second.label
        verdict = verdict.model_copy(update={"second_opinion": second, "agreement": agreement})
        messages = (
            ChatMessage(role="system", content=SYSTEM_PROMPT),
            ChatMessage(role="user", content=_user_prompt(claim, evidence)),
        )
        reply = json.dumps(
            {
                "label": verdict.label,
                "confidence": verdict.confidence,
                "rationale": verdict.rationale,
                "citations": list(verdict.citations),
            }
        )
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        trace = JudgeTrace(
            judge=self.name,
            model="fake-llm-1",
            prompt_version="v-test",
            prompt_hash="0" * 64,
            messages=messages,
            raw_reply=reply,
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": 31,
                "total_tokens": prompt_tokens + 31,
            },
            latency_ms=12.5,
            attempts=1,
            mode="json_schema",
            attempt_log=(
                AttemptRecord(
                    number=1, mode="json_schema", outcome="ok", status=200, raw_reply=reply, latency_ms=12.5
                ),
            ),
            second_opinion=JudgeTrace(judge="nli-fake", model="scripted"),
        )
        return Judgement(verdict=verdict, trace=trace)


@dataclass
class LiveViewer:
    """The app on a uvicorn server, with the fakes it runs with."""

    url: str
    context: Context
    """The fakes it runs with (a test may tell the scorer to fail)."""
    judge: PromptJudge
    runs: list[str] = field(default_factory=list)
    """Trace ids of the runs `verify` made, oldest first."""

    def verify(self, text: str, **options: Any) -> dict[str, Any]:
        """POST /verify; the result as JSON."""
        response = httpx.post(f"{self.url}/verify", json={"text": text, **options}, timeout=60)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        self.runs.append(result["trace_id"])
        return result


def viewer_context(store: Path, judge: PromptJudge) -> Context:
    """Fakes at every seam; the LLM-like judge answers "auto" and "llm"; a real SQLite trace store."""
    return Context(
        splitter=PysbdSplitter(),
        scorer=KeywordScorer(),
        searcher=OverlapSearcher(docs=[*DOCS, *EXTRA_DOCS, XSS_DOC]),
        judges={"nli": ScriptedJudge("nli-fake"), "llm": judge},
        trace_store=open_trace_store(str(store)),
        versions={"verifact": "test", "prompt": {"hash": "abc"}},
        max_concurrency=4,
    )


@pytest.fixture(scope="module")
def live_viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveViewer]:
    """One real server per module on a port the OS picked (bound before uvicorn starts)."""
    tmp = tmp_path_factory.mktemp("viewer")
    judge = PromptJudge()
    context = viewer_context(tmp / "traces.db", judge)
    settings = Settings(_env_file=None, trace_db=str(tmp / "unused.db"))
    with serve(create_app(settings, services=LoadedServices(context, []))) as url:
        yield LiveViewer(url, context, judge)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless. Missing Chromium fails the tests: CI installs it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the viewer's browser tests need Debian's Chromium "
            "(apt-get install -y chromium); Playwright's own browser download is not used"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class ViewerPage:
    """A browser page on the viewer, with the console errors and CSP violations it met."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)

    def goto(self, route: str) -> None:
        """Open the viewer at a hash route ("#/runs")."""
        self.page.goto(f"{self.base}/viewer{route}")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and CSP violations so far."""
        violations = self.page.evaluate("window.__cspViolations || []")
        return [*self.errors, *(f"CSP violation: {v}" for v in violations)]

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        """Save a screenshot under artifacts/viewer/."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


# Runs before the page's own scripts: records every CSP violation the page meets.
_CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def viewer_page(browser: Any, live_viewer: LiveViewer) -> Iterator[ViewerPage]:
    """A fresh browser context and page (1280x900, light scheme, clipboard allowed)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_viewer.url)
    context.add_init_script(_CSP_RECORDER)
    page = context.new_page()
    page.set_default_timeout(15_000)
    vp = ViewerPage(page, live_viewer.url)
    page.on("console", lambda msg: vp.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: vp.errors.append(f"uncaught: {exc}"))
    try:
        yield vp
    finally:
        context.close()
