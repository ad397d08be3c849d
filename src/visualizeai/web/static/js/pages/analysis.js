// The analysis page: load the analysis (by key from #app's data-key, or run a legacy ?text= input), then let the
// person move through layers, heads and views. The view state lives in the URL (lib/state.js); the text never
// does: the address becomes /analysis/{key}?view=… as soon as the key is known.
//
// Views: each tab in #view-tabs names an ES module (data-module) exporting
//   controls: the shared controls it uses ("layer", "head", "aggregate", "tokens"),
//   keys (optional): what its own keys do, [[["↑", "↓"], "what they do"], …], for the tab's keys hint,
//   mount(panel, ctx) → {update(state) → Promise, unmount()}.
// The panel is the element #panel-<view> (created here when the template has none). What a view gets, `ctx`:
//   source        the data source (lib/source_http.js): info, tile, row, topKeys, thumbnails, head, attention, …,
//                 and the vector views' qkMap and neuron
//   store         the page state (lib/state.js): get(), set(patch), subscribe(fn)
//   tooltip       the shared tooltip: show(nodes, clientX, clientY), hide(), element
//   marks         {rowMarks(meta) → [{position, kind}], onLabelDoubleClick(positions)}: what the predictions
//                 strip asks the heatmap to outline, and its click-to-mask (either may be null)
//   setFigure(fn) the view offers fn() → (a promise of) what the Export menu draws: a matrix {matrix, labels,
//                 special, colorScale, caption} or a scene {scene, caption, name} (views/exportmenu.js); null: none.
//                 Each view registers its own when mounted; switching tabs forgets the last one's
//   expose(data)  the debug hook: window.visualizeai.view = data (what tests read)
//   memo          a Map that outlives a view's unmount, for what a view keeps across tab switches
//   openText(text, state?) analyse `text` with the same model and open its page (click-to-mask, generation)

import { ApiError, analysisPath, analyze, fetchAnalysis } from "../lib/api.js";
import { createTooltip, fillSelect, isTyping } from "../lib/dom.js";
import { OPTION_KEYS } from "../lib/options.js";
import { createHttpSource } from "../lib/source_http.js";
import { bindUrl, createStore, readUrlState, viewQuery } from "../lib/state.js";
import { mount as mountExportMenu } from "../views/exportmenu.js";
import { mount as mountPredictions } from "../views/predictions.js";

const $ = (id) => document.getElementById(id);
const KEY_PATTERN = /^[0-9a-f]{8,64}$/;

const app = $("app");
const query = new URLSearchParams(window.location.search);
const input = {
  model: app.dataset.model || query.get("model") || "",
  text: app.dataset.text || query.get("text") || "",
  // The page of a cached analysis (/analysis/{key}), or a legacy ?key= link.
  key: [app.dataset.key, query.get("key")].find((k) => KEY_PATTERN.test(k || "")) || "",
};

const ui = {
  inputView: $("input-view"),
  inputEdit: $("input-edit"),
  inputForm: $("input-form"),
  inputModel: $("input-model"),
  inputModelOther: $("input-model-other"),
  inputText: $("input-text"),
  editInput: $("edit-input"),
  helpToggle: $("help-toggle"),
  helpPanel: $("help-panel"),
  keysHint: $("keys-hint"),
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
const debug = { page: "analysis", store, view: null };
window.visualizeai = debug;

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
  if (meta.attention_mode) {
    const mb = Number.isFinite(meta.attention_bytes) ? ` ${(meta.attention_bytes / 1e6).toFixed(1)} MB` : "";
    parts.push(`${meta.attention_mode}${mb}`);
  }
  if (meta.cached) parts.push("from cache");
  return parts.join(" · ");
}

// ---- the analysis ---------------------------------------------------------------------------------------

async function loadMeta() {
  if (!input.key) return analyze(input.model, input.text);
  try {
    return await fetchAnalysis(input.key);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    throw new ApiError(
      "This analysis is no longer on the server (it was restarted or dropped it from its cache). " +
        "Start it again from the start page, or open the saved .npz file again.",
      404,
    );
  }
}

/** The same model and text again, for a result the server has dropped meanwhile. */
function rerun(meta) {
  return () => analyze(meta.model.id, meta.text);
}

/** Analyse `text` with this page's model and open its keyed page with the current view (and `state`). */
async function openText(text, state = {}) {
  const meta = store.get().meta;
  await openInput(meta.model.id, text, { zoom: undefined, ...state });
}

