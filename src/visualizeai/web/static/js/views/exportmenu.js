// The Export menu of the analysis page: figures of the active view (PNG, SVG, drawn here), downloads of the
// whole analysis (.npz, .json, offline .html; served by GET /api/v1/analyses/{key}/export) and "Copy link".
// The active view offers what it shows through ctx.figure() (set by the page from the view's ctx.setFigure):
//   a matrix  {matrix, labels, special, colorScale, caption, subtitle?, name?} (heatmap, rollout), or
//   a scene   {scene: {width, height, items, subtitle?}, caption, name} (lib/figure.js scenePlan: every other view).
// A view that offers nothing (or has not drawn yet) exports the current layer and head as a matrix.

import { makeColorScale, maxOf } from "../lib/color.js";
import { saveBlob } from "../lib/dom.js";
import {
  buildSceneSvg, buildSvg, drawFigureCanvas, drawSceneCanvas, figurePlan, scenePlan, svgText,
} from "../lib/figure.js";
import { aggregateOf } from "../lib/options.js";
import { tokenLabel } from "../lib/tokens.js";

const JSON_MAX_VALUES = 5_000_000; // the server's limit for a JSON download (web/api_export.py)
const HTML_ALL_LAYERS_BYTES = 40e6; // larger offline pages include only the current layer
const SERVER_SCALES = new Set(["linear", "sqrt", "log"]);

function slug(text) {
  return (
    String(text)
      .split("/")
      .pop()
      .replace(/[^A-Za-z0-9._-]+/g, "-")
      .replace(/^[-.]+|[-.]+$/g, "")
      .slice(0, 60) || "analysis"
  );
}

/** "layer-2-head-5", "layer-2-mean-of-heads-no-special", …: what a figure shows, for its file name. */
function figureName(state, fromHeatmap) {
  const agg = fromHeatmap ? aggregateOf(state) : "none";
  const parts = {
    none: [`layer-${state.layer}`, `head-${state.head}`],
    mean_heads: [`layer-${state.layer}`, "mean-of-heads"],
    mean_layers: [`head-${state.head}`, "mean-of-layers"],
    mean_all: ["mean-of-all-heads"],
  }[agg];
  if (fromHeatmap && state.hideSpecial) parts.push("no-special");
  if (fromHeatmap && state.mergeWords) parts.push("words");
  return parts.join("-");
}

/** Bytes of an offline page with `layers` layers (float16 in base64 plus the page): see standalone.py. */
export function htmlBytes(meta, layers) {
  return (4 * 2 * layers * meta.heads * meta.n * meta.n) / 3 + 150_000;
}

/**
 * Wire up the menu in `root` (#export-menu). `ctx`: {source, store, figure() → what the heatmap shows or null,
 * onError(err)}. Returns {update(), unmount()}.
 */
