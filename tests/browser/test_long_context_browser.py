"""A 16k-token analysis in Chromium: submitted through the start page's form, drawn as a level-of-detail
heatmap from tiles, zoomed until the axes name tokens, with the values shown equal to the tiles API's exact
weights; a phrase found, a token's row shading the text panel, and a range of query rows listing its top keys.

The model is the tiny random Qwen2 with its context widened to 16,384 positions (RoPE has no learned
positions, so the weights are unchanged), loaded like any allowed local directory."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import widen_context

pytestmark = [pytest.mark.models, pytest.mark.slow]

N = 16_384
SENTENCE = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat. "
TEXT = SENTENCE * 640  # about 17,300 tokens: cut at the context
PHRASE = "lazy dog"
TIMEOUT = 90_000


@pytest.fixture(scope="module")
def long_qwen2(tiny_models):
    """The tiny Qwen2 beside the other tiny models (inside the server's allowed root), widened to N."""
    return widen_context(tiny_models["qwen2"], tiny_models["qwen2"].parent / "qwen2_16k", N)


def dataset(page, selector: str) -> dict:
    return page.evaluate("(s) => ({...document.querySelector(s).dataset})", selector)


def half(values: bytes) -> np.ndarray:
    return np.frombuffer(values, dtype="<f2").astype(np.float32)


def cell_point(page, row: int, col: int) -> tuple[float, float]:
    """Viewport point of the centre of cell (row, col), from the heatmap's own outcome attributes."""
    d = dataset(page, "#heatmap")
    box = page.locator("#heatmap").bounding_box()
    cell = float(d["cell"])
    x = box["x"] + float(d["gridLeft"]) + (col + 0.5 - float(d["x0"])) * cell
    y = box["y"] + float(d["gridTop"]) + (row + 0.5 - float(d["y0"])) * cell
    return x, y


def test_a_16k_token_text_through_the_form(live_server, page, long_qwen2, screenshot):
    page.goto(f"{live_server}/")
    # the catalog lists hub models; the tiny checkpoint is an allowed local directory, offered here by hand
    page.evaluate(
        """(path) => { const s = document.getElementById('model'); const o = document.createElement('option');
        o.value = path; o.textContent = 'tiny Qwen2, 16k'; s.append(o); s.value = path; }""",
        str(long_qwen2),
    )
    page.fill("#text", TEXT)
    page.locator("#analyze-form [type=submit]").click()
    page.wait_for_url("**/analysis/*", timeout=TIMEOUT)
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=TIMEOUT)
    first = dataset(page, "#heatmap")
    assert first["n"] == str(N) and first["zoom"] == "1" and first["rows"] == f"0:{N}"
    assert first["level"] != "0" and first["lod"].startswith("max-pooled")  # zoomed out: pooled tiles
    assert first["axisLabels"] == "positions"
    key = page.url.split("/analysis/")[1].split("?")[0]
    meta = page.request.get(f"{live_server}/api/v1/analyses/{key}").json()
    assert meta["n"] == N and meta["truncation"]["dropped_tokens"] > 0
    screenshot(page, "long-context-16k-overview")

    # wheel-zoom about a cell until the axes name every few tokens and the cells are exact weights
    page.locator("#heatmap").evaluate("(el) => el.scrollIntoView({block: 'start'})")
    row, col = 9000, 8000
    for _ in range(40):
        d = dataset(page, "#heatmap")
        if d["axisLabels"] == "tokens" and d["level"] == "0" and float(d["cell"]) >= 12:
            break
        x, y = cell_point(page, row, col)
        page.mouse.move(x, y)
        page.mouse.wheel(0, -500)
        page.wait_for_selector(f"#heatmap:not([data-zoom='{d['zoom']}'])")
    exact_view = "#heatmap[data-state=ready][data-level='0'][data-axis-labels=tokens]"
    page.wait_for_selector(exact_view, timeout=TIMEOUT)
    d = dataset(page, "#heatmap")
    assert d["lod"] == "exact" and float(d["cell"]) >= 12
    a, b = map(int, d["rows"].split(":"))
    c, e = map(int, d["cols"].split(":"))
    assert a <= row < b and c <= col < e  # zoomed about the pointer
    tile = page.request.get(
        f"{live_server}/api/v1/analyses/{key}/tile",
        params={"layer": 0, "head": 0, "rows": f"{a}:{b}", "cols": f"{c}:{e}", "size": 1024},
    )
    assert tile.headers["x-exact"] == "true"
    exact = half(tile.body()).reshape(b - a, e - c)
    for q, k in ((row, col), (row, col - 2), (row - 1, col + 1), (b - 2, c + 1)):
        x, y = cell_point(page, q, k)
        page.mouse.move(x, y)
        page.wait_for_selector(f"#tooltip[data-q='{q}'][data-k='{k}'][data-exact=true]")
        tip = dataset(page, "#tooltip")
        assert float(tip["value"]) == exact[q - a, k - c]  # both float16 on the wire
        words = page.locator("#tooltip").inner_text()
        assert meta["tokens"][q]["display"].strip() in words and meta["tokens"][k]["display"].strip() in words
    screenshot(page, "long-context-16k-exact")

    # find a phrase: every match counted, the view brought to the first one
    page.fill("#find-input", PHRASE)
    page.keyboard.press("Enter")
    page.wait_for_selector("#heatmap[data-match='0']")
    last_char = max(t["end"] for t in meta["tokens"] if not t["special"])
    text = meta["text"]
    expected = sum(1 for i in range(len(text)) if text.startswith(PHRASE, i) and i < last_char)
    assert dataset(page, "#heatmap")["matches"] == str(expected) and expected > 100
    assert page.locator("#find-count").inner_text() == f"1 of {expected:,}"
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=TIMEOUT)
    d = dataset(page, "#heatmap")
    first_match = min(
        i for i, t in enumerate(meta["tokens"]) if not t["special"] and t["end"] > meta["text"].find(PHRASE)
    )
    a, b = map(int, d["rows"].split(":"))
    assert a <= first_match < b
    page.locator("#find-next").click()
    page.wait_for_selector("#heatmap[data-match='1']")
    assert page.locator("#find-count").inner_text() == f"2 of {expected:,}"

    # focus a query: the virtualised text panel shades the whole text by its exact row
    q = int(dataset(page, "#heatmap")["rows"].split(":")[0]) + 2
    x, y = cell_point(page, q, q)
    page.mouse.click(x, y)
    page.wait_for_selector(f"#text-panel[data-state=ready][data-focus='{q}']", timeout=TIMEOUT)
    panel = dataset(page, "#text-panel")
    assert int(panel["lines"]) > 300 and int(panel["rendered"]) < 40  # only the visible lines are in the DOM
    api = f"{live_server}/api/v1/analyses/{key}"
    row = half(page.request.get(f"{api}/row", params={"layer": 0, "head": 0, "row": q}).body())
    shaded = page.evaluate(
        "[...document.querySelectorAll('#text-panel .tp-tok[data-weight]')]"
        ".map(s => [+s.dataset.index, +s.dataset.weight])"
    )
    assert shaded and all(row[i] == np.float32(w) for i, w in shaded)
    assert page.locator(f"#text-panel .tp-tok.focused[data-index='{q}']").count() == 1

    # rows selected by dragging along the row labels list their top keys too
    d = dataset(page, "#heatmap")
    x, y = cell_point(page, q + 1, int(d["cols"].split(":")[0]))
    label_x = page.locator("#heatmap").bounding_box()["x"] + float(d["gridLeft"]) / 2
    page.mouse.move(label_x, y)
    page.mouse.down()
    page.mouse.move(label_x, y + 3 * float(d["cell"]), steps=4)
    page.mouse.up()
    page.wait_for_selector(f"#heatmap[data-select='{q + 1}:{q + 5}']")
    page.wait_for_selector(f"#range-keys[data-state=ready][data-rows='{q + 1}:{q + 5}']", timeout=TIMEOUT)

    # a range of query rows: its strongest keys, as the top-keys endpoint names them, with snippets
    page.fill("#range-from", str(q))
    page.fill("#range-to", str(q + 8))
    page.locator("#range-go").click()
    page.wait_for_selector(f"#range-keys[data-state=ready][data-rows='{q}:{q + 8}']", timeout=TIMEOUT)
    params = {"layer": 0, "head": 0, "rows": f"{q}:{q + 8}", "k": 10}
    top = page.request.get(f"{api}/top-keys", params=params).json()["keys"]
    shown = page.evaluate("[...document.querySelectorAll('#range-keys li')].map(li => +li.dataset.index)")
    assert shown == [k["index"] for k in top]
    assert page.locator("#range-keys li mark").first.inner_text().strip() != ""
    screenshot(page, "long-context-16k-navigation")

    # jump to a position: its row is focused, in a view where its label is readable
    page.fill("#jump-input", "12000")
    page.keyboard.press("Enter")
    page.wait_for_selector("#heatmap[data-focus='row:12000']")
    page.wait_for_selector("#heatmap[data-state=ready][data-axis-labels=tokens]", timeout=TIMEOUT)
    a, b = map(int, dataset(page, "#heatmap")["rows"].split(":"))
    assert a <= 12000 < b
    assert page.problems == []
