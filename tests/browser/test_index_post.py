"""The index form in Chromium: a 200,000-character text is posted (by the page's script through the JSON API,
or by the form itself without script) and the analysis page opens at /analysis/{key}, with no text in the URL;
a refusal is shown in place with the text kept; an expired key's page offers a re-run that works."""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from ports import free_port

from visualizeai.config import Settings
from visualizeai.web import create_app

TIMEOUT = 60_000
# the analysis page, by key; its script may add the view state to the query (never the text)
KEYED = re.compile(r"^http://127\.0\.0\.1:\d+/analysis/([0-9a-f]{32})(\?[^#]*)?$")
SENTENCE = "Long texts travel in the body of a POST, never in the URL of the page. "
STATUS_LINE = "Failed to load resource: the server responded with a status of {} ({})"
LONG_TEXT = (SENTENCE * (200_000 // len(SENTENCE) + 1))[:200_000]


@pytest.fixture(scope="module")
def server():
    """An app of its own whose result cache holds two analyses, so a third pushes the first out."""
    app = create_app(Settings(offline=True, result_cache_size=2))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def analysis_loaded(page, chars: int) -> None:
    """Wait until the analysis page shows the analysed text (it reads it by key from the API)."""
    page.wait_for_function(
        "n => { const t = document.getElementById('summary-text');"
        " const r = document.getElementById('result');"
        " return t && r && !r.hidden && t.textContent.length === n; }",
        arg=chars,
        timeout=TIMEOUT,
    )


def test_a_200k_character_text_through_the_form(server, page, screenshot):
    page.goto(server + "/")
    page.locator("#text").evaluate("(el, text) => { el.value = text; }", LONG_TEXT)
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_url(KEYED, timeout=TIMEOUT)
    key = KEYED.match(page.url)[1]
    assert "text" not in parse_qs(urlsplit(page.url).query) and len(page.url) < 200
    assert page.locator("#app").get_attribute("data-key") == key
    analysis_loaded(page, len(LONG_TEXT))
    screenshot(page, "index-post-200k-analysis")
    assert page.problems == []


def test_a_refusal_is_shown_in_place_with_the_text_kept(server, page, screenshot):
    page.goto(server + "/")
    text = "A bell\x07 rings <b>here</b>."
    page.locator("#text").fill(text)
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_selector('#analyze-form[data-state="error"]')
    error = page.locator("#analyze-error")
    assert error.is_visible() and "U+0007" in error.inner_text() and "position 7" in error.inner_text()
    assert page.locator("#analyze-error b").count() == 0  # the message is text, never HTML
    assert page.locator("#text").input_value() == text and page.url == server + "/"
    assert page.locator("#analyze-submit").is_enabled()
    screenshot(page, "index-post-refusal")
    assert page.problems == [f"console: {STATUS_LINE.format(400, 'Bad Request')}"]  # the refused request


def test_without_script_the_form_posts_and_redirects(server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(server + "/")
        page.locator("#text").fill("Without script,\nthe form itself posts the text.")
        page.get_by_role("button", name="Analyze").click()
        page.wait_for_url(KEYED, timeout=TIMEOUT)
        key = KEYED.match(page.url)[1]
        assert page.locator("#app").get_attribute("data-key") == key
        # the same key as the JSON API gives the textarea's value (line breaks as LF)
        meta = httpx.post(
            server + "/api/v1/analyze", json={"text": "Without script,\nthe form itself posts the text."}
        )
        assert meta.json()["key"] == key
    finally:
        context.close()


def test_an_expired_key_offers_a_rerun_that_works(server, page, screenshot):
    text = "This analysis will be pushed out of the cache."
    page.goto(server + "/")
    page.locator("#text").fill(text)
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_url(KEYED, timeout=TIMEOUT)
    key = KEYED.match(page.url)[1]
    analysis_loaded(page, len(text))
    page.goto(server + "/")  # an open analysis page would run its text again when its key expires
    for other in ("A second text fills the cache.", "A third text pushes the first out."):
        assert httpx.post(server + "/api/v1/analyze", json={"text": other}).status_code == 200
    response = page.goto(f"{server}/analysis/{key[:12]}?view=heatmap&layer=2")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "This analysis is not available any more"
    assert page.locator("#rerun-text").input_value() == text
    screenshot(page, "index-post-expired")
    page.get_by_role("button", name="Run it again").click()
    page.wait_for_url(re.compile(rf"/analysis/{key}(\?[^#]*)?$"), timeout=TIMEOUT)
    analysis_loaded(page, len(text))
    assert page.problems == [f"console: {STATUS_LINE.format(404, 'Not Found')}"]  # the expired page


def test_a_text_over_the_character_limit_is_refused_before_sending(server, page):
    most = Settings().max_text_chars
    sent = []
    page.on("request", lambda request: "/api/v1/analyze" in request.url and sent.append(request.url))
    page.goto(server + "/")
    page.locator("#text").evaluate("(el, n) => { el.value = 'x'.repeat(n); }", most + 1)
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_selector('#analyze-form[data-state="error"]')
    assert page.locator("#analyze-error").inner_text() == (
        f"Text is {most + 1:,} characters long; the limit is {most:,}."  # the server's own words
    )
    assert sent == [] and page.locator("#text").evaluate("el => el.value.length") == most + 1
    assert page.problems == []
