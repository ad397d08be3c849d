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
        screenshot(page, f"width-{width}-{view}")
    page.goto(f"{live_server}/compare")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_selector("#compare[data-state=ready]", timeout=TIMEOUT)
    assert page.evaluate(WIDEST) <= width, f"compare runs past {width} px"
    screenshot(page, f"width-{width}-compare")
    page.goto(f"{live_server}/corpus")
    assert page.evaluate(WIDEST) <= width, f"the corpus atlas runs past {width} px"
    assert page.problems == []
