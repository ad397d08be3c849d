// The notebook widget (anywidget): layer and head controls (with averages) over two of the page's views, the
// deep-zoom Heatmap (js/views/heatmap.js) and All heads (js/views/overview.js: every head's thumbnail, a click
// opens it in the heatmap), mounted with a data source that talks to the Python kernel through the widget
// model's custom messages (./source.js).
// The model's `layer`, `head` (null: averaged) and `pool` traitlets are the view state shared with Python; the
// views' other settings (colour scale, zoom, focus, token options) live in this widget's view only.

import { rgb, format, interpolateBlues, interpolateRdBu, interpolateViridis } from "d3";
import { scaleLinear, scaleLog, scalePow, scaleSqrt } from "d3";
import { createTooltip, el, option } from "../lib/dom.js";
import { mount as mountHeatmap } from "../views/heatmap.js";
import { mount as mountOverview } from "../views/overview.js";
import { createModelSource } from "./source.js";

// lib/color.js reads d3 from globalThis (the web pages load it as a classic script); give it the parts it uses,
// unless the page has a d3 already.
globalThis.d3 ??= {
  rgb, format, interpolateBlues, interpolateRdBu, interpolateViridis, scaleLinear, scaleLog, scalePow, scaleSqrt,
};

const AVERAGE = ""; // the <select> value of an averaged axis
const TABS = [
  ["heatmap", "Heatmap"],
  ["heads", "All heads"],
];

function indexSelect(label, count, averageLabel) {
  const node = el("select", { attrs: { "aria-label": label } });
  node.append(option(AVERAGE, averageLabel));
  for (let i = 0; i < count; i++) node.append(option(i, String(i)));
  return node;
}

const toValue = (index) => (index === null || index === undefined ? AVERAGE : String(index));
const toIndex = (value) => (value === AVERAGE ? null : Number(value));
const TRAITS = new Set(["layer", "head", "pool"]);

/** The views' state for the model's selection: the shared views name averages with meanLayers/meanHeads. */
function viewState(info, model, local) {
  const layer = model.get("layer");
  const head = model.get("head");
  return {
    meta: info,
    layer: layer ?? 0,
    head: head ?? 0,
    meanLayers: layer === null,
    meanHeads: head === null,
    pool: model.get("pool"),
    hideSpecial: local.hideSpecial,
    mergeWords: local.mergeWords,
  };
}

function render({ model, el: host }) {
  const controller = new AbortController();
  const { signal } = controller;
  const on = (target, type, fn) => target.addEventListener(type, fn, { signal });
  const source = createModelSource(model);
  const info = source.info;
  const local = { tab: "heatmap", hideSpecial: false, mergeWords: false };

  const layer = indexSelect("Layer", info.layers, "mean of layers");
  const head = indexSelect("Head", info.heads, "mean of heads");
  const hideSpecial = el("input", { attrs: { type: "checkbox" } });
  const mergeWords = el("input", { attrs: { type: "checkbox" } });
  const tabs = TABS.map(([name, text]) =>
    el("button", { className: "vai-tab", text, dataset: { tab: name }, attrs: { type: "button", role: "tab" } }),
  );
  const about = info.model || {};
  const controls = el(
    "div",
    { className: "vai-controls" },
    el("div", { className: "vai-tabs", attrs: { role: "tablist" } }, ...tabs),
    el("label", {}, "Layer ", layer),
    el("label", {}, "Head ", head),
    el("label", { title: "Hide special tokens and renormalise rows (short inputs)" }, hideSpecial, " hide special"),
    el("label", { title: "Merge subword pieces into words (short inputs)" }, mergeWords, " merge words"),
    el("span", {
      className: "vai-summary",
      text: `${about.display_name || about.id || "model"} · ${info.n} tokens · ${info.layers} layers × ${info.heads} heads`,
    }),
  );
  const panels = {
    heatmap: el("section", { className: "vai-panel", attrs: { role: "tabpanel", "aria-label": "Heatmap" } }),
    heads: el("section", { className: "vai-panel", attrs: { role: "tabpanel", "aria-label": "All heads" } }),
  };
  const tooltipBox = el("div", { className: "tooltip", attrs: { role: "tooltip" }, hidden: true });
  const root = el("div", { className: "vai-widget" }, controls, panels.heatmap, panels.heads, tooltipBox);
  host.replaceChildren(root);

  /** Write the traitlets in `patch` to the model (one save); other keys stay in this view. */
  function commit(patch) {
    let traits = false;
    for (const [name, value] of Object.entries(patch)) {
      if (TRAITS.has(name)) {
        model.set(name, name === "pool" ? value || "max" : value);
        traits = true;
      } else if (name === "view") showTab(value === "heatmap" ? "heatmap" : "heads");
      else local[name] = value;
    }
    if (traits) model.save_changes();
  }
  // the views' store: the page keeps view state in the URL, the widget in the model and in `local`
  const store = {
    get: () => ({ ...local, layer: model.get("layer"), head: model.get("head"), pool: model.get("pool") }),
    set: commit,
  };
  const tooltip = createTooltip(tooltipBox);
  const ctx = { source, store, tooltip, expose() {} }; // expose: the page's debug hook, none in a notebook
  const views = { heatmap: mountHeatmap(panels.heatmap, ctx), heads: mountOverview(panels.heads, ctx) };

  function refresh() {
    layer.value = toValue(model.get("layer"));
    head.value = toValue(model.get("head"));
    // only the visible view is sized and read; the overview marks the selected head (none for an average)
    const state = viewState(info, model, local);
    if (local.tab === "heads") Object.assign(state, { layer: model.get("layer"), head: model.get("head") });
    return views[local.tab].update(state);
  }

  function showTab(name) {
    local.tab = name;
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    for (const [key, panel] of Object.entries(panels)) panel.hidden = key !== name;
    tooltip.hide();
    root.dataset.tab = name;
    refresh();
  }

  for (const tab of tabs) on(tab, "click", () => showTab(tab.dataset.tab));
  on(layer, "change", () => commit({ layer: toIndex(layer.value) }));
  on(head, "change", () => commit({ head: toIndex(head.value) }));
  on(hideSpecial, "change", () => {
    local.hideSpecial = hideSpecial.checked;
    refresh();
  });
  on(mergeWords, "change", () => {
    local.mergeWords = mergeWords.checked;
    refresh();
  });
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
  showTab("heatmap");

  return () => {
    controller.abort();
    for (const name of events) model.off(name, onChange);
    for (const view of Object.values(views)) view.unmount();
    source.close();
    host.replaceChildren();
  };
}

export default { render };
