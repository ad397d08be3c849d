"""Index → analysis in Chromium: the form submits, the heatmap draws, hover is exact, tokens are text."""

from __future__ import annotations

import numpy as np
from heatmap_probe import pixels, shown_matrix

HOSTILE = "<img src=x onerror=alert(1)>"


def test_form_to_heatmap_with_exact_hover(live_server, page, screenshot):
    page.goto(live_server + "/")
    assert page.get_by_label("Model").is_visible() and page.get_by_label("Text").is_visible()
    page.get_by_label("Text").fill("I think, therefore I am.")
    screenshot(page, "index")
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    viz = page.evaluate(
        "(v => ({n: v.meta.n, layer: v.layer, head: v.head, key: v.meta.key,"
        " tokens: v.meta.tokens.map(t => t.display)}))(window.visualizeai.view)"
    )
    assert viz["n"] == 9 and viz["tokens"][1] == viz["tokens"][5] == "I"
    matrix = shown_matrix(page)
    assert matrix.shape == (9, 9)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=5e-3)  # float16 on the wire
    # the canvas really has coloured pixels
    assert pixels(page, "r < 200 && a > 0") > 500
    # hover the cell (q=5, k=1): the second "I" attending to the first one
    box = page.evaluate("window.visualizeai.view.cellBox ? window.visualizeai.view.cellBox(5, 1) : null")
    assert box, "heatmap exposes cellBox(q, k) for tests"
    page.mouse.move(box["x"], box["y"])
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    assert tooltip.get_attribute("data-q") == "5" and tooltip.get_attribute("data-k") == "1"
    assert "I → I" in tooltip.inner_text()
    assert abs(float(tooltip.get_attribute("data-value")) - matrix[5, 1]) < 1e-6
    screenshot(page, "analysis")
    assert page.problems == []


def test_layer_and_head_controls_switch_matrix(live_server, page):
    page.goto(live_server + "/analysis?text=" + "Attention%20is%20all%20you%20need.")
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    first = shown_matrix(page)
    page.get_by_label("Layer", exact=True).select_option("3")
    page.get_by_label("Head", exact=True).select_option("7")
    page.wait_for_selector('#heatmap[data-state=ready][data-layer="3"][data-head="7"]')
    second = shown_matrix(page)
    assert not np.array_equal(first, second)
    assert "layer=3" in page.url and "head=7" in page.url
    assert page.problems == []


def test_hostile_token_is_shown_as_text(live_server, page):
    page.goto(live_server + "/")
    page.get_by_label("Text").fill(f"look {HOSTILE} here")
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    assert page.locator("img").count() == 0  # nothing became an element
    assert HOSTILE in page.locator("#summary-text").inner_text()
    tokens = page.evaluate("window.visualizeai.view.meta.tokens.map(t => t.display)")
    index = tokens.index("<")
    box = page.evaluate(f"window.visualizeai.view.cellBox({index}, {index})")
    page.mouse.move(box["x"], box["y"])
    page.locator("#tooltip").wait_for(state="visible")
    assert "< → <" in page.locator("#tooltip").inner_text()
    assert page.problems == []  # no alert dialog, no error


def test_truncation_notice(live_server, page):
    from urllib.parse import quote

    page.goto(live_server + "/analysis?text=" + quote("word " * 600))
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    notice = page.locator("#truncation")
    assert notice.is_visible()
    assert "512" in notice.inner_text() and "dropped" in notice.inner_text()
    assert page.problems == []
