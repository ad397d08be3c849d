// The standalone offline page (visualizeai/standalone.py inlines this bundle, built by esbuild from the same
// modules as the web page): the deep-zoom heatmap and the all-heads overview over an in-memory data source.
// The data sits in two non-executable blocks of the page:
//   <script type="application/json" id="viz-meta">        tokens, shape, model, included layers, the layer and
//                                                          head to open at, …
//   <script type="application/octet-stream" id="viz-attention">  base64 of little-endian float16, C order,
//        [included layers, heads, n, n] (rows = queries, columns = keys)
// The view (layer, head, colour scale, zoom) is kept in the address's #hash. Tokens reach the page only
// through textContent and canvas text, never as HTML.

import { format, interpolateBlues, interpolateRdBu, interpolateViridis, rgb, scaleLinear, scaleLog, scalePow, scaleSqrt } from "d3";
import { createTooltip, el, fillSelect, option, span } from "../lib/dom.js";
import { base64Bytes } from "../lib/float16.js";
import { createStore, readUrlState, viewQuery } from "../lib/state.js";
import { mount as mountHeatmap } from "../views/heatmap.js";
import { mount as mountOverview } from "../views/overview.js";
import { createDenseSource } from "./source_dense.js";

// What lib/color.js needs of d3, from the npm package (the web page loads the whole library instead).
globalThis.d3 = { format, interpolateBlues, interpolateRdBu, interpolateViridis, rgb, scaleLinear, scaleLog, scalePow, scaleSqrt };

const $ = (id) => document.getElementById(id);

function readMeta() {
  const meta = JSON.parse($("viz-meta").textContent);
  meta.key = meta.key || "standalone";
  meta.tokens = meta.tokens.map((t, index) => ({ index, start: 0, end: 0, ...t }));
  return meta;
}

function showPredictions(meta) {
  const list = $("predictions");
  if (!Array.isArray(meta.predictions) || !meta.predictions.length) return;
  list.replaceChildren(
    ...meta.predictions.map((p) => {
      const at = meta.tokens[p.position].display;
      const item = el("li", {}, span(p.kind === "next" ? `Next token after “${at}”: ` : `Mask at position ${p.position}: `));
      p.candidates.slice(0, 5).forEach((c, i) => {
        item.append(span(c.token, "tok"), span(` ${(100 * c.score).toFixed(1)}%${i < 4 ? ", " : ""}`));
      });
      return item;
    }),
  );
  list.hidden = false;
}

/** The view state from the #hash (layer, head, scale, zoom, …), kept to the included layers. */
function initialState(meta) {
  const wanted = readUrlState(window.location.hash.slice(1));
  const layers = meta.included_layers;
  const layer = layers.includes(wanted.layer) ? wanted.layer : layers.includes(meta.layer) ? meta.layer : layers[0];
  const head = wanted.head < meta.heads ? wanted.head : Number.isInteger(meta.head) && meta.head < meta.heads ? meta.head : 0;
  return { scale: meta.scale || "linear", ...wanted, meta, layer, head, view: "heatmap" };
}

function start() {
  const meta = readMeta();
  const source = createDenseSource(meta, base64Bytes($("viz-attention").textContent));
  for (const node of document.querySelectorAll("[data-text]")) node.textContent = meta[node.dataset.text] ?? "";
  showPredictions(meta);

  const store = createStore(initialState(meta));
  const layerSelect = $("layer");
  const headSelect = $("head");
  layerSelect.replaceChildren(...meta.included_layers.map((l) => option(l, String(l))));
  fillSelect(headSelect, meta.heads);
  const debug = { page: "standalone", store, view: null };
  window.visualizeai = debug;
  const ctx = {
    source,
    store,
    tooltip: createTooltip($("tooltip")),
    marks: { rowMarks: null, onLabelDoubleClick: null },
    setFigure() {},
    expose(data) {
      if (data && data.view === "heatmap") debug.view = data;
      else debug.overview = data;
    },
    memo: new Map(),
    openText() {},
  };
  const heatmap = mountHeatmap($("panel-heatmap"), ctx);
  const overview = mountOverview($("panel-overview"), ctx);

  const sync = (state) => {
    layerSelect.value = String(state.layer);
    headSelect.value = String(state.head);
    const hash = `#${viewQuery({ ...state, view: undefined })}`;
    try {
      if (hash !== window.location.hash) window.history.replaceState(null, "", hash);
    } catch {
      // a sandboxed frame (the notebook's srcdoc) has no address of its own to keep the view in
    }
  };
  store.subscribe((state, previous) => {
    sync(state);
    // the overview opens a head "in the Heatmap": here both are on one page
    if (state.view !== "heatmap") {
      store.set({ view: "heatmap" });
      return;
    }
    if (state.layer !== previous.layer || state.head !== previous.head) {
      heatmap.update(state);
      overview.update(state);
    }
  });
  layerSelect.addEventListener("change", () => store.set({ layer: Number(layerSelect.value) }));
  headSelect.addEventListener("change", () => store.set({ head: Number(headSelect.value) }));
  sync(store.get());
  heatmap.update(store.get()).then(() =>
    overview.update(store.get()).then(() => {
      document.body.dataset.overview = "ready";
    }),
  );
}

start();
