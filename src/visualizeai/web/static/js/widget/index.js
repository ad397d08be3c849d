// The notebook widget (anywidget): layer, head and pooling controls over the heatmap and the All heads views,
// mounted with a data source that talks to the Python kernel through the widget model's custom messages.
// The model's `layer`, `head` (null: averaged) and `pool` traitlets are the view state, shared with Python.

import { el, option } from "../lib/dom.js";
import { mount as mountHeatmap } from "./heatmap.js";
import { mount as mountHeads } from "./heads.js";
import { createModelSource } from "./source.js";
import { rgb, format, interpolateBlues, interpolateRdBu, interpolateViridis } from "d3";
import { scaleLinear, scaleLog, scalePow, scaleSqrt } from "d3";

// lib/color.js reads d3 from globalThis (the web pages load it as a classic script); give it the parts it uses,
// unless the page has a d3 already.
globalThis.d3 ??= {
  rgb, format, interpolateBlues, interpolateRdBu, interpolateViridis, scaleLinear, scaleLog, scalePow, scaleSqrt,
};

const AVERAGE = ""; // the <select> value of an averaged axis

function select(label, count, averageLabel) {
  const node = el("select", { attrs: { "aria-label": label } });
  node.append(option(AVERAGE, averageLabel));
  for (let i = 0; i < count; i++) node.append(option(i, String(i)));
  return node;
}

const toValue = (index) => (index === null || index === undefined ? AVERAGE : String(index));
const toIndex = (value) => (value === AVERAGE ? null : Number(value));

function render({ model, el: host }) {
  const controller = new AbortController();
  const { signal } = controller;
  const source = createModelSource(model);
  const info = source.info;

  const layer = select("Layer", info.layers, "mean of layers");
  const head = select("Head", info.heads, "mean of heads");
  const pool = el("select", { attrs: { "aria-label": "Pooling" } }, option("mean", "mean"), option("max", "max"));
  const model_ = info.model || {};
  const summary = el("span", {
    className: "vai-summary",
    text: `${model_.display_name || model_.id || "model"} · ${info.n} tokens · ${info.layers} layers × ${info.heads} heads`,
  });
  const controls = el(
    "div",
    { className: "vai-controls" },
    el("label", {}, "Layer ", layer),
    el("label", {}, "Head ", head),
    el("label", { title: "How a block of cells becomes one pixel when the matrix is larger than the canvas" }, "Pool ", pool),
    summary,
  );
  const heatmapPanel = el("section", { className: "vai-panel vai-heatmap", attrs: { "aria-label": "Heatmap" } });
  const headsPanel = el("section", { className: "vai-panel vai-heads", attrs: { "aria-label": "All heads" } });
  const root = el("div", { className: "vai-widget" }, controls, el("div", { className: "vai-views" }, heatmapPanel, headsPanel));
  host.replaceChildren(root);

  const state = () => ({ layer: model.get("layer"), head: model.get("head"), pool: model.get("pool") });
  function commit(patch) {
    for (const [name, value] of Object.entries(patch)) model.set(name, value);
    model.save_changes();
  }
  const ctx = { source, select: commit };
  const views = [mountHeatmap(heatmapPanel, ctx), mountHeads(headsPanel, ctx)];

  function refresh() {
    const now = state();
    layer.value = toValue(now.layer);
    head.value = toValue(now.head);
    pool.value = now.pool;
    return Promise.all(views.map((view) => view.update(now)));
  }

  layer.addEventListener("change", () => commit({ layer: toIndex(layer.value) }), { signal });
  head.addEventListener("change", () => commit({ head: toIndex(head.value) }), { signal });
  pool.addEventListener("change", () => commit({ pool: pool.value }), { signal });
  // one redraw per batch of changes (a Python assignment or a control), whichever traitlets it touched
  let queued = false;
  function onChange() {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      if (!signal.aborted) refresh();
    });
  }
  const events = ["change:layer", "change:head", "change:pool"];
  for (const name of events) model.on(name, onChange);
  refresh();

  return () => {
    controller.abort();
    for (const name of events) model.off(name, onChange);
    for (const view of views) view.unmount();
    source.close();
  };
}

export default { render };
