"""Every tab of the analysis page, the compare page and the corpus atlas at 800, 1400 and 1920 px wide: each
view draws, nothing runs past the window's width, no page errors; a screenshot of each for a person."""

from __future__ import annotations

import pytest

TIMEOUT = 60_000
TEXT = "Tokyo 🙂 naïve café: the quick brown fox jumps over the lazy dog, and the dog sleeps on."
TABS = {
    "heatmap": "#heatmap[data-state=ready]",
    "overview": "#overview-grid[data-state=ready]",
    "headview": "#headview[data-state=ready]",
    "rollout": "#rollout[data-state=ready]",
    "atlas": "#atlas-grid[data-state=ready]",
    "qkmap": "#qk-map[data-state=drawn]",
    "neuron": "#neuron[data-state=drawn]",
}
WIDEST = "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"


@pytest.mark.parametrize("width", [800, 1400, 1920])
def test_every_tab_fits_and_draws(live_server, page, screenshot, width):
    page.set_viewport_size({"width": width, "height": 900})
    response = page.request.post(f"{live_server}/api/v1/analyze", data={"text": TEXT})
    assert response.ok, response.text()
    page.goto(f"{live_server}/analysis/{response.json()['key']}")
    for view, ready in TABS.items():
        page.locator(f"#tab-{view}").click()
        page.wait_for_selector(ready, timeout=TIMEOUT)
        assert page.evaluate(WIDEST) <= width, f"{view} runs past {width} px"
        # the export menu opens inside the window (each view's figures: test_view_figures_browser.py)
        page.locator("#export-menu summary").click()
        menu = page.locator("#export-menu .export-panel").bounding_box()
        assert menu and menu["x"] >= 0 and menu["x"] + menu["width"] <= width + 0.5, view
        page.locator("#export-menu summary").click()
        screenshot(page, f"width-{width}-{view}")
    # the heatmap's tooltip (what the model saw), the help panel and the editor fit the window too
    page.locator("#tab-heatmap").click()
    page.wait_for_selector(TABS["heatmap"], timeout=TIMEOUT)
    tokens = page.evaluate("window.visualizeai.view.meta.tokens")
    smiley = next(i for i, t in enumerate(tokens) if t["unknown"])
    box = page.evaluate(f"window.visualizeai.view.cellBox({smiley}, {smiley})")
    page.evaluate(f"window.scrollBy(0, {box['y']} - innerHeight / 2)")
    box = page.evaluate(f"window.visualizeai.view.cellBox({smiley}, {smiley})")
    page.mouse.move(box["x"], box["y"])
    tip = page.locator("#tooltip")
    page.wait_for_selector(f'#tooltip[data-q="{smiley}"]')
    assert 'raw "[UNK]"' in tip.inner_text()
    tip_box = tip.bounding_box()
    assert tip_box["x"] >= 0 and tip_box["x"] + tip_box["width"] <= width + 0.5
    page.mouse.move(1, 1)
    for toggle, opened, close in (
        ("#help-toggle", "#help-panel", "#help-toggle"),
        ("#edit-input", "#input-edit", "#cancel-edit"),
    ):
        page.locator(toggle).click()
        panel = page.locator(opened).bounding_box()
        assert panel and panel["x"] >= 0 and panel["x"] + panel["width"] <= width + 0.5, opened
        assert page.evaluate(WIDEST) <= width, f"{opened} runs past {width} px"
        screenshot(page, f"width-{width}-{opened[1:]}")
        page.locator(close).click()
        page.locator(opened).wait_for(state="hidden")
    page.goto(f"{live_server}/compare")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_selector("#compare[data-state=ready]", timeout=TIMEOUT)
    assert page.evaluate(WIDEST) <= width, f"compare runs past {width} px"
    screenshot(page, f"width-{width}-compare")
    page.goto(f"{live_server}/corpus")
    assert page.evaluate(WIDEST) <= width, f"the corpus atlas runs past {width} px"
    assert page.problems == []