/**
 * Analyse `text` with `model` and open its keyed page carrying the current view state merged with `state`
 * (the new page clamps the layer and head to its model). Resolves false, with the error shown, on a refusal.
 */
async function openInput(model, text, state = {}) {
  setStatus("Running the model on the new text…");
  clearError();
  try {
    const fresh = await analyze(model, text);
    window.location.assign(analysisPath(fresh.key, viewQuery({ ...store.get(), ...state })));
    return true;
  } catch (err) {
    showError(err);
    return false;
  }
}

// ---- edit and re-run in place ---------------------------------------------------------------------------

/** Positions of tokens mean nothing in another text: a re-run keeps the tab, layer, head and options only. */
const RERUN_DROPS = {
  zoom: undefined,
  focus: undefined,
  focusAxis: undefined,
  select: undefined,
  headviewPin: undefined,
};

function setEditing(on) {
  ui.inputEdit.hidden = !on;
  ui.inputView.hidden = on;
  ui.editInput.setAttribute("aria-expanded", String(on));
}

/** The model the editor names: a catalog entry of the select, or what is typed for "Other". */
function chosenModel() {
  const other = ui.inputModel.selectedOptions[0] && ui.inputModel.selectedOptions[0].dataset.other;
  return other ? ui.inputModelOther.value.trim() : ui.inputModel.value;
}

function showOther() {
  const other = Boolean(ui.inputModel.selectedOptions[0] && ui.inputModel.selectedOptions[0].dataset.other);
  ui.inputModelOther.hidden = !other;
  return other;
}

function bindEditor(meta) {
  const catalog = [...ui.inputModel.options].some((o) => !o.dataset.other && o.value === meta.model.id);
  ui.editInput.addEventListener("click", () => {
    // a model outside the catalog (a hub id, a local directory) is shown as "Other" with its id
    if (catalog) ui.inputModel.value = meta.model.id;
    else ui.inputModel.selectedIndex = ui.inputModel.options.length - 1;
    ui.inputModelOther.value = catalog ? "" : meta.model.id;
    showOther();
    ui.inputText.value = meta.text;
    setEditing(true);
    ui.inputText.focus();
  });
  ui.inputModel.addEventListener("change", () => {
    if (showOther()) ui.inputModelOther.focus();
  });
  $("cancel-edit").addEventListener("click", () => {
    setEditing(false);
    ui.editInput.focus();
  });
  ui.inputText.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      ui.inputForm.requestSubmit();
    }
  });
  ui.inputForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = ui.inputText.value;
    if (!text.trim()) {
      showError(new ApiError("There is no text to analyze: enter some text.", 0));
      return;
    }
    const rerun = $("rerun");
    rerun.disabled = true;
    const model = chosenModel();
    if (!model) {
      showError(new ApiError("Name the model: a hub id or a local directory the server allows.", 0));
      return;
    }
    const opened = await openInput(model, text, RERUN_DROPS);
    if (!opened) rerun.disabled = false;
  });
}

// ---- help and keys ------------------------------------------------------------------------------------

/** Keys of the views whose modules do not list them (the heatmap's own keys, from its module). */
const VIEW_KEYS = {
  heatmap: [
    [["+", "-"], "zoom"],
    [["0"], "reset the zoom"],
    [["/"], "find"],
    [["Esc"], "clear the focus or selection"],
  ],
};

function bindHelp() {
  ui.helpToggle.addEventListener("click", () => {
    const open = ui.helpPanel.hidden;
    ui.helpPanel.hidden = !open;
    ui.helpToggle.setAttribute("aria-expanded", String(open));
  });
}

/** The keys hint of the active tab: the shared controls' arrows it uses, then what its own keys do. */
function showKeys(id, entry) {
  const list = [];
  if (entry.controls.includes("layer")) list.push([["↑", "↓"], "layer"]);
  if (entry.controls.includes("head")) list.push([["←", "→"], "head"]);
  list.push(...(entry.keys || []));
  const parts = [];
  list.forEach(([keys, what], i) => {
    if (i) parts.push("; ");
    keys.forEach((key, j) => {
      if (j) parts.push("/");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      parts.push(kbd);
    });
    parts.push(` ${what}`);
  });
  ui.keysHint.replaceChildren(...(parts.length ? ["Keys on this tab: ", ...parts, "."] : ["This tab has no keys of its own."]));
  ui.keysHint.dataset.view = id;
}

