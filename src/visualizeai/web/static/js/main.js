// Entry point of the analysis page: run the analysis, then let the person move through layers, heads and views.
//
// Views: each tab in #view-tabs names an ES module (data-module) exporting
//   controls: the shared controls it uses ("layer", "head"),
//   mount(panel, ctx) → {update(state) → Promise, unmount()}.
// The panel is the element #panel-<view> (created here when the template has none). Adding a view means
// adding one tab button and one module.

import { ApiError, analyze, fetchAnalysis, fetchHead } from "./api.js";
import { mountExportMenu } from "./exportmenu.js";
import { cachedLoad } from "./lru.js";
import { mount as mountPredictions } from "./predictions.js";
import { bindUrl, createStore, readUrlState } from "./state.js";
import { createTooltip } from "./tooltip.js";
import { OPTION_KEYS, bindOptions } from "./viewoptions.js";

const $ = (id) => document.getElementById(id);

const app = $("app");
const query = new URLSearchParams(window.location.search);
const input = {
  model: app.dataset.model || query.get("model") || "",
  text: app.dataset.text || query.get("text") || "",
  // An opened saved analysis (or its permalink): shown from the server's copy, no model is run.
  key: /^[0-9a-f]{8,64}$/.test(query.get("key") || "") ? query.get("key") : "",
};

const ui = {
  status: $("status"),
  statusText: $("status-text"),
  error: $("error"),
  truncation: $("truncation"),
  result: $("result"),
  metaSummary: $("meta-summary"),
  layer: $("layer"),
  head: $("head"),
  tabs: $("view-tabs"),
  summaryText: $("summary-text"),
};

const store = createStore({ view: firstViewId(), ...readUrlState() });
const tooltip = createTooltip($("tooltip"));

// ---- status, errors, notices ------------------------------------------------------------------------

function setStatus(message) {
  ui.statusText.textContent = message;
  ui.status.hidden = false;
}

function clearStatus() {
  ui.status.hidden = true;
}

