"""The trace viewer in a real browser: verify live, open runs, read evidence and prompts, filter, XSS."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.pipeline_fakes import KeywordScorer
from tests.viewer.conftest import IMG_PAYLOAD, SCRIPT_PAYLOAD, SYSTEM_PROMPT, LiveViewer, ViewerPage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARAGRAPH = (
    "Global temperatures rose 1.1 degrees since 1880. Thank you all for coming tonight. "
    "Unemployment fell to 3.5 percent in 2019. Arctic sea ice reached a record low in 2012. "
    "The moon has never been visited, with 0 landings. What a wonderful crowd!"
)
"""Four claims (c0 and c2 supported, c3 supported with a disagreeing second opinion, c4 refuted)
between two chatty sentences."""
NODES = ["split", "detect", "retrieve", "judge", "report"]
DONE = re.compile(r"\bdone\b")
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "viewer.png"
"""The README's picture of the viewer, rewritten when VERIFACT_UPDATE_DOCS_SCREENSHOT=1."""

# Records, in the page, each diagram node the moment it gets the "done" class, with its count.
_WATCH_DONE = """() => {
  window.__done = [];
  const seen = new Set();
  new MutationObserver((records) => {
    for (const r of records) {
      const g = r.target;
      const node = g.dataset && g.dataset.node;
      if (g.classList.contains("gnode") && g.classList.contains("done") && !seen.has(node)) {
        seen.add(node);
        window.__done.push(node);
      }
    }
  }).observe(document.getElementById("main"), { subtree: true, attributeFilter: ["class"] });
}"""


def _no_problems(vp: ViewerPage) -> None:
    assert vp.problems() == []


def _open_run(vp: ViewerPage, trace_id: str, claims: int) -> None:
    vp.goto(f"#/runs/{trace_id}")
    expect(vp.page.locator(".claim-card")).to_have_count(claims)