function showInput(meta) {
  ui.summaryText.textContent = meta.text;
  const model = $("summary-model");
  // An analysis opened from a saved .npz file (open.js adds ?opened=file): no model was run for it.
  const opened = query.get("opened") === "file" ? " (opened from a saved file)" : "";
  if (model) model.textContent = `${meta.model.id}${opened}`;
}

// ---- views --------------------------------------------------------------------------------------------

const views = new Map(); // id → {tab, module, panel, instance, controls}
let activeView = null;
let context = null;
let figure = null; // what the active view offers for figure exports

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
    views.set(id, { tab, module, panel, instance: null, controls: [], keys: [] });
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
    figure = null; // the figure of the view just left: the next view offers its own
  }
  activeView = entry;
  if (!entry.instance) {
    const mod = await import(entry.module);
    entry.controls = mod.controls || [];
    entry.keys = mod.keys || VIEW_KEYS[id] || [];
    entry.instance = mod.mount(entry.panel, context);
  }
  for (const control of document.querySelectorAll("[data-control]")) {
    control.hidden = !entry.controls.includes(control.dataset.control);
  }
  showKeys(id, entry);
  await renderActive(store.get());
}

async function renderActive(state) {
  if (!activeView || !activeView.instance || !state.meta) return;
  try {
    await activeView.instance.update(state);
    clearError();
  } catch (err) {
    if (err && err.name === "AbortError") return;
    showError(err);
  }
}

// ---- controls -----------------------------------------------------------------------------------------

const OPTION_BOXES = { meanHeads: "mean-heads", meanLayers: "mean-layers", hideSpecial: "hide-special", mergeWords: "merge-words" };

/** Keep the shared option checkboxes and the store in step. */
function bindOptions() {
  const sync = (state) => {
    for (const [key, id] of Object.entries(OPTION_BOXES)) {
      const box = $(id);
      if (box) box.checked = Boolean(state[key]);
    }
    const note = $("renormalized-note");
    if (note) note.hidden = !state.hideSpecial;
  };
  for (const [key, id] of Object.entries(OPTION_BOXES)) {
    const box = $(id);
    if (box) box.addEventListener("change", () => store.set({ [key]: box.checked }));
  }
  store.subscribe((state, previous) => {
    if (OPTION_KEYS.some((k) => state[k] !== previous[k])) sync(state);
  });
  sync(store.get());
}

function syncControls(state) {
  ui.layer.value = String(state.layer);
  ui.head.value = String(state.head);
}

const clamp = (value, lo, hi) => Math.min(Math.max(value, lo), hi);

function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (isTyping(event.target)) return;
  const state = store.get();
  if (!state.meta) return;
  const uses = activeView ? activeView.controls : [];
  const moves = { ArrowUp: ["layer", -1], ArrowDown: ["layer", 1], ArrowLeft: ["head", -1], ArrowRight: ["head", 1] };
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
  bindHelp();
  if (!ui.summaryText.textContent.trim()) ui.summaryText.textContent = input.text;
  if (!input.key && !input.text.trim()) {
    showError(new ApiError("There is no text to analyze. Start a new analysis and enter some text.", 0));
    return;
  }

  setStatus(input.key ? "Loading the analysis…" : "Tokenizing and running the model…");
  const first = views.get(store.get().view);
  if (first) import(first.module).catch(() => {}); // its modules load while the metadata does
  let meta;
  try {
    meta = await loadMeta();
  } catch (err) {
    showError(err);
    return;
  }

  showInput(meta);
  bindEditor(meta);
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
  bindUrl(store, { path: analysisPath(meta.key) });
  bindOptions();

  store.subscribe((state, previous) => {
    syncControls(state);
    if (state.view !== previous.view) activateView(state.view).catch(showError);
    else if (["layer", "head", ...OPTION_KEYS].some((k) => state[k] !== previous[k])) renderActive(state);
  });
  ui.layer.addEventListener("change", () => store.set({ layer: Number(ui.layer.value) }));
  ui.head.addEventListener("change", () => store.set({ head: Number(ui.head.value) }));
  document.addEventListener("keydown", onKey);

  const source = createHttpSource(meta, { rerun: rerun(meta) });
  context = {
    source,
    store,
    tooltip,
    marks: { rowMarks: null, onLabelDoubleClick: null },
    setFigure(fn) {
      figure = fn;
    },
    expose(data) {
      debug.view = data;
    },
    memo: new Map(),
    openText,
  };
  debug.source = source;
  mountExportMenu($("export-menu"), { source, store, figure: () => (figure ? figure() : null), onError: showError });
  mountPredictions($("predictions"), context);
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
