"""The widget's ES module (static/dist/widget.js, what ``show`` hands to anywidget) rendered in Chromium with
a stand-in anywidget model whose ``send`` is answered by the real ``MessageHandler`` of a real analysis: it
draws, its controls ask for new data and write the model's traitlets, and the tooltip names the right tokens
and the store's exact weight."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fake_results import result_over

from visualizeai import notebook
from visualizeai.attention.store import DenseStore
from visualizeai.config import Settings
from visualizeai.service import Service

pytestmark = [pytest.mark.browser, pytest.mark.models]

TEXT = "The animal didn't cross the street because it was too tired."
ORIGIN = "http://widget.test"

# A page standing in for the notebook front end: anywidget imports the `_esm` text as a module and calls its
# default export's render({model, el}); the model relays custom messages to the kernel (here window.kernel).
HARNESS = """<!doctype html><meta charset="utf-8"><title>widget</title><style>%s</style><div id="host"></div>
<script>
window.makeModel = (state) => {
  const listeners = new Map();
  const emit = (name, ...args) => (listeners.get(name) || []).slice().forEach((cb) => cb(...args));
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  window.sent = [];
  window.saved = [];
  return {
    get: (name) => state[name],
    set(name, value) {
      if (state[name] === value) return;
      state[name] = value;
      emit(`change:${name}`, value);
    },
    on(name, cb) { listeners.set(name, [...(listeners.get(name) || []), cb]); },
    off(name, cb) { listeners.set(name, (listeners.get(name) || []).filter((f) => f !== cb)); },
    save_changes() { window.saved.push({ layer: state.layer, head: state.head, pool: state.pool }); },
    send(content) {
      window.sent.push(content);
      window.kernel(content).then(({ reply, buffers }) => {
        emit("msg:custom", reply, buffers.map((b) => { const u = bytes(b); return new DataView(u.buffer); }));
      });
    },
  };
};
</script>"""

RENDER = """async ([esm, state]) => {
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const widget = (await import(url)).default;
  window.model = window.makeModel(state);
  window.cleanup = widget.render({ model: window.model, el: document.getElementById("host") });
}"""

NON_WHITE = """(selector) => {
  const c = document.querySelector(selector);
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let count = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) count++;
  }
  return count;
}"""


@pytest.fixture(scope="module")
def service():
    return Service(Settings(offline=True))


@pytest.fixture(scope="module")
def analysis(service):
    """A real analysis of a short text with the embedded default model."""
    return service.analyze(TEXT).result


def open_widget(page, result, service, layer=1, head=2):
    """Render the widget of ``result`` in ``page``; returns the handler answering its requests."""
    widget = notebook.show(result, layer=layer, head=head, service=service)
    handler = widget.handler

    def kernel(content):
        reply, buffers = handler.handle(content)
        return {"reply": reply, "buffers": [base64.b64encode(b).decode("ascii") for b in buffers]}

    css, esm = widget._css, widget._esm
    page.route(f"{ORIGIN}/", lambda route: route.fulfill(content_type="text/html", body=HARNESS % css))
    page.expose_function("kernel", kernel)
    page.goto(f"{ORIGIN}/")
    state = {"info": widget.info, "layer": layer, "head": head, "pool": widget.pool}
    page.evaluate(RENDER, [esm, state])
    return widget


def drawn(page, layer, head, agg="none"):
    """Wait until the heatmap shows (layer, head) with every visible tile drawn."""
    page.wait_for_selector(
        f'.heatmap-wrap[data-state="ready"][data-layer="{layer}"][data-head="{head}"][data-agg="{agg}"]'
    )


def hover_cell(page, row, col):
    """Point at cell (row, col) of the heatmap; returns the tooltip once it shows that cell's value."""
    wrap = page.locator(".heatmap-wrap")
    d = {k: float(wrap.get_attribute(f"data-{k}")) for k in ("x0", "y0", "cell", "grid-left", "grid-top")}
    box = wrap.bounding_box()
    x = box["x"] + d["grid-left"] + (col + 0.5 - d["x0"]) * d["cell"]
    y = box["y"] + d["grid-top"] + (row + 0.5 - d["y0"]) * d["cell"]
    page.mouse.move(x, y)
    tooltip = page.locator(f'.tooltip[data-q="{row}"][data-k="{col}"][data-value]')
    tooltip.wait_for(state="visible")
    return tooltip


