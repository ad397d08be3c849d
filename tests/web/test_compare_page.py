"""The compare page addressed by its analyses' keys: the form posts to /compare, which runs both analyses and
answers 303 to /compare?mode=…&a=KEY&b=KEY (never the texts); the page is filled from the keys, from the
inputs store once they expire, and refusals re-render the form with the inputs kept."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from visualizeai.config import Settings
from visualizeai.web import create_app

A, B = "The doctor asked the nurse to help her.", "The doctor asked the nurse to help him."


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(offline=True))) as c:
        yield c


def post(client, **fields):
    data = {"mode": "sentences", "model_a": "", "text_a": A, "text_b": B, **fields}
    return client.post("/compare", data=data, follow_redirects=False)


def keys_of(response) -> dict:
    assert response.status_code == 303, response.text[:500]
    location = urlparse(response.headers["location"])
    assert location.path == "/compare"
    query = parse_qs(location.query)
    assert set(query) == {"mode", "a", "b"}  # the texts never travel in the address
    return {name: values[0] for name, values in query.items()}


def test_the_form_posts_and_the_keyed_page_holds_both_inputs(client):
    keys = keys_of(post(client))
    assert keys["mode"] == "sentences"
    for key, text in ((keys["a"], A), (keys["b"], B)):
        meta = client.post("/api/v1/analyze", json={"text": text}).json()
        assert meta["key"] == key and meta["cached"] is True  # the same analyses the API runs
    page = client.get("/compare", params=keys)
    assert page.status_code == 200
    assert (page.context["text_a"], page.context["text_b"]) == (A, B)
    assert (page.context["key_a"], page.context["key_b"]) == (keys["a"], keys["b"])
    assert page.context["error"] is None
    form = re.search(r'<form class="compare-form" id="compare-form"[^>]*>', page.text)[0]
    assert 'method="post"' in form and f'data-key-a="{keys["a"]}"' in form


def test_two_models_one_text(client):
    keys = keys_of(
        post(client, mode="models", model_a="all-MiniLM-L6-v2", model_b="all-MiniLM-L6-v2", text_b="x")
    )
    page = client.get("/compare", params=keys)
    assert page.context["mode"] == "models" and page.context["text_a"] == A
    assert page.context["model_a"] == page.context["model_b"] == "all-MiniLM-L6-v2"


def test_a_refusal_rerenders_the_form_with_the_inputs(client):
    response = post(client, text_b="   ")
    assert response.status_code == 400 and response.template.name == "compare.html"
    assert "empty" in response.context["error"].lower()
    assert response.context["text_a"] == A
    unknown = post(client, model_a="no-such-model")
    assert unknown.status_code == 503 and "no-such-model" in unknown.context["error"]  # offline: not fetched


def test_expired_keys_fill_the_form_from_the_inputs_store():
    with TestClient(create_app(Settings(offline=True, result_cache_size=2))) as c:
        keys = keys_of(post(c))
        c.post("/api/v1/analyze", json={"text": "Two more analyses"})
        c.post("/api/v1/analyze", json={"text": "push both out."})
        page = c.get("/compare", params=keys)
        assert page.status_code == 200
        assert (page.context["text_a"], page.context["text_b"]) == (A, B)
        assert (page.context["key_a"], page.context["key_b"]) == ("", "")  # nothing to read by key
        assert "no longer held" in page.context["error"]
        assert "no longer held" in page.text


@pytest.mark.parametrize("ref", ["0" * 32, "<b>x</b>", "abc"])
def test_unknown_keys_say_so_and_are_never_echoed(client, ref):
    page = client.get("/compare", params={"mode": "sentences", "a": ref, "b": ref})
    assert page.status_code == 200 and "unknown to the server" in page.context["error"]
    assert "<b>x</b>" not in page.text