function showError(err) {
  clearStatus();
  ui.error.textContent = err instanceof Error ? err.message : String(err);
  ui.error.hidden = false;
  if (!(err instanceof ApiError)) console.error(err);
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

function showTruncation(truncation) {
  const dropped = truncation ? truncation.dropped_tokens : 0;
  if (!dropped) {
    ui.truncation.hidden = true;
    return;
  }
  const tail = dropped === 1 ? "the last token was dropped" : `the last ${dropped} tokens were dropped`;
  ui.truncation.textContent =
    `Input was longer than the limit of ${truncation.max_length} tokens ` +
    `(the model's context, capped by the server's token limit); ${tail}.`;
  ui.truncation.hidden = false;
}

function describeAttention(meta) {
  const mb = Number.isFinite(meta.attention_bytes) ? ` ${(meta.attention_bytes / 1e6).toFixed(1)} MB` : "";
  return `${meta.attention_mode}${mb}`;
}

const ATTENTION_MODES = {
  captured: "Attention is recomputed on demand from the queries and keys captured during the forward pass.",
  dense: "Attention is held as dense weights (a short input, a saved file, or a model that runs eager attention).",
};

function describe(meta) {
  const parts = [
    meta.model.display_name || meta.model.id,
    `${meta.n} tokens`,
    `${meta.layers} layers × ${meta.heads} heads`,
  ];
  const timings = meta.timings || {};
  if (Number.isFinite(timings.forward_ms)) parts.push(`forward pass ${timings.forward_ms.toFixed(1)} ms`);
  else if (Number.isFinite(timings.total_ms)) parts.push(`server ${timings.total_ms.toFixed(1)} ms`);
  if (meta.attention_mode) parts.push(describeAttention(meta));
  if (meta.cached) parts.push("from cache");
  return parts.join(" · ");
}

// ---- attention loading --------------------------------------------------------------------------------

let analysisKey = null;

async function runAnalysis() {
  const meta = input.key ? await fetchSaved(input.key) : await analyze(input.model, input.text);
  analysisKey = meta.key;
  return meta;
}

async function fetchSaved(key) {
  try {
    return await fetchAnalysis(key);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    throw new ApiError(
      "This opened analysis is no longer on the server (it was restarted or dropped it from its cache). " +
        "Open the saved .npz file again from the start page.",
      404,
    );
  }
}

/** For an opened saved analysis the page learns model and text from its metadata. */
function showSavedInput(meta) {
  input.model = meta.model.id;
  input.text = meta.text;
  ui.summaryText.textContent = meta.text;
  $("summary-model").textContent = `${meta.model.id} (opened from a saved file)`;
}

let rerun = null; // the one re-analysis in flight, shared by every request that found its key gone

/**
 * Call `fetcher(key)` with the analysis key; if the server dropped the cached result (404), run the same input
 * again (once, shared by every caller) and call it with the fresh key.
 */
async function withKey(fetcher) {
  const key = analysisKey;
  try {
    return await fetcher(key);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    if (analysisKey === key) {
      rerun ??= runAnalysis().finally(() => {
        rerun = null;
      });
      await rerun;
    }
    return fetcher(analysisKey);
  }
}

/** Fetch heads on demand, keep recent ones (about 64 MB), and re-run the analysis once if it was evicted. */
function createHeadLoader(n) {
  const cache = new Map(); // "layer:head" → Promise<Float32Array>, oldest first
  const limit = Math.max(4, Math.floor((64 * 2 ** 20) / (4 * n * n)));

  const fetchWithRetry = async (layer, head) => (await withKey((key) => fetchHead(key, layer, head))).data;

  return function loadHead(layer, head) {
    return cachedLoad(cache, limit, `${layer}:${head}`, () => fetchWithRetry(layer, head));
  };
}

// ---- views --------------------------------------------------------------------------------------------

const views = new Map(); // id → {tab, module, panel, instance, controls}
let activeView = null;
let context = null; // what every view gets: {store, tooltip, loadHead, prefetch, withKey}

function firstViewId() {
  const tab = document.querySelector("#view-tabs [data-view]");
  return tab ? tab.dataset.view : "heatmap";
}

function collectViews() {
  for (const tab of ui.tabs.querySelectorAll("[role=tab][data-view]")) {
    const id = tab.dataset.view;
    const module = tab.dataset.module || "";
    if (!module.startsWith("/static/js/")) continue; // views come from our own static folder only
    let panel = $(`panel-${id}`);
    if (!panel) {
      panel = document.createElement("div");
      panel.className = "view-panel";
      panel.id = `panel-${id}`;
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", tab.id);
      panel.dataset.viewPanel = id;
      ui.result.append(panel);
    }
    views.set(id, { tab, module, panel, instance: null, controls: [] });
    tab.addEventListener("click", () => store.set({ view: id }));
  }
}

/** Drop the views that do not apply to this kind of model (a tab's data-kinds lists those it applies to). */
function hideViewsFor(kind) {
  for (const [id, v] of views) {
    const kinds = v.tab.dataset.kinds;
    if (!kinds || kinds.split(/\s+/).includes(kind)) continue;
    v.tab.hidden = true;
    v.panel.hidden = true;
    views.delete(id);
  }
}

async function activateView(id) {
  const entry = views.get(id);
  if (!entry) return;
  for (const [other, v] of views) {
    const on = other === id;
    v.tab.setAttribute("aria-selected", String(on));
    v.tab.tabIndex = on ? 0 : -1;
    v.panel.hidden = !on;
  }
  if (activeView && activeView !== entry && activeView.instance) {
    activeView.instance.unmount();
    activeView.instance = null;
  }
  activeView = entry;
  if (!entry.instance) {
    const mod = await import(entry.module);
    entry.controls = mod.controls || [];
    entry.instance = mod.mount(entry.panel, context);
  }
  for (const control of document.querySelectorAll("[data-control]")) {
    control.hidden = !entry.controls.includes(control.dataset.control);
  }
  await renderActive(store.get());
}

async function renderActive(state) {
  if (!activeView || !activeView.instance || !state.meta) return;
  try {
    await activeView.instance.update(state);
    clearError();
  } catch (err) {
    showError(err);
  }
}

// ---- controls -----------------------------------------------------------------------------------------

function fillSelect(select, count) {
  const options = [];
  for (let i = 0; i < count; i++) {
    const option = document.createElement("option");
    option.value = String(i);
    option.textContent = String(i);
    options.push(option);
  }
  select.replaceChildren(...options);
}

function syncControls(state) {
  ui.layer.value = String(state.layer);
  ui.head.value = String(state.head);
}

const clamp = (value, lo, hi) => Math.min(Math.max(value, lo), hi);

function isTyping(target) {
  return Boolean(
    target &&
      target.closest &&
      target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']"),
  );
}

function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (isTyping(event.target)) return;
  const state = store.get();
  if (!state.meta) return;
  const uses = activeView ? activeView.controls : [];
  const moves = {
    ArrowUp: ["layer", -1],
    ArrowDown: ["layer", 1],
    ArrowLeft: ["head", -1],
    ArrowRight: ["head", 1],
  };
  const move = moves[event.key];
  if (!move || !uses.includes(move[0])) return;
  const [name, delta] = move;
  const count = name === "layer" ? state.meta.layers : state.meta.heads;
  event.preventDefault();
  store.set({ [name]: clamp(state[name] + delta, 0, count - 1) });
}