def test_widget_draws_and_its_controls_ask_for_data(page, analysis, service, screenshot):
    open_widget(page, analysis, service, layer=1, head=2)
    drawn(page, 1, 2)
    assert page.evaluate(NON_WHITE, ".heatmap-cells") > 10_000
    sent = page.evaluate("window.sent")
    tile = next(m for m in sent if m["type"] == "tile")
    assert (tile["layer"], tile["head"], tile["rows"], tile["cols"]) == (1, 2, [0, 16], [0, 16])
    assert tile["size"] >= 16 and page.get_attribute(".heatmap-wrap", "data-lod") == "exact"

    # the tooltip: query and key tokens, and the store's weight (as the float16 tile carries it)
    tooltip = hover_cell(page, 3, 5)
    exact = analysis.attention.block(1, 2, (3, 4), (0, analysis.n))[0, 5]
    assert float(tooltip.get_attribute("data-value")) == float(np.float16(exact))
    assert tooltip.get_attribute("data-exact") == "true"
    text = tooltip.inner_text()
    assert f"{analysis.tokens[3]} → {analysis.tokens[5]}" in text and "q=3 k=5" in text
    shown = float(page.locator(".tooltip .value").inner_text())
    assert shown == pytest.approx(float(exact), rel=1e-3)
    screenshot(page, "notebook-widget")

    # the layer control: the model's traitlet is written and saved, new data is asked for and drawn
    before = page.evaluate("window.sent.length")
    page.select_option('select[aria-label="Layer"]', "4")
    drawn(page, 4, 2)
    assert page.evaluate("window.saved.at(-1)")["layer"] == 4
    asked = page.evaluate(f"window.sent.slice({before}).filter((m) => m.type === 'tile')")
    assert any((m["layer"], m["head"]) == (4, 2) for m in asked)  # (and the neighbours', fetched ahead)

    # All heads: every head's thumbnail, the selected one marked; clicking one opens it in the heatmap
    page.click('.vai-tab[data-tab="heads"]')
    page.wait_for_selector('.overview-grid[data-state="ready"]')
    assert page.locator("button.thumb").count() == 6 * 12
    assert page.evaluate(NON_WHITE, 'button.thumb[data-layer="0"][data-head="0"] canvas') > 100
    current = page.locator("button.thumb.current")
    assert (current.get_attribute("data-layer"), current.get_attribute("data-head")) == ("4", "2")
    thumbs = [m for m in page.evaluate("window.sent") if m["type"] == "thumbnails"]
    assert sorted(m["layer"] for m in thumbs) == list(range(6))  # one layer per request
    screenshot(page, "notebook-widget-heads")
    page.click('button.thumb[data-layer="3"][data-head="7"]')
    drawn(page, 3, 7)
    assert {k: page.evaluate("window.saved.at(-1)")[k] for k in ("layer", "head")} == {"layer": 3, "head": 7}
    assert page.get_attribute(".vai-widget", "data-tab") == "heatmap"

    # averages: the mean of the layer's heads
    before = page.evaluate("window.sent.length")
    page.select_option('select[aria-label="Layer"]', "4")
    page.select_option('select[aria-label="Head"]', "")
    drawn(page, 4, 0, agg="mean_heads")
    assert page.evaluate("window.saved.at(-1)")["head"] is None
    asked = page.evaluate(f"window.sent.slice({before}).filter((m) => m.type === 'tile')")
    assert any((m["layer"], m["head"]) == (4, None) for m in asked)
    tooltip = hover_cell(page, 0, 1)
    mean = analysis.attention.block(4, None, (0, 1), (0, analysis.n))[0, 1]
    assert float(tooltip.get_attribute("data-value")) == float(np.float16(mean))

    # hiding the special tokens: the whole displayed matrix comes from the kernel, rows renormalised
    page.check("text=hide special")
    page.wait_for_selector('.heatmap-wrap[data-state="ready"][data-n="14"]')
    asked = page.evaluate("window.sent.filter((m) => m.type === 'attention').at(-1)")
    assert (asked["layer"], asked["agg"], asked["hideSpecial"]) == (4, "mean_heads", True)
    page.uncheck("text=hide special")
    page.wait_for_selector('.heatmap-wrap[data-state="ready"][data-n="16"]')

    # a change made from Python (the traitlet synced to the front end) redraws and moves the controls
    page.evaluate("window.model.set('layer', 0); window.model.set('head', 11)")
    drawn(page, 0, 11)
    assert page.input_value('select[aria-label="Layer"]') == "0"
    assert page.input_value('select[aria-label="Head"]') == "11"
    page.evaluate("window.cleanup()")
    assert page.locator(".heatmap-cells").count() == 0
    assert page.problems == []


