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


def test_heatmap_top_of_the_scale_and_what_the_model_saw(live_server, page, screenshot):
    text = "Tokyo 🙂 naïve café"
    response = page.request.post(f"{live_server}/api/v1/analyze", data={"text": text})
    key = response.json()["key"]
    page.goto(f"{live_server}/analysis/{key}")
    wrap = page.locator("#heatmap[data-state=ready]")
    wrap.wait_for(timeout=60_000)
    title = page.locator("#legend-title")
    assert title.inner_text() == "Attention weight · square root · each matrix scaled to its own maximum"
    own = float(wrap.get_attribute("data-top"))
    maxima = page.request.get(f"{live_server}/api/v1/analyses/{key}/thumbnails?size=8&pool=max&layer=0")
    layer_top = max(float(v) for v in maxima.headers["x-maxima"].split(","))
    assert own <= layer_top

    page.get_by_label("Top of the scale").select_option("layer")
    top = "Number(document.querySelector('#heatmap[data-norm=layer]')?.dataset.top)"
    page.wait_for_function(f"Math.abs({top} - {layer_top}) < 1e-6")
    assert "heads of a layer share its maximum" in title.inner_text() and "norm=layer" in page.url
    page.get_by_label("Top of the scale").select_option("absolute")
    page.wait_for_selector('#heatmap[data-norm=absolute][data-top="1"]')
    # the All heads tab starts with the same scale
    page.get_by_role("tab", name="All heads").click()
    page.wait_for_selector("#overview-grid[data-state=ready][data-norm=absolute][data-scale=sqrt]")
    page.get_by_role("tab", name="Heatmap").click()
    page.wait_for_selector("#heatmap[data-state=ready][data-norm=absolute]")

    # the tooltip names the raw token, its id and its span: the emoji is the unknown token, naïve read naive
    tokens = page.evaluate("window.visualizeai.view.meta.tokens")
    smiley = next(i for i, t in enumerate(tokens) if t["display"] == "🙂")
    naive = next(i for i, t in enumerate(tokens) if t["display"] == "naïve")
    box = page.evaluate(f"window.visualizeai.view.cellBox({smiley}, {naive})")
    page.mouse.move(box["x"], box["y"])
    tip = page.locator("#tooltip")
    page.wait_for_selector(f'#tooltip[data-q="{smiley}"][data-k="{naive}"]')
    said = tip.inner_text()
    start, end = tokens[smiley]["start"], tokens[smiley]["end"]
    assert f'q: raw "[UNK]" · id 100 · chars {start}–{end} · unknown token' in said
    assert f'k: raw "naive" · id {tokens[naive]["id"]}' in said and 'model read "naive"' in said
    screenshot(page, "heatmap-unknown-token-tooltip")
    # the focus list flags the tokens whose display differs from what the model saw
    page.mouse.click(box["x"], box["y"])
    page.wait_for_selector(f'#focus-list[data-index="{smiley}"]')
    page.get_by_label("Show").select_option("col")
    badges = page.locator("#focus-list .tok-badge").all_inner_texts()
    assert set(badges) <= {"[UNK]", "≠"}
    assert page.problems == []
