"""Comparable colours: one colour scale (square root by default) and one normalisation (each matrix its own
maximum, a layer's heads its maximum, or absolute 0–1) shared by the tabs through the view state, each legend
saying which is in use."""

from __future__ import annotations

from urllib.parse import quote

TEXT = "The quick brown fox jumps over the lazy dog, and the dog sleeps on."

# the brightest (largest) pixel of every thumbnail of layer 0: the cell its head's maximum falls in
DARKEST = """() => [...document.querySelectorAll('#overview-grid button.thumb[data-layer="0"]')].map(b => {
    const c = b.firstChild; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let best = null, sum = 1e9;
    for (let i = 0; i < d.length; i += 4) {
        const s = d[i] + d[i + 1] + d[i + 2];
        if (s < sum) { sum = s; best = [d[i], d[i + 1], d[i + 2]]; }
    }
    return {head: Number(b.dataset.head), max: Number(b.dataset.max), rgb: best}; })"""


def open_overview(page, live_server, query: str = "") -> None:
    page.goto(f"{live_server}/analysis?text={quote(TEXT)}&view=overview{query}")
    page.wait_for_selector("#overview-grid[data-state=ready]", timeout=60_000)


def test_all_heads_share_a_layers_scale_or_an_absolute_one(live_server, page, screenshot):
    open_overview(page, live_server)
    grid = page.locator("#overview-grid")
    assert (grid.get_attribute("data-scale"), grid.get_attribute("data-norm")) == ("sqrt", "matrix")
    assert page.locator("#overview-legend-title").inner_text() == "share of each head's maximum"
    own = {t["head"]: t for t in page.evaluate(DARKEST)}
    top = max(own.values(), key=lambda t: t["max"])
    low = min(own.values(), key=lambda t: t["max"])
    assert low["max"] < 0.8 * top["max"]  # heads of the layer differ in their largest weight
    # each head its own maximum: every head's largest cell has the top colour of the ramp
    assert own[low["head"]]["rgb"] == own[top["head"]]["rgb"]

    page.get_by_label("Top of the scale").select_option("layer")
    page.wait_for_selector("#overview-grid[data-norm=layer]")
    assert "norm=layer" in page.url
    assert "layer 0's maximum" in page.locator("#overview-legend-title").inner_text()
    shared = {t["head"]: t for t in page.evaluate(DARKEST)}
    assert shared[top["head"]]["rgb"] == own[top["head"]]["rgb"]  # the layer's strongest head is unchanged
    assert sum(shared[low["head"]]["rgb"]) > sum(own[low["head"]]["rgb"])  # a weaker head is paler now
    screenshot(page, "overview-per-layer")

    page.get_by_label("Top of the scale").select_option("absolute")
    page.wait_for_selector("#overview-grid[data-norm=absolute]")
    absolute = {t["head"]: t for t in page.evaluate(DARKEST)}
    if top["max"] < 0.95:
        assert sum(absolute[top["head"]]["rgb"]) > sum(own[top["head"]]["rgb"])
    assert page.locator("#overview-legend-title").inner_text() == "attention weight"

    # the permalink keeps it
    page.reload()
    page.wait_for_selector("#overview-grid[data-state=ready][data-norm=absolute]", timeout=60_000)
    assert page.get_by_label("Top of the scale").input_value() == "absolute"
    assert page.problems == []
