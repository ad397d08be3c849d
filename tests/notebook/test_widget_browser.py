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
    state = {"info": widget.info, "layer": layer, "head": head, "pool": "mean"}
    page.evaluate(RENDER, [esm, state])
    return widget


def drawn(page, layer, head):
    page.wait_for_selector(f'.vai-heatmap[data-state="drawn"][data-layer="{layer}"][data-head="{head}"]')


def hover_cell(page, row, col):
    """Point at token cell (row, col) of the drawn block; returns the tooltip once it describes that cell."""
    x0, y0, cell = (float(v) for v in page.get_attribute(".vai-canvas", "data-grid").split(","))
    a = int(page.get_attribute(".vai-heatmap", "data-rows").split(":")[0])
    c = int(page.get_attribute(".vai-heatmap", "data-cols").split(":")[0])
    box = page.locator(".vai-canvas").bounding_box()
    page.mouse.move(box["x"] + x0 + (col - c + 0.5) * cell, box["y"] + y0 + (row - a + 0.5) * cell)
    tooltip = page.locator(f'.vai-tooltip[data-row="{row}"][data-col="{col}"]')
    tooltip.wait_for(state="visible")
    return tooltip


def test_widget_draws_and_its_controls_ask_for_data(page, analysis, service, screenshot):
    open_widget(page, analysis, service, layer=1, head=2)
    drawn(page, 1, 2)
    page.wait_for_selector('.vai-heads[data-state="drawn"][data-layer="1"]')
    assert page.evaluate(NON_WHITE, ".vai-canvas") > 10_000
    assert page.locator(".vai-heads-grid button").count() == 12
    assert page.evaluate(NON_WHITE, '.vai-heads-grid button[data-head="0"] canvas') > 500
    assert page.get_attribute('.vai-heads-grid button[data-head="2"]', "aria-pressed") == "true"
    sent = page.evaluate("window.sent")
    tile = next(m for m in sent if m["type"] == "tile")
    assert (tile["layer"], tile["head"], tile["rows"], tile["cols"]) == (1, 2, [0, 16], [0, 16])
    assert tile["size"] >= 16 and page.get_attribute(".vai-heatmap", "data-pooled") == "false"
    assert any(m["type"] == "thumbnails" and m["layer"] == 1 for m in sent)

    # the tooltip: query and key tokens, and the store's exact float32 weight
    tooltip = hover_cell(page, 3, 5)
    exact = analysis.attention.block(1, 2, (3, 4), (0, analysis.n))[0, 5]
    assert np.float32(float(tooltip.get_attribute("data-value"))) == exact
    text = tooltip.inner_text()
    assert "#3" in text and analysis.tokens[3] in text and "#5" in text and analysis.tokens[5] in text
    shown = float(page.locator(".vai-tooltip .vai-value").inner_text())
    assert shown == pytest.approx(float(exact), rel=1e-3)
    screenshot(page, "notebook-widget")

    # the layer control: the model's traitlet is written and saved, new data is asked for and drawn
    page.select_option('select[aria-label="Layer"]', "4")
    drawn(page, 4, 2)
    page.wait_for_selector('.vai-heads[data-state="drawn"][data-layer="4"]')
    assert page.evaluate("window.saved.at(-1)") == {"layer": 4, "head": 2, "pool": "mean"}
    assert page.evaluate("window.sent.filter((m) => m.type === 'tile').at(-1)")["layer"] == 4

    # a thumbnail selects its head
    page.click('.vai-heads-grid button[data-head="7"]')
    drawn(page, 4, 7)
    assert page.get_attribute('.vai-heads-grid button[data-head="7"]', "aria-pressed") == "true"
    assert page.evaluate("window.saved.at(-1)")["head"] == 7

    # averages: the mean of the layer's heads
    page.select_option('select[aria-label="Head"]', "")
    drawn(page, 4, "mean")
    assert page.evaluate("window.saved.at(-1)")["head"] is None
    tooltip = hover_cell(page, 0, 1)
    mean = analysis.attention.block(4, None, (0, 1), (0, analysis.n))[0, 1]
    assert np.float32(float(tooltip.get_attribute("data-value"))) == mean

    # a change made from Python (the traitlet synced to the front end) redraws and moves the controls
    page.evaluate("window.model.set('layer', 0); window.model.set('head', 11)")
    drawn(page, 0, 11)
    assert page.input_value('select[aria-label="Layer"]') == "0"
    assert page.input_value('select[aria-label="Head"]') == "11"
    page.evaluate("window.cleanup()")
    assert page.locator(".vai-canvas").count() == 0
    assert page.problems == []


def test_long_input_is_read_pooled_at_screen_resolution(page, service, screenshot):
    n = 700
    rng = np.random.default_rng(3)
    logits = 3 * rng.standard_normal((2, 2, n, n)).astype(np.float32)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    result = result_over(DenseStore(weights), model_id="long", text="x" * n)
    open_widget(page, result, service, layer=1, head=0)
    drawn(page, 1, 0)
    assert page.get_attribute(".vai-heatmap", "data-pooled") == "true"
    tile = page.evaluate("window.sent.find((m) => m.type === 'tile')")
    assert tile["rows"] == [0, n] and tile["size"] < n  # the canvas' device pixels, not n
    assert page.evaluate(NON_WHITE, ".vai-canvas") > 10_000

    # a pooled cell's tooltip: the tile value of its bin, over the tokens the bin covers
    tooltip = hover_cell(page, 350, 100)
    size = tile["size"]
    pooled = result.attention.pooled(1, 0, (0, n), (0, n), size, "mean")
    rows = np.arange(size + 1) * n // size
    i, j = np.searchsorted(rows, 350, side="right") - 1, np.searchsorted(rows, 100, side="right") - 1
    assert float(tooltip.get_attribute("data-value")) == float(pooled[i, j].astype(np.float16))
    assert rows[j + 1] - rows[j] == 2  # a bin of two keys: named by its range
    key_range = f"key #{rows[j]}–{rows[j + 1] - 1}, at x"
    assert tooltip.inner_text().splitlines()[:2] == ["query #350 x", key_range]

    # dragging a rectangle reads that block exactly
    x0, y0, cell = (float(v) for v in page.get_attribute(".vai-canvas", "data-grid").split(","))
    box = page.locator(".vai-canvas").bounding_box()
    page.mouse.move(box["x"] + x0 + 10.5 * cell, box["y"] + y0 + 20.5 * cell)
    page.mouse.down()
    page.mouse.move(box["x"] + x0 + 39.5 * cell, box["y"] + y0 + 49.5 * cell)
    page.mouse.up()
    page.wait_for_selector('.vai-heatmap[data-state="drawn"][data-rows="20:50"][data-cols="10:40"]')
    assert page.get_attribute(".vai-heatmap", "data-pooled") == "false"
    tooltip = hover_cell(page, 30, 15)
    assert np.float32(float(tooltip.get_attribute("data-value"))) == weights[1, 0, 30, 15]
    screenshot(page, "notebook-widget-zoomed")
    assert page.problems == []
