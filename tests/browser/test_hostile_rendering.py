"""Strings that carry HTML and script are shown as text everywhere: tokens, texts, model names, predictions
and error messages. A tiny BERT gets the hostile strings as whole tokens of its vocabulary (and a bias that
makes them its top predictions); a catalog file gives a model a hostile display name."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlencode

import pytest
import torch
import uvicorn

from visualizeai.config import Settings
from visualizeai.web import create_app

HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", '"><svg onload=alert(1)>']
NAME = " ".join(HOSTILE)  # the display name of the catalog entry "hostile-model"
TEXT = f"look {HOSTILE[0]} and {HOSTILE[1]} then {HOSTILE[2]} [MASK] end"
TIMEOUT = 60_000
# anything that would show the strings were parsed as markup (the app's own pages have no <img> or <svg>)
INJECTED = """() => ({
  img: document.querySelectorAll('img').length,
  svg: document.querySelectorAll('svg').length,
  handlers: document.querySelectorAll('[onerror], [onload]').length,
  scripts: [...document.scripts].filter(s => s.textContent.includes('alert')).length,
})"""
NOTHING = {"img": 0, "svg": 0, "handlers": 0, "scripts": 0}


@pytest.fixture(scope="module")
def hostile_server(tiny_models, tmp_path_factory):
    """The app with a tiny BERT whose vocabulary holds the hostile strings, listed under a hostile name."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    root = tmp_path_factory.mktemp("hostile")
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    tokenizer.add_tokens(HOSTILE)
    model = AutoModelForMaskedLM.from_pretrained(tiny_models["bert"])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():  # the hostile tokens become the top guesses at a [MASK]
        model.cls.predictions.bias[tokenizer.convert_tokens_to_ids(HOSTILE)] += 50
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    catalog = root / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {
                    "id": "hostile-model",
                    "source": "local",
                    "location": str(root / "model"),
                    "display_name": NAME,
                    "notes": HOSTILE[1],
                },
            ]
        )
    )
    app = create_app(Settings(allowed_roots=(root,), offline=True, catalog_file=catalog, model_cache_size=4))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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


def test_index_shows_hostile_model_name_and_text_as_text(hostile_server, page, screenshot):
    page.goto(hostile_server + "/")
    option = page.locator('#model option[value="hostile-model"]')
    assert NAME in option.inner_text()
    assert NAME in page.locator("table.models").inner_text()
    page.get_by_label("Model").select_option("hostile-model")
    page.get_by_label("Text").fill(TEXT)
    assert page.evaluate(INJECTED) == NOTHING
    screenshot(page, "hostile-index")
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=TIMEOUT)
    assert page.locator("#summary-text").inner_text() == TEXT
    assert NAME in page.locator("#meta-summary").inner_text()
    assert page.evaluate(INJECTED) == NOTHING
    assert page.problems == []


def test_hostile_tokens_in_every_view(hostile_server, page, screenshot):
    page.goto(f"{hostile_server}/analysis?{urlencode({'model': 'hostile-model', 'text': TEXT})}")
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=TIMEOUT)
    tokens = page.evaluate("window.visualizeai.view.meta.tokens.map(t => t.display)")
    positions = [tokens.index(h) for h in HOSTILE]  # each hostile string is one token

    # heatmap: the tooltip of each hostile token's cell, and the focus-token list
    for i, h in zip(positions, HOSTILE, strict=True):
        page.evaluate(f"window.scrollBy(0, window.visualizeai.view.cellBox({i}, {i}).y - innerHeight / 2)")
        box = page.evaluate(f"window.visualizeai.view.cellBox({i}, {i})")
        page.mouse.move(box["x"], box["y"])
        page.wait_for_selector(f'#tooltip[data-q="{i}"][data-k="{i}"]')
        assert f"{h} → {h}" in page.locator("#tooltip").inner_text()
    # the focus panel names each hostile token as text
    for i, h in zip(positions, HOSTILE, strict=True):
        page.get_by_label("Focus token").fill(str(i))
        page.get_by_label("Focus token").dispatch_event("change")
        page.wait_for_selector(f'#heatmap[data-focus="row:{i}"]')
        assert h in page.locator("#focus-query").inner_text()
    page.keyboard.press("Escape")

    # predictions: the hostile tokens are the top guesses at the mask, and the token strip has them as buttons
    card = page.locator(".pred-card").first
    guesses = card.locator(".pred-list").inner_text()
    assert all(h in guesses for h in HOSTILE), guesses
    for h in HOSTILE:
        assert page.locator("#token-strip").get_by_role("button", name=h, exact=True).count() == 1
    screenshot(page, "hostile-heatmap")
    assert page.evaluate(INJECTED) == NOTHING

    # all heads
    page.get_by_role("tab", name="All heads").click()
    page.wait_for_selector("#overview-grid[data-state=ready]", timeout=TIMEOUT)
    assert page.evaluate(INJECTED) == NOTHING

    # head view: hovering a hostile query token names it in the status line
    page.get_by_role("tab", name="Head view").click()
    page.wait_for_selector("#headview[data-state=ready]", timeout=TIMEOUT)
    page.evaluate(
        f"window.scrollBy(0, window.visualizeai.view.tokenBox('q', {positions[1]}).y - innerHeight / 2)"
    )
    box = page.evaluate(f"window.visualizeai.view.tokenBox('q', {positions[1]})")
    page.mouse.move(box["x"], box["y"])
    page.wait_for_selector(f'#headview[data-focus="q:{positions[1]}"]')
    assert f"“{HOSTILE[1]}”" in page.locator("#headview-status").inner_text()
    screenshot(page, "hostile-headview")
    assert page.evaluate(INJECTED) == NOTHING
    assert page.problems == []  # no alert dialog, no script error


@pytest.mark.parametrize("model", HOSTILE)
def test_error_messages_echoing_input_are_text(hostile_server, page, model):
    page.goto(f"{hostile_server}/analysis?{urlencode({'model': model, 'text': 'hi'})}")
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=TIMEOUT)
    assert f"Model '{model}'" in error.inner_text() or f'Model "{model}"' in error.inner_text()
    assert page.locator("#summary-model").inner_text() == model
    assert page.evaluate(INJECTED) == NOTHING
    page.problems = [
        p for p in page.problems if "status of 404" not in p
    ]  # the failed request's console line
    assert page.problems == []


def test_control_character_error_is_shown_next_to_the_input(hostile_server, page):
    page.goto(f"{hostile_server}/analysis?{urlencode({'model': 'hostile-model', 'text': 'bell' + chr(7)})}")
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=TIMEOUT)
    assert "U+0007 at position 5 of 5" in error.inner_text()
    page.problems = [p for p in page.problems if "status of 400" not in p]
    assert page.problems == []