def test_the_server_sends_a_strict_csp_and_serves_the_viewer(live_viewer: LiveViewer) -> None:
    page = httpx.get(f"{live_viewer.url}/viewer")
    assert page.status_code == 200
    assert '<script type="module" src="/viewer/static/app.js"></script>' in page.text
    csp = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'"
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"

    script = httpx.get(f"{live_viewer.url}/viewer/static/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"

    docs = httpx.get(f"{live_viewer.url}/docs")
    assert "script-src 'self' 'unsafe-inline';" in docs.headers["content-security-policy"]
    assert (
        docs.headers["content-security-policy"].replace(" 'unsafe-inline'", "")
        == page.headers["content-security-policy"]
    )
    assert "unsafe-inline" not in httpx.get(f"{live_viewer.url}/traces").headers["content-security-policy"]

    root = httpx.get(f"{live_viewer.url}/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/viewer"

    graph = httpx.get(f"{live_viewer.url}/graph").json()
    assert graph["nodes"] == NODES
    assert {"source": "detect", "target": "report", "conditional": True} in graph["edges"]
    assert {"source": "__start__", "target": "split", "conditional": False} in graph["edges"]


def test_verify_page_lights_the_nodes_as_they_finish_then_opens_the_run(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    page = viewer_page.page
    viewer_page.goto("#/verify")
    expect(page.locator('.gnode[data-node="split"]')).to_be_visible()
    page.evaluate(_WATCH_DONE)
    live_viewer.judge.delay_s = 1.5  # each judge call waits, so the run is caught half done
    try:
        page.get_by_label("Text to check").fill(PARAGRAPH)
        page.get_by_label("Evidence per claim (top_k)").fill("3")
        page.get_by_role("button", name="Verify", exact=True).click()

        retrieve = page.locator('.gnode[data-node="retrieve"]')
        judge = page.locator('.gnode[data-node="judge"]')
        expect(retrieve).to_have_class(DONE)
        assert "done" not in (judge.get_attribute("class") or "").split()
        expect(judge).to_have_class(re.compile(r"\brunning\b"))
        expect(page.get_by_role("button", name="Cancel")).to_be_visible()
        viewer_page.screenshot("verify-progress.png")

        expect(page).to_have_url(re.compile(r"#/runs/[0-9a-f]{32}$"), timeout=20_000)
    finally:
        live_viewer.judge.delay_s = 0.0
    expect(page.locator(".claim-card")).to_have_count(4)
    expect(page.locator("h1")).to_contain_text("Run")
    assert page.evaluate("window.__done") == NODES
    # The run page draws its own diagram: the path lit, the fan-out counted.
    expect(page.locator('.gnode.on-path[data-node="judge"] .gnode-meta')).to_contain_text("×4")
    viewer_page.screenshot("verify-result.png")
    _no_problems(viewer_page)


def test_a_run_opens_from_the_runs_list(viewer_page: ViewerPage, live_viewer: LiveViewer) -> None:
    result = live_viewer.verify("Zanzibar clove exports rose 12 percent in 2018. Lovely weather.")
    page = viewer_page.page
    viewer_page.goto("#/runs")
    row = page.locator(".run-row", has_text="Zanzibar clove exports")
    expect(row).to_have_count(1)
    expect(row.locator(".col-status")).to_have_text(result["status"])
    expect(row.locator(".chip")).to_have_count(1)
    row.get_by_role("link").click()

    expect(page).to_have_url(re.compile(f"#/runs/{result['trace_id']}$"))
    expect(page.locator("h1")).to_contain_text(result["trace_id"][:8])
    expect(page.locator(".claim-card")).to_have_count(len(result["claims"]))
    expect(page.locator(".doc")).to_have_text(re.compile("Lovely weather"))
    expect(page.locator(".nav-link[aria-current=page]")).to_have_text("Runs")
    _no_problems(viewer_page)


def test_clicking_a_claim_shows_its_evidence_with_the_cited_passages_marked(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    result = live_viewer.verify(PARAGRAPH, top_k=3)
    claim = next(c for c in result["claims"] if c["claim_id"] == "c2")
    page = viewer_page.page
    _open_run(viewer_page, result["trace_id"], 4)
    card = page.locator('.claim-card[data-claim="c2"]')
    passages = card.locator(".passage")
    expect(passages.first).to_be_hidden()  # more than three claims: evidence starts collapsed

    page.locator('.doc .sent[data-claim="c2"]').click()
    expect(card).to_have_class(re.compile(r"\bis-selected\b"))
    expect(card).to_be_in_viewport()
    expect(passages).to_have_count(3)
    expect(passages.first).to_be_visible()
    cited = card.locator(".passage.is-cited")
    expect(cited).to_have_count(len(claim["citations"]))
    assert [cited.nth(i).get_attribute("data-id") for i in range(cited.count())] == claim["citations"]
    expect(cited.first.locator(".badge-cited")).to_have_text("★ cited")
    expect(card.locator(".passage:not(.is-cited) .badge-cited")).to_have_count(0)
    expect(card.locator(".passage").first.locator(".scores")).to_contain_text("fused")
    assert page.url.endswith("?claim=c2")

    # The rationale's citation ids link to their passages.
    cite = card.locator(".rationale a.cite").first
    expect(cite).to_have_text(claim["citations"][0])
    cite.click()
    expect(cited.first).to_be_focused()
    # The second opinion and its agreement are on the card that has one that disagrees.
    expect(page.locator('.claim-card[data-claim="c3"] .agreement')).to_have_text("≠ disagrees")
    expect(page.locator('.claim-card[data-claim="c4"] .badge.verdict').first).to_contain_text("Refuted")
    viewer_page.screenshot("run.png")
    _no_problems(viewer_page)


def test_a_sentence_shows_its_score_against_the_threshold_on_hover_and_on_focus(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    result = live_viewer.verify(PARAGRAPH, top_k=3)
    page = viewer_page.page
    _open_run(viewer_page, result["trace_id"], 4)
    tip = page.locator("#sentence-tip")
    expect(tip).to_be_hidden()

    page.locator('.doc .sent[data-index="0"]').hover()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("check-worthiness 0.990 ≥ threshold 0.500")
    expect(tip).to_contain_text("Checked as claim c0: Supported")

    # Keyboard: one tab stop into the text, arrows move between sentences.
    page.mouse.move(0, 0)
    page.locator('.doc .sent[data-index="0"]').focus()
    page.keyboard.press("ArrowRight")
    second = page.locator('.doc .sent[data-index="1"]')
    expect(second).to_be_focused()
    expect(second).to_have_attribute("aria-describedby", "sentence-tip")
    expect(tip).to_contain_text("check-worthiness 0.200 < threshold 0.500")
    expect(tip).to_contain_text("Not check-worthy")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(page.locator('.claim-card[data-claim="c2"]')).to_be_focused()
    _no_problems(viewer_page)


def test_a_node_panel_shows_the_judges_prompt_reply_and_usage(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    result = live_viewer.verify(PARAGRAPH, top_k=3)
    page = viewer_page.page
    _open_run(viewer_page, result["trace_id"], 4)
    panel = page.locator('details.node-run[data-node="judge"][data-claim="c0"]')
    expect(panel).not_to_have_attribute("open", "")
    expect(page.locator(".node-run .panel-body")).to_have_count(0)  # built on first open

    page.locator('.claim-card[data-claim="c0"]').get_by_role("button", name="judge run").click()
    expect(panel).to_have_attribute("open", "")
    messages = panel.locator(".message")
    expect(messages).to_have_count(2)
    expect(messages.nth(0).locator(".message-role")).to_have_text("system")
    expect(messages.nth(0).locator(".message-content")).to_have_text(SYSTEM_PROMPT)
    expect(messages.nth(1).locator(".message-content")).to_contain_text(
        '<passage id="d1">Global temperatures rose 1.1 degrees since 1880.</passage>'
    )
    reply = json.loads(panel.locator(".raw-reply").inner_text())
    assert reply["label"] == "SUPPORTED" and reply["citations"] == ["d1"]
    expect(panel.locator(".usage")).to_contain_text("prompt_tokens")
    expect(panel.locator('.panel-section[data-section="attempts"]')).to_contain_text("json_schema")

    detect = page.locator('details.node-run[data-node="detect"]')
    detect.locator("summary").click()
    decisions = detect.locator("table.records tbody tr")
    expect(decisions).to_have_count(6)
    expect(decisions.nth(1)).to_contain_text("score 0.200 < threshold 0.500")
    _no_problems(viewer_page)


def test_the_trace_copies_and_exports_as_json(viewer_page: ViewerPage, live_viewer: LiveViewer) -> None:
    result = live_viewer.verify(PARAGRAPH, top_k=3)
    page = viewer_page.page
    _open_run(viewer_page, result["trace_id"], 4)
    page.get_by_role("button", name="Copy JSON").click()
    expect(page.locator(".action-status")).to_have_text("Copied")
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert copied["header"]["trace_id"] == result["trace_id"]
    assert len(copied["events"]) == 11

    with page.expect_download() as download:
        page.get_by_role("button", name="Export .json").click()
    assert download.value.suggested_filename == f"verifact-trace-{result['trace_id']}.json"
    exported = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert exported == copied
    _no_problems(viewer_page)


def test_the_runs_list_filters_by_verdict_and_by_text(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    refuted = live_viewer.verify("Quokka counts never fell 3.5 percent in 2019.")
    live_viewer.verify("Quokka note: global temperatures rose 1.1 degrees since 1880.")
    live_viewer.verify("Quokka sightings rose 9 percent in 2015.")
    live_viewer.verify("Platypus eggs never hatched in 0 zoos.")
    page = viewer_page.page
    rows = page.locator(".run-row")

    viewer_page.goto("#/runs")
    page.get_by_label("Text contains").fill("quokka")
    expect(rows).to_have_count(3)
    for text in rows.locator(".snippet").all_inner_texts():
        assert "quokka" in text.lower()

    page.get_by_label("Verdict").select_option("REFUTED")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", refuted["trace_id"])
    expect(rows.first.locator(".chip.v-refuted")).to_have_text("✗ 1 refuted")
    assert page.url.endswith("#/runs?verdict=REFUTED&q=quokka")

    page.get_by_label("Text contains").fill("")
    expect(rows.filter(has_text="Platypus eggs never hatched")).to_have_count(1)
    assert rows.count() >= 2
    assert rows.count() == rows.filter(has=page.locator(".chip.v-refuted")).count()

    page.get_by_label("Text contains").fill("no run says this")
    expect(rows).to_have_count(0)
    expect(page.locator(".empty")).to_have_text("No run matches these filters.")

    # The filters live in the address: a reload keeps them.
    page.goto(f"{live_viewer.url}/viewer#/runs?verdict=REFUTED&q=quokka")
    expect(rows).to_have_count(1)
    expect(page.get_by_label("Verdict")).to_have_value("REFUTED")
    _no_problems(viewer_page)


def test_the_runs_list_pages_with_more(viewer_page: ViewerPage, live_viewer: LiveViewer) -> None:
    for i in range(27):
        live_viewer.verify(f"Wombat burrows rose {i} percent in {1990 + i}.")
    page = viewer_page.page
    viewer_page.goto("#/runs?q=wombat")
    rows = page.locator(".run-row")
    expect(rows).to_have_count(25)
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    more.click()
    expect(rows).to_have_count(27)
    expect(more).to_be_hidden()
    # Newest first, without repeats across pages.
    ids = [rows.nth(i).get_attribute("data-trace-id") for i in range(27)]
    assert len(set(ids)) == 27
    assert ids[0] == live_viewer.runs[-1]
    _no_problems(viewer_page)


def test_script_payloads_from_the_input_documents_and_model_show_as_text_and_never_run(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    text = f"Sea level rose 20 centimetres {SCRIPT_PAYLOAD} since 1900 {IMG_PAYLOAD}. Hello there."
    result = live_viewer.verify(text)
    assert any(e["id"] == "x1" for c in result["claims"] for e in c["evidence"])
    page = viewer_page.page
    _open_run(viewer_page, result["trace_id"], 1)
    card = page.locator(".claim-card").first
    card.locator(".evidence summary").click()
    judge_panel = page.locator('details.node-run[data-node="judge"]')
    judge_panel.locator("summary").click()

    expect(page.locator(".doc")).to_contain_text(SCRIPT_PAYLOAD)
    expect(page.locator(".doc")).to_contain_text(IMG_PAYLOAD)
    expect(card.locator(".claim-text")).to_contain_text(SCRIPT_PAYLOAD)
    xss = card.locator('.passage[data-id="x1"]')
    expect(xss.locator(".passage-text")).to_contain_text(SCRIPT_PAYLOAD)
    expect(xss.locator(".passage-text")).to_contain_text(IMG_PAYLOAD)
    expect(xss.locator(".ptitle")).to_have_text(f"Tides {IMG_PAYLOAD}")
    expect(xss.locator(".passage-source")).to_have_text("<b>harbour records</b>")
    expect(xss.locator("a")).to_have_count(0)  # its javascript: URL is not made a link
    expect(card.locator(".rationale")).to_contain_text(SCRIPT_PAYLOAD)  # the model quoted it
    expect(judge_panel.locator(".message-content").nth(1)).to_contain_text(SCRIPT_PAYLOAD)
    expect(page.locator("main script, main img, [onerror]")).to_have_count(0)
    viewer_page.screenshot("xss-run.png", full_page=True)

    viewer_page.goto("#/runs?q=centimetres")
    snippet = page.locator(f'.run-row[data-trace-id="{result["trace_id"]}"] .snippet')
    expect(snippet).to_contain_text(SCRIPT_PAYLOAD)
    expect(page.locator("main script, main img, [onerror]")).to_have_count(0)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    _no_problems(viewer_page)


def test_a_run_with_a_hundred_claims_renders_quickly(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    text = " ".join(f"Measure {i} rose {i} percent in {1900 + i}." for i in range(100))
    result = live_viewer.verify(text, max_claims=100, top_k=3)
    assert result["summary"]["checked"] == 100
    page = viewer_page.page

    started = time.monotonic()
    _open_run(viewer_page, result["trace_id"], 100)
    elapsed = time.monotonic() - started
    render_ms = int(page.locator("#main").get_attribute("data-render-ms") or "0")
    assert elapsed < 10.0, f"100 claims took {elapsed:.1f} s to show"
    assert render_ms < 2000, f"rendering 100 claims took {render_ms} ms"
    expect(page.locator(".tl-row")).to_have_count(203)
    expect(page.locator("details.node-run")).to_have_count(203)
    expect(page.locator("details.node-run[open], .panel-body")).to_have_count(0)
    expect(page.locator(".passage")).to_have_count(0)  # evidence is built when a card opens

    page.locator('.doc .sent[data-claim="c99"]').click()
    last = page.locator('.claim-card[data-claim="c99"]')
    expect(last).to_be_in_viewport()
    expect(last.locator(".passage")).to_have_count(3)
    filters = page.get_by_role("group", name="Show claims")
    filters.get_by_role("button", name=re.compile("^Not enough info")).click()
    expect(page.locator(".claim-card:visible")).to_have_count(result["summary"]["not_enough_info"])
    viewer_page.screenshot("run-100-claims.png")
    _no_problems(viewer_page)


def test_a_failed_run_shows_its_error_and_links_to_its_trace(
    viewer_page: ViewerPage, live_viewer: LiveViewer
) -> None:
    scorer = live_viewer.context.scorer
    assert isinstance(scorer, KeywordScorer)
    page = viewer_page.page
    viewer_page.goto("#/verify")
    page.get_by_label("Text to check").fill("Rainfall rose 8 percent in 2020. Nice day.")
    status = page.locator(".verify-status")
    scorer.fail = RuntimeError("the classifier broke")
    try:
        page.get_by_role("button", name="Verify", exact=True).click()
        expect(status).to_contain_text(
            "The run failed: the verification run failed: RuntimeError: the classifier broke"
        )
    finally:
        scorer.fail = None
    expect(page.locator('.gnode[data-node="split"]')).to_have_class(DONE)
    expect(page.locator('.gnode[data-node="detect"]')).not_to_have_class(DONE)
    expect(page.get_by_role("button", name="Verify", exact=True)).to_be_enabled()

    status.get_by_role("link", name="see its trace").click()
    expect(page.locator(".page-head .badge.status")).to_have_text("error")
    expect(page.locator(".page-head .notice-error")).to_contain_text("the classifier broke")
    expect(page.locator(".cards .empty")).to_have_text("The run failed before any claim was judged.")
    expect(page.locator(".doc")).to_have_text("Rainfall rose 8 percent in 2020. Nice day.")
    _no_problems(viewer_page)


def test_the_run_page_as_the_readme_shows_it(viewer_page: ViewerPage, live_viewer: LiveViewer) -> None:
    result = live_viewer.verify(PARAGRAPH, top_k=3)
    page = viewer_page.page
    page.set_viewport_size({"width": 1280, "height": 1000})
    viewer_page.goto(f"#/runs/{result['trace_id']}?claim=c3")
    expect(page.locator('.claim-card[data-claim="c3"]')).to_have_class(re.compile(r"\bis-selected\b"))
    # wait_for_function polls with eval, which the page's CSP forbids: scroll and read back at once.
    assert page.evaluate("() => { window.scrollTo(0, 0); return window.scrollY; }") == 0
    page.locator('.doc .sent[data-index="2"]').hover()
    expect(page.locator("#sentence-tip")).to_contain_text("Sentence 3 of 6")
    shot = viewer_page.screenshot("readme.png")
    assert shot.stat().st_size < 300_000
    if os.environ.get("VERIFACT_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    _no_problems(viewer_page)


def test_the_api_docs_render_offline_in_the_browser(viewer_page: ViewerPage, live_viewer: LiveViewer) -> None:
    page = viewer_page.page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{live_viewer.url}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/verify/stream")).to_have_count(1)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert page.locator("text=Unable to render this definition").count() == 0
    assert all(url.startswith(live_viewer.url) for url in requests), requests
