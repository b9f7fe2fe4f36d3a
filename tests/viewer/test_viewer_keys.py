"""The viewer on a server with API keys: it asks for a key on a 401, sends it, and can forget it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from pydantic import SecretStr

from api.config import Settings
from api.main import create_app
from graph.services import LoadedServices
from tests.live_server import serve
from tests.viewer.conftest import _CSP_RECORDER, PromptJudge, ViewerPage, viewer_context

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALICE = "alice-7Hq2VbX9kLm4Pz8R"
BOB = "bob-Np3Wc6Yt1Rs5Dg0J"
ALICE_TEXT = "Arctic sea ice reached a record low in 2012."
BOB_TEXT = "Unemployment fell to 3.5 percent in 2019."
VIEWER_JS = Path(__file__).resolve().parents[2] / "api" / "static" / "viewer"


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server with keys for Alice and Bob, each with one run of their own."""
    tmp = tmp_path_factory.mktemp("keyed-viewer")
    context = viewer_context(tmp / "traces.db", PromptJudge())
    settings = Settings(
        _env_file=None, trace_db=str(tmp / "unused.db"), api_keys=SecretStr(f"alice:{ALICE},bob:{BOB}")
    )
    with serve(create_app(settings, services=LoadedServices(context, []))) as url:
        for key, text in ((ALICE, ALICE_TEXT), (BOB, BOB_TEXT)):
            auth = {"Authorization": f"Bearer {key}"}
            httpx.post(f"{url}/verify", json={"text": text}, headers=auth, timeout=60).raise_for_status()
        yield url


@pytest.fixture
def keyed_page(browser: Any, keyed_url: str) -> Iterator[ViewerPage]:
    """A fresh browser page on the keyed server."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.add_init_script(_CSP_RECORDER)
    page = context.new_page()
    page.set_default_timeout(15_000)
    vp = ViewerPage(page, keyed_url)
    page.on("console", lambda msg: vp.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: vp.errors.append(f"uncaught: {exc}"))
    try:
        yield vp
    finally:
        context.close()


def test_the_viewer_asks_for_a_key_sends_it_shows_that_keys_runs_and_forgets_it(
    keyed_page: ViewerPage,
) -> None:
    page = keyed_page.page
    keyed_page.goto("#/runs")

    expect(page.locator("h1")).to_have_text("API key needed")
    key_input = page.get_by_label("API key")
    expect(key_input).to_have_attribute("type", "password")
    key_input.fill("not-the-key-000000000")
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_role("alert")).to_contain_text("did not accept")

    page.get_by_label("API key").fill(ALICE)
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_text(ALICE_TEXT).first).to_be_visible()
    expect(page.get_by_text(BOB_TEXT)).to_have_count(0)  # the server shows each key its own runs
    assert page.evaluate("sessionStorage.getItem('verifact.apiKey')") == ALICE

    # The stream's fetch carries the key too: the run completes and opens.
    keyed_page.goto("#/verify")
    page.get_by_label("Text to check").fill("Sea level rose 20 centimetres over the last century.")
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/runs/[0-9a-f]{32}$"), timeout=20_000)

    page.get_by_role("button", name="Forget key").click()
    expect(page.locator("h1")).to_have_text("API key needed")
    assert page.evaluate("sessionStorage.getItem('verifact.apiKey')") is None
    expect(page.get_by_role("button", name="Forget key")).to_be_hidden()
    # The browser logs each 401 it was answered; anything else would be a viewer bug.
    problems = [p for p in keyed_page.problems() if "401" not in p]
    assert problems == []


def test_the_viewer_puts_no_markup_strings_into_the_page() -> None:
    sources = {p.name: p.read_text(encoding="utf-8") for p in VIEWER_JS.glob("*.js")}

    assert "auth.js" in sources
    for name, source in sources.items():
        assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", source), name
