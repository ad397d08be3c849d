"""The analysis page as an instrument: the heatmap above the fold at common widths, explanations behind a
help toggle, a collapsible prediction panel, editing the text and model in place (the tab, layer and head
stay), and keyboard hints that say what each tab's keys really do."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

TIMEOUT = 60_000
WORDS = (
    "Researchers study attention in transformer models to understand how a sentence is read, which words "
    "matter for a prediction, and where long-range dependencies appear between distant tokens. "
).split()
TEXT_470 = " ".join((WORDS * 20)[:470])
SHOTS = Path("/tmp/visualizeai-layout")


def analyse(page, live_server, text: str, model: str | None = None) -> dict:
    data = {"text": text} if model is None else {"text": text, "model": model}
    response = page.request.post(f"{live_server}/api/v1/analyze", data=data)
    assert response.ok, response.text()
    return response.json()


def heatmap_ready(page, **attrs) -> None:
    extra = "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())
    page.wait_for_selector(f"#heatmap[data-state=ready]{extra}", timeout=TIMEOUT)


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("width", [800, 1400, 1920])
def test_heatmap_is_above_the_fold(live_server, page, screenshot, width):
    meta = analyse(page, live_server, TEXT_470)
    assert meta["truncation"]["dropped_tokens"] == 0 or meta["n"] == 512
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server}/analysis/{meta['key']}")
    heatmap_ready(page)
    canvas = box(page, "#heatmap canvas")
    top = canvas["y"]
    if width == 1400:
        assert top <= 450, f"the heatmap starts at y = {top:.0f} px at 1400 × 900"
    assert top < 900  # some of it is on the first screen at every width
    # nothing overlaps: the blocks above the heatmap follow one another, inside the window's width
    order = ["#input-card", "#view-tabs", "#controls", "#heatmap"]
    boxes = [box(page, s) for s in order]
    for upper, lower, names in zip(boxes, boxes[1:], zip(order, order[1:], strict=False), strict=False):
        assert upper["y"] + upper["height"] <= lower["y"] + 0.5, names
    for selector in [*order, "#summary-text", "#edit-input", "#export-menu", "#help-toggle"]:
        b = box(page, selector)
        assert b["x"] >= 0 and b["x"] + b["width"] <= width + 0.5, selector
    # the explanations wait behind the help toggle
    assert page.locator("#merge-rule").is_hidden()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"analysis-{width}.png"))
    screenshot(page, f"layout-analysis-{width}")
    assert page.problems == []


def test_help_toggle_shows_the_explanations(live_server, page):
    meta = analyse(page, live_server, TEXT_470)
    page.goto(f"{live_server}/analysis/{meta['key']}")
    heatmap_ready(page)
    toggle = page.locator("#help-toggle")
    assert toggle.get_attribute("aria-expanded") == "false" and page.locator("#help-panel").is_hidden()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    rule = page.locator("#merge-rule")
    assert rule.is_visible() and "summing" in rule.inner_text()
    assert "layer" in page.locator("#keys-hint").inner_text()
    toggle.click()
    assert page.locator("#help-panel").is_hidden()
    assert page.problems == []


def test_prediction_panel_collapses_and_stays_collapsed(live_server, page, tiny_models, screenshot):
    model = str(tiny_models["bert"])
    meta = analyse(page, live_server, "The cat sat on the [MASK] today.", model)
    page.goto(f"{live_server}/analysis/{meta['key']}")
    heatmap_ready(page)
    toggle = page.locator("#predictions-toggle")
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator("#predictions-body").is_visible() and page.locator(".pred-card").count() == 1
    open_top = box(page, "#heatmap canvas")["y"]
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false" and page.locator("#predictions-body").is_hidden()
    summary = page.locator("#predictions-summary")
    assert summary.is_visible() and summary.inner_text().startswith("Best guess at position")
    heatmap_ready(page)
    # collapsed, the panel is one line: the heatmap moves up and starts where it would without predictions
    collapsed_top = box(page, "#heatmap canvas")["y"]
    assert collapsed_top < open_top
    head = box(page, "#predictions")
    assert head["height"] <= 60
    screenshot(page, "layout-predictions-collapsed")
    page.reload()
    heatmap_ready(page)
    assert page.locator("#predictions-toggle").get_attribute("aria-expanded") == "false"
    page.locator("#predictions-toggle").click()
    assert page.locator(".pred-card").is_visible()
    assert page.problems == []


def test_edit_and_rerun_keeps_the_tab_layer_and_head(live_server, page, tiny_models, screenshot):
    meta = analyse(page, live_server, "The cat sat on the mat.")
    page.goto(f"{live_server}/analysis/{meta['key']}?view=rollout&layer=3")
    page.wait_for_selector('#rollout[data-state=ready][data-layer="3"]', timeout=TIMEOUT)
    page.get_by_role("tab", name="Heatmap").click()
    page.locator("#head").select_option("7")
    heatmap_ready(page, layer=3, head=7)
    page.get_by_role("button", name="Edit & re-run").click()
    text = page.get_by_label("Text", exact=True)
    assert text.is_visible() and text.input_value() == "The cat sat on the mat."
    assert page.locator("#input-model").input_value() == meta["model"]["id"]
    assert page.locator("#input-model-other").is_hidden()
    screenshot(page, "layout-edit-open")
    text.fill("A dog slept under the old table.")
    page.get_by_role("button", name="Re-run").click()
    page.wait_for_url(lambda url: urlparse(url).path != f"/analysis/{meta['key']}", timeout=TIMEOUT)
    heatmap_ready(page, layer=3, head=7)
    query = parse_qs(urlparse(page.url).query)
    assert query["view"] == ["heatmap"] and query["layer"] == ["3"] and query["head"] == ["7"]
    assert "text" not in query
    assert page.locator("#summary-text").inner_text() == "A dog slept under the old table."
    assert page.get_by_role("tab", name="Heatmap").get_attribute("aria-selected") == "true"

    # another model, fewer layers: the page clamps the layer and head to what the model has
    tiny = str(tiny_models["bert"])
    page.get_by_role("button", name="Edit & re-run").click()
    page.get_by_label("Model", exact=True).select_option(label="Other model…")
    page.get_by_label("Model id or directory").fill(tiny)
    page.get_by_role("button", name="Re-run").click()
    page.wait_for_function(
        "id => (document.getElementById('summary-model') || {}).textContent === id", arg=tiny, timeout=TIMEOUT
    )
    heatmap_ready(page)
    state = page.evaluate(
        "(s => [s.view, s.layer, s.head, s.meta.layers, s.meta.heads])(window.visualizeai.store.get())"
    )
    assert state[0] == "heatmap" and state[1] == state[3] - 1 and state[2] == state[4] - 1
    assert page.locator("#summary-text").inner_text() == "A dog slept under the old table."
    # the editor of a model outside the catalog starts from "Other" with its id
    page.get_by_role("button", name="Edit & re-run").click()
    assert page.get_by_label("Model id or directory").input_value() == tiny
    assert page.problems == []


def test_a_refused_rerun_keeps_the_editor_and_says_why(live_server, page):
    meta = analyse(page, live_server, "The cat sat on the mat.")
    page.goto(f"{live_server}/analysis/{meta['key']}")
    heatmap_ready(page)
    page.get_by_role("button", name="Edit & re-run").click()
    page.get_by_label("Text", exact=True).fill("   ")
    page.get_by_role("button", name="Re-run").click()
    assert page.locator("#error").inner_text().startswith("There is no text to analyze")
    assert page.get_by_label("Text", exact=True).is_visible()
    assert urlparse(page.url).path == f"/analysis/{meta['key']}"
    # the server refuses a model it does not know: its message, the editor and the text stay
    page.get_by_label("Text", exact=True).fill("Still here.")
    page.get_by_label("Model", exact=True).select_option(label="Other model…")
    page.get_by_label("Model id or directory").fill("/no/such/model/dir")
    page.get_by_role("button", name="Re-run").click()
    page.wait_for_function("() => !document.getElementById('rerun').disabled")
    error = page.locator("#error")
    assert error.is_visible() and "There is no text" not in error.inner_text() and error.inner_text()
    assert page.get_by_label("Text", exact=True).input_value() == "Still here."
    assert urlparse(page.url).path == f"/analysis/{meta['key']}"
    page.get_by_role("button", name="Cancel").click()
    assert page.locator("#summary-text").is_visible()
    assert [p for p in page.problems if "Failed to load resource" not in p] == []


KEY_HINTS = {
    "heatmap": ["↑/↓ layer", "←/→ head", "+/- zoom", "/ find"],
    "overview": ["←/↑/→/↓ move between thumbnails", "Enter open"],
    "headview": ["↑/↓ layer", "←/→ switch between the query and the key column"],
    "rollout": ["↑/↓ layer"],
    "atlas": ["Enter open"],
    "qkmap": ["↑/↓ layer", "←/→ head"],
    "neuron": ["↑/↓ layer", "←/→ head", "↑/↓ previous/next query token"],
}
NOT_IN_HINT = {"headview": "←/→ head", "rollout": "←/→ head", "overview": "↑/↓ layer", "atlas": "↑/↓ layer"}


def test_keyboard_hints_say_what_each_tab_does(live_server, page):
    meta = analyse(page, live_server, "The cat sat on the mat.")
    page.goto(f"{live_server}/analysis/{meta['key']}")
    heatmap_ready(page)
    page.locator("#help-toggle").click()
    hint = page.locator("#keys-hint")
    for view, wanted in KEY_HINTS.items():
        page.locator(f'#view-tabs [data-view="{view}"]').click()
        page.wait_for_selector(f'#keys-hint[data-view="{view}"]')
        text = hint.inner_text()
        for phrase in wanted:
            assert phrase in text, (view, phrase, text)
        if view in NOT_IN_HINT:
            assert NOT_IN_HINT[view] not in text, (view, text)

    # the head view's ←/→ really switch between queries and keys (the picture focused), not heads
    page.locator('#view-tabs [data-view="headview"]').click()
    page.wait_for_selector("#headview[data-state=ready]", timeout=TIMEOUT)
    page.locator("#headview").focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_selector('#headview[data-focus="q:0"]')
    page.keyboard.press("ArrowRight")
    page.wait_for_selector('#headview[data-focus="k:0"]')
    assert page.evaluate("window.visualizeai.store.get().head") == 0
    # and away from the picture ↑/↓ change the layer
    page.locator("#keys-hint").click()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => window.visualizeai.store.get().layer === 1")
    assert page.problems == []
