"""Analysis pages addressed by key: POST /analysis (the index form) answers 303 to /analysis/{key}; the key or
a 12-character digest of it renders the page while the result is cached; an unknown or expired key gets a
readable 404 page that offers a re-run while the inputs store remembers the input; refusals re-render the
index with the message and the text kept, under the status the API would answer."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import numpy as np
import pytest
from fake_results import result_over
from fastapi.testclient import TestClient

from visualizeai.attention.store import DenseStore
from visualizeai.config import Settings
from visualizeai.inputs import InputsStore
from visualizeai.web import create_app

TEXT = "The animal didn't cross the street\r\nbecause it was too tired."
KEY = re.compile(r"/analysis/([0-9a-f]{32})")


def post_form(client, text, model="", **kw):
    return client.post("/analysis", data={"model": model, "text": text}, follow_redirects=False, **kw)


def key_of(response) -> str:
    assert response.status_code == 303, response.text[:500]
    match = KEY.fullmatch(response.headers["location"])
    assert match, response.headers["location"]
    return match[1]


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(offline=True))) as c:
        yield c


@pytest.fixture(scope="module")
def posted(client) -> str:
    return key_of(post_form(client, TEXT))


def test_the_form_posts_and_lands_on_the_keyed_page(client, posted):
    page = client.get(f"/analysis/{posted}")
    assert page.status_code == 200 and page.template.name == "analysis.html"
    assert page.context["key"] == posted and page.context["digest"] == posted[:12]
    assert page.context["text"] == ""  # the page loads the text by key, never from the URL or the page
    # the same analysis the API runs on the textarea's value (CRLF from the form read as LF)
    meta = client.post("/api/v1/analyze", json={"text": TEXT.replace("\r\n", "\n")}).json()
    assert meta["key"] == posted and meta["cached"] is True


def test_the_index_form_posts_to_analysis(client):
    page = client.get("/")
    form = re.search(r'<form class="analyze-form" id="analyze-form"[^>]*>', page.text)[0]
    assert 'method="post"' in form and 'action="/analysis"' in form
    assert '<script type="module" src="/static/js/pages/index.js">' in page.text


def test_a_digest_resolves_while_cached(client, posted):
    for ref in (posted[:12], posted[:20], posted[:12].upper()):
        page = client.get(f"/analysis/{ref}")
        assert page.status_code == 200, ref
        assert page.context["key"] == posted


def test_an_ambiguous_digest_is_a_409_page(client):
    service = client.app.state.service
    store = DenseStore(np.full((1, 1, 2, 2), 0.5, dtype=np.float32))
    for key in ("abcdef012345" + "0" * 20, "abcdef012345" + "1" * 20):
        service.results.put(key, result_over(store))
    page = client.get("/analysis/abcdef012345")
    assert page.status_code == 409 and page.template.name == "expired.html"
    assert "is the start of 2 analyses" in page.text
    full = client.get("/analysis/abcdef012345" + "1" * 20)
    assert full.status_code == 200 and full.context["key"] == "abcdef012345" + "1" * 20


@pytest.mark.parametrize("ref", ["0" * 32, "0123456789ab", "short", "not-a-key-at-all-" * 3])
def test_an_unknown_key_is_a_readable_404_page(client, ref):
    page = client.get(f"/analysis/{ref}")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert page.template.name == "expired.html" and page.context["inputs"] is None
    assert "not available any more" in page.text and 'id="rerun-form"' not in page.text
    assert 'href="/" id="expired-new"' in page.text


def test_a_hostile_key_is_not_echoed_as_html(client):
    page = client.get("/analysis/" + "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert page.status_code == 404 and page.template.name == "expired.html"
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_view_state_in_the_query_is_ignored_and_never_echoed(client, posted):
    query = urlencode({"view": "heatmap", "layer": "2", "zoom": "0:5,0:5", "evil": '"><script>x()</script>'})
    page = client.get(f"/analysis/{posted}?{query}")
    assert page.status_code == 200 and page.context["key"] == posted
    assert "<script>x()" not in page.text and "x()" not in page.text


def test_legacy_addresses_keep_working(client, posted):
    legacy = client.get("/analysis", params={"text": "Short text.", "model": ""})
    assert legacy.status_code == 200 and legacy.template.name == "analysis.html"
    assert legacy.context["text"] == "Short text." and legacy.context["key"] is None
    by_key = client.get("/analysis", params={"key": posted})
    assert by_key.status_code == 200 and by_key.context["key"] == posted
    assert client.get("/analysis", params={"key": "f" * 32}).status_code == 404


def test_an_expired_key_offers_a_rerun_that_works():
    with TestClient(create_app(Settings(offline=True, result_cache_size=1))) as c:
        first = key_of(post_form(c, "First text, soon evicted."))
        key_of(post_form(c, "Second text pushes the first out."))
        for ref in (first, first[:12]):
            page = c.get(f"/analysis/{ref}")
            assert page.status_code == 404 and page.template.name == "expired.html"
            assert page.context["inputs"].text == "First text, soon evicted."
            assert 'id="rerun-form" method="post" action="/analysis"' in page.text
            assert re.search(
                r'<textarea id="rerun-text" name="text"[^>]*>\nFirst text, soon evicted\.</', page.text
            )
            assert '<option value="all-MiniLM-L6-v2" selected>' in page.text
        again = post_form(c, "First text, soon evicted.", "all-MiniLM-L6-v2")
        assert key_of(again) == first  # the same model and text: the same key
        assert c.get(f"/analysis/{first}").status_code == 200


def test_a_200k_character_form_is_analysed(client):
    text = ("Long texts travel in the body of a POST, never in the URL. " * 3400)[:200_000]
    key = key_of(post_form(client, text))
    page = client.get(f"/analysis/{key}")
    assert page.status_code == 200 and text[:40] not in page.text
    meta = client.get(f"/api/v1/analyses/{key}").json()
    assert meta["truncation"]["dropped_tokens"] > 0 and meta["n"] == 512


def test_a_non_ascii_form_may_be_larger_than_a_json_body():
    """Percent-encoding takes up to 12 bytes a character, a JSON body 6: the form path has its own limit.
    (A smaller character cap than the default keeps the tokenizer's work short; the ratio is the same.)"""
    settings = Settings(offline=True, max_text_chars=30_000)
    text = "漢字のテキスト。" * 3_750  # 30,000 characters, 9 bytes each when percent-encoded
    body = urlencode({"model": "", "text": text}).encode()
    assert settings.max_body_bytes < len(body) <= settings.max_form_bytes
    with TestClient(create_app(settings)) as c:
        response = c.post(
            "/analysis",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        key_of(response)


def test_a_form_over_its_limit_is_413():
    with TestClient(create_app(Settings(offline=True, max_form_bytes=10_000))) as c:
        response = post_form(c, "x" * 20_000)
        assert response.status_code == 413 and "10,000 bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    ("text", "model", "status", "message"),
    [
        ("   ", "", 400, "empty"),
        ("bell\x07", "", 400, "position 5"),
        ("Hello there.", "no such model!", 404, "is neither in the catalog"),
        ("Hello there.", "/etc", 400, "outside the allowed model directories"),
        ("Hello there.", "nobody/not-downloaded", 503, "offline"),
    ],
)
def test_refusals_rerender_the_index_with_the_text_kept(client, text, model, status, message):
    page = post_form(client, text, model)
    assert page.status_code == status and page.template.name == "index.html"
    error = re.search(
        r'<div id="analyze-error" class="alert alert-error" role="alert">([^<]*)</div>', page.text
    )
    assert error and message in error[1], page.text[-3000:]
    assert page.context["text"] == text
    assert page.context["selected_model"] == (model.strip() or "all-MiniLM-L6-v2")


def test_a_text_over_the_character_limit_is_kept_in_the_form():
    settings = Settings(offline=True, max_text_chars=1000)
    with TestClient(create_app(settings)) as c:
        text = "<b>bold</b> & " * 100
        page = post_form(c, text)
        assert page.status_code == 400 and "the limit is 1,000" in page.text
        assert page.context["text"] == text
        assert "&lt;b&gt;bold&lt;/b&gt; &amp; " in page.text and "<b>bold</b>" not in page.text


def test_the_inputs_store_is_bounded_by_count_and_bytes():
    store = InputsStore(max_items=3, max_bytes=10_000)
    for i in range(5):
        store.remember(f"k{i}", "m", f"text {i}")
    assert len(store) == 3 and store.get("k0") is None and store.get("k4").text == "text 4"
    store.remember("big", "m", "x" * 9_500)  # with any other entry over 10,000 bytes: the others go
    assert store.nbytes <= 10_000 and store.get("big") is not None and len(store) == 1
    store.remember("huge", "m", "x" * 20_000)  # larger than the whole store: not kept
    assert store.get("huge") is None