export function mount(root, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
  const { source, store, onError } = ctx;
  const $ = (id) => root.querySelector(`#${id}`);
  const links = { npz: $("download-npz"), json: $("download-json"), html: $("download-html") };
  const status = $("export-status");

  function say(message) {
    status.textContent = message;
  }

  /** What to draw: the active view's figure as shown (the heatmap's averages, hidden tokens and merged words
   *  included) or, when the view offers none, the current layer and head. */
  async function figureData() {
    const state = store.get();
    const { meta } = state;
    const model = meta.model.display_name || meta.model.id;
    const shown = await ctx.figure();
    if (shown && shown.scene) {
      const title = `${model} · ${shown.caption}`;
      return { scene: { ...shown.scene, title }, title, name: shown.name };
    }
    if (shown) {
      const name = shown.name || figureName(state, state.view === "heatmap");
      return { ...shown, title: `${model} · ${shown.caption}`, name };
    }
    const matrix = await source.head(state.layer, state.head);
    const caption = `Layer ${state.layer} · head ${state.head}`;
    return {
      matrix,
      labels: meta.tokens.map(tokenLabel),
      special: meta.tokens.map((t) => Boolean(t.special)),
      colorScale: makeColorScale(maxOf(matrix), { mode: state.scale || "linear", gamma: state.gamma }),
      title: `${model} · ${caption}`,
      name: figureName(state, false),
    };
  }

  async function exportFigure(format) {
    try {
      const data = await figureData();
      const filename = `visualizeai-${slug(store.get().meta.model.id)}-${data.name}.${format}`;
      let draw;
      if (data.scene) {
        const plan = scenePlan(data.scene);
        draw = { svg: () => buildSceneSvg(plan), canvas: () => drawSceneCanvas(plan) };
      } else {
        const scaleName = data.colorScale.mode === "power" ? `power γ=${data.colorScale.gamma}` : data.colorScale.mode;
        const subtitle =
          data.subtitle ??
          `Rows: query tokens · columns: key tokens · colour: ${scaleName} scale, 0 to ${data.colorScale.max.toPrecision(3)}`;
        const plan = figurePlan({ ...data, subtitle }, { format });
        draw = { svg: () => buildSvg(data.matrix, plan), canvas: () => drawFigureCanvas(data.matrix, plan) };
      }
      if (format === "svg") {
        saveBlob(new Blob([svgText(draw.svg())], { type: "image/svg+xml" }), filename);
      } else {
        const canvas = draw.canvas();
        const blob = await new Promise((resolve, reject) =>
          canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("The browser could not encode the PNG."))), "image/png"),
        );
        saveBlob(blob, filename);
      }
      say(`Saved ${filename}`);
    } catch (err) {
      onError(err);
    }
  }

  /** Point the download links at the current key and view (done again on every click: the key can change). */
  function refreshLinks() {
    const state = store.get();
    const { meta } = state;
    if (!meta) return;
    links.npz.href = source.exportUrl("npz");
    const tooBig = meta.layers * meta.heads * meta.n * meta.n > JSON_MAX_VALUES;
    links.json.href = source.exportUrl("json");
    links.json.setAttribute("aria-disabled", String(tooBig));
    links.json.title = tooBig ? "Too many values for JSON: download the .npz instead" : "";
    const all = htmlBytes(meta, meta.layers) <= HTML_ALL_LAYERS_BYTES;
    links.html.href = source.exportUrl("html", {
      layer: state.layer, // the offline page opens at the layer and head shown here
      head: state.head,
      layers: all ? undefined : String(state.layer),
      scale: SERVER_SCALES.has(state.scale) ? state.scale : undefined,
    });
    const size = htmlBytes(meta, all ? meta.layers : 1) / 1e6;
    links.html.title = `${all ? "All layers" : `Layer ${state.layer} only`}, about ${size.toFixed(size < 10 ? 1 : 0)} MB`;
  }

  async function copyLink() {
    const url = window.location.href;
    try {
      await navigator.clipboard.writeText(url);
      say("Link copied: it reopens this view.");
    } catch {
      // No clipboard access (insecure context, permission): show the link ready to copy by hand.
      const field = $("copy-link-field");
      field.value = url;
      field.hidden = false;
      field.select();
      say("Copy the selected link.");
    }
    root.dataset.copied = url;
  }

  $("export-png").addEventListener("click", () => exportFigure("png"), { signal });
  $("export-svg").addEventListener("click", () => exportFigure("svg"), { signal });
  $("copy-link").addEventListener("click", copyLink, { signal });
  for (const link of Object.values(links)) {
    link.addEventListener("click", (event) => {
      if (link.getAttribute("aria-disabled") === "true") {
        event.preventDefault();
        say(link.title);
        return;
      }
      refreshLinks();
    }, { signal });
  }
  // A menu: a click elsewhere or Escape closes it.
  document.addEventListener("click", (event) => {
    if (event.isTrusted && root.open && !root.contains(event.target)) root.open = false;
  }, { signal });
  root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && root.open) {
      root.open = false;
      root.querySelector("summary").focus();
    }
  }, { signal });
  const unsubscribe = store.subscribe(refreshLinks);
  refreshLinks();
  root.hidden = false;
  return {
    update() {
      refreshLinks();
      return Promise.resolve();
    },
    unmount() {
      controller.abort();
      unsubscribe();
      root.hidden = true;
    },
  };
}