// ---- start --------------------------------------------------------------------------------------------

async function start() {
  collectViews();
  if (!ui.summaryText.textContent.trim()) ui.summaryText.textContent = input.text;
  if (!input.key && !input.text.trim()) {
    showError(new ApiError("There is no text to analyze. Start a new analysis and enter some text.", 0));
    return;
  }

  setStatus(input.key ? "Loading the saved analysis…" : "Tokenizing and running the model…");
  let meta;
  try {
    meta = await runAnalysis();
  } catch (err) {
    showError(err);
    return;
  }

  if (input.key) showSavedInput(meta);
  showTruncation(meta.truncation);
  ui.metaSummary.textContent = describe(meta);
  ui.metaSummary.title = ATTENTION_MODES[meta.attention_mode] || "";
  fillSelect(ui.layer, meta.layers);
  fillSelect(ui.head, meta.heads);
  hideViewsFor(meta.model.kind);

  const wanted = store.get();
  store.set({
    meta,
    layer: clamp(wanted.layer, 0, meta.layers - 1),
    head: clamp(wanted.head, 0, meta.heads - 1),
    view: views.has(wanted.view) ? wanted.view : firstViewId(),
  });
  syncControls(store.get());
  bindUrl(store);
  bindOptions(store); // the shared view-option checkboxes (hide special tokens, merge words, means)

  store.subscribe((state, previous) => {
    syncControls(state);
    if (state.view !== previous.view) activateView(state.view).catch(showError);
    else if (["layer", "head", ...OPTION_KEYS].some((k) => state[k] !== previous[k])) renderActive(state);
  });
  ui.layer.addEventListener("change", () => store.set({ layer: Number(ui.layer.value) }));
  ui.head.addEventListener("change", () => store.set({ head: Number(ui.head.value) }));
  document.addEventListener("keydown", onKey);

  const loadHead = createHeadLoader(meta.n);
  const prefetch = (layer, head) => {
    loadHead(layer, head).catch(() => {}); // a failure shows up when that head is actually asked for
  };
  context = { store, tooltip, loadHead, prefetch, withKey };
  mountExportMenu($("export-menu"), { store, loadHead, getKey: () => analysisKey, onError: showError });
  mountPredictions($("predictions"), { store, meta, model: input.model });
  setStatus("Fetching attention…");
  ui.result.hidden = false;
  try {
    await activateView(store.get().view);
  } catch (err) {
    showError(err);
    return;
  }
  if (ui.error.hidden) clearStatus();
}

start();