def test_long_input_is_read_pooled_at_screen_resolution(page, service, screenshot):
    n = 1100
    rng = np.random.default_rng(3)
    logits = 3 * rng.standard_normal((1, 2, n, n)).astype(np.float32)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    result = result_over(DenseStore(weights), model_id="long", text="x" * n)
    open_widget(page, result, service, layer=0, head=1)
    drawn(page, 0, 1)
    tiles = [m for m in page.evaluate("window.sent") if m["type"] == "tile"]
    assert tiles[0]["rows"] == [0, n] and tiles[0]["size"] < n  # the screen's resolution, not n
    assert page.get_attribute(".heatmap-wrap", "data-lod").startswith("max-pooled")
    assert page.evaluate(NON_WHITE, ".heatmap-cells") > 10_000

    # a pooled cell's tooltip: the maximum of the block of weights it stands for (a block of 2 × 2 weights,
    # picked where that maximum is large, so the float16 value is far from zero)
    size = tiles[0]["size"]
    edges = np.arange(size + 1) * n // size
    wide = [i for i in range(size) if edges[i + 1] - edges[i] == 2][20:50]
    blocks = {
        (i, j): weights[0, 1, edges[i] : edges[i + 1], edges[j] : edges[j + 1]].max()
        for i in wide
        for j in wide
    }
    i, j = max(blocks, key=blocks.get)
    tooltip = hover_cell(page, int(edges[i]), int(edges[j]))
    assert tooltip.get_attribute("data-exact") == "false"
    a, b, c, d = edges[i], edges[i + 1] - 1, edges[j], edges[j + 1] - 1
    assert f"max of rows {a}–{b}, columns {c}–{d}" in tooltip.inner_text()
    assert float(tooltip.get_attribute("data-value")) == float(np.float16(blocks[i, j])) > 0

    # zooming in reads finer tiles until they hold the weights themselves
    for _ in range(12):
        if page.get_attribute(".heatmap-wrap", "data-lod") == "exact":
            break
        zoom = page.get_attribute(".heatmap-wrap", "data-zoom")
        page.click("#zoom-in")
        page.wait_for_selector(f'.heatmap-wrap[data-state="ready"]:not([data-zoom="{zoom}"])')
    assert page.get_attribute(".heatmap-wrap", "data-lod") == "exact"
    r0, r1 = (int(v) for v in page.get_attribute(".heatmap-wrap", "data-rows").split(":"))
    c0, c1 = (int(v) for v in page.get_attribute(".heatmap-wrap", "data-cols").split(":"))
    row, col = (r0 + r1) // 2, (c0 + c1) // 2
    tooltip = hover_cell(page, row, col)
    assert tooltip.get_attribute("data-exact") == "true"
    assert float(tooltip.get_attribute("data-value")) == float(np.float16(weights[0, 1, row, col]))
    screenshot(page, "notebook-widget-zoomed")
    assert page.problems == []
