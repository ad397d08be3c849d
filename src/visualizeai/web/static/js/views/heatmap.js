// Heatmap view: one head's attention (or a mean over heads/layers) as a level-of-detail map.
//
// At any zoom only the visible tiles are fetched (ctx.source.tile), at the level whose samples match the
// screen's device pixels (js/lib/tiles.js): the whole matrix pooled to one tile when zoomed out, exact
// weights once a cell is about a device pixel. Tiles are painted once into small canvases, kept in a bounded
// LRU, fetched nearest the centre first, and cancelled when the view moves on; a frame only draws cached
// tiles (coarser ones scaled up while finer ones load), so it is never blank. Hiding special tokens and
// merging words need the whole matrix from the server (source.attention): offered for short inputs, where
// the same tiles are cut from it here.
//
// The panel also holds the navigation (js/views/navigate.js: find, jump, a range of query rows and its top
// keys) and the text panel (js/views/textpanel.js: the whole input shaded by the focused query's row); they
// are parts of this view, driven through the functions passed to them, not views of their own.

import { drawLegend, FONT_FAMILY, fitText, setupCanvas } from "../lib/canvas.js";
import { COLOR_MODES, DEFAULT_GAMMA, formatValue, makeColorScale, maxOf, paintValues } from "../lib/color.js";
import { el, isTyping, line, option, span } from "../lib/dom.js";
import { formatZoom, parseRange, parseZoom } from "../lib/state.js";
import {
  MAX_SAMPLES,
  createTileLoader,
  drawOrder,
  isExact,
  levelFor,
  poolBlock,
  poolingLabel,
  sampleAt,
  tileKey,
  tileRange,
  tileSamples,
  tileSpan,
  topLevel,
  visibleTiles,
} from "../lib/tiles.js";
import { describeAxis, identityGroups } from "../lib/tokens.js";
import {
  FULL_VIEW,
  cellAt,
  cellSize,
  centerOn,
  clamp,
  clampView,
  fitRange,
  maxZoomFor,
  minimapBox,
  panBy,
  sameView,
  viewFromMinimap,
  viewRect,
  visibleRange,
  wheelFactor,
  zoomAbout,
} from "../lib/viewport.js";
import { mountNavigate } from "./navigate.js";
import { mountTextPanel } from "./textpanel.js";

/** Which shared controls this view uses (the page hides the others). */
export const controls = ["layer", "head", "aggregate", "tokens"];

const MAX_GRID = 1000; // CSS px
const MAX_CELL = 48; // CSS px: zooming stops when a cell is this big…
const MIN_VISIBLE = 4; // …or this few tokens are visible
const MAX_LABEL_WIDTH = 140;
const LABEL_GAP = 6;
const MIN_FONT = 9;
const MAX_FONT = 13;
const READABLE_CELL = 16; // CSS px: a zoom where every row's label is written
const ZOOM_STEP = 1.6;
const DRAG_SLOP = 4;
const TOP_KEYS = 5;
const MAX_IN_FLIGHT = 4;
const TILE_CACHE_BYTES = 192 * 2 ** 20;
const DENSE_MAX_N = 2048; // hide special / merge words: the whole matrix from the server up to here
const MINIMAP = 132; // CSS px
const PREFETCH_MAX_N = 2048; // neighbouring heads' tiles are fetched ahead up to here
const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000];
const COLORS = {
  text: "#1e293b",
  special: "#94a3b8",
  tick: "rgba(15, 23, 42, 0.35)",
  frame: "rgba(15, 23, 42, 0.28)",
  highlight: "#ea580c",
  pinned: "#c2410c",
  match: "#16a34a",
  matchCurrent: "#15803d",
  selection: "rgba(124, 58, 237, 0.18)",
  selectionEdge: "#7c3aed",
  empty: "#f1f5f9",
  mark: "#7c3aed",
};

const niceStep = (minimum) => NICE_STEPS.find((s) => s >= minimum) ?? Math.ceil(minimum / 10000) * 10000;
const labelFont = (cell) => clamp(Math.floor(cell * 0.62), MIN_FONT, MAX_FONT);
const isAbort = (err) => err && err.name === "AbortError";

/** The aggregate the state asks for: "none", "mean_heads", "mean_layers" or "mean_all". */
function aggregateOf(state) {
  if (state.meanHeads && state.meanLayers) return "mean_all";
  if (state.meanHeads) return "mean_heads";
  if (state.meanLayers) return "mean_layers";
  return "none";
}

/** Layer and head of the tiles API for a state: null where averaged. */
function selectionOf(state) {
  const agg = aggregateOf(state);
  return {
    agg,
    layer: agg === "none" || agg === "mean_heads" ? state.layer : null,
    head: agg === "none" || agg === "mean_layers" ? state.head : null,
  };
}

/** "Layer 3 · head 2 · 16,000 tokens", the words for what is shown. */
function caption(sel, info, n, transformed) {
  const parts = [];
  if (sel.agg === "none") parts.push(`Layer ${sel.layer} · head ${sel.head}`);
  else if (sel.agg === "mean_heads") parts.push(`Layer ${sel.layer} · mean of ${info.heads} heads`);
  else if (sel.agg === "mean_layers") parts.push(`Head ${sel.head} · mean over ${info.layers} layers`);
  else parts.push(`Mean of all ${info.layers * info.heads} heads`);
  parts.push(`${n.toLocaleString("en")} ${transformed && transformed.mergeWords ? "words" : "tokens"}`);
  if (transformed && transformed.hideSpecial) parts.push("special tokens hidden, rows renormalised");
  return parts.join(" · ");
}

// ---- the panel's elements ------------------------------------------------------------------------------

function button(id, text, label) {
  const attrs = { type: "button", id, ...(label ? { "aria-label": label } : {}) };
  return el("button", { className: "button small secondary", text, attrs });
}

/** A labelled control: <div class="control"><label for=id>text</label> input</div>. */
function control(text, id, input) {
  return el("div", { className: "control" }, el("label", { text, attrs: { for: id } }), input);
}

function buildPanel(panel) {
  const refs = {
    caption: el("p", { className: "view-caption", attrs: { id: "heatmap-caption" } }),
    zoomOut: button("zoom-out", "−", "Zoom out"),
    zoomIn: button("zoom-in", "+", "Zoom in"),
    zoomReset: button("zoom-reset", "Reset zoom"),
    pool: el("select", { attrs: { id: "heatmap-pool" } }, option("max", "max"), option("mean", "mean")),
    zoomLevel: el("span", { className: "hint zoom-level", attrs: { id: "zoom-level", "aria-live": "polite" } }),
    lod: el("span", { className: "lod-badge", attrs: { id: "heatmap-lod" } }),
    canvas: el("canvas", { className: "heatmap-cells", attrs: { "aria-hidden": "true" } }),
    overlay: el("canvas", { className: "heatmap-overlay", attrs: { "aria-hidden": "true" } }),
    minimap: el("canvas", {
      className: "heatmap-minimap",
      attrs: { id: "heatmap-minimap", "aria-label": "Where the view is in the whole matrix" },
    }),
    notice: el("p", { className: "hint heatmap-notice", attrs: { id: "heatmap-notice" }, hidden: true }),
    legend: el("canvas", { attrs: { id: "legend", width: 260, height: 34, "aria-hidden": "true" } }),
    colorMode: el("select", { attrs: { id: "color-mode" } }),
    gammaControl: el("div", { className: "control", attrs: { id: "gamma-control" }, hidden: true }),
    gamma: el("input", { attrs: { type: "range", id: "color-gamma", min: "0.1", max: "2", step: "0.05", value: "0.5" } }),
    gammaValue: el("output", { attrs: { id: "color-gamma-value", for: "color-gamma" }, text: "0.5" }),
    legendHint: el("p", { className: "hint", attrs: { id: "legend-hint" } }),
    focusTitle: el("h3", { className: "focus-title", attrs: { id: "focus-title" }, text: "Strongest keys" }),
    focusToken: el("input", { attrs: { type: "number", id: "focus-token", min: "0", step: "1", placeholder: "none" } }),
    focusAxis: el(
      "select",
      { attrs: { id: "focus-axis" } },
      option("row", "row: what it attends to"),
      option("col", "column: what attends to it"),
    ),
    focusHint: el("p", {
      className: "hint",
      attrs: { id: "focus-hint" },
      text: "Click a cell or a token label to list the keys its query token attends to most.",
    }),
    focusQuery: el("p", { className: "focus-query", attrs: { id: "focus-query" }, hidden: true }),
    focusList: el("ol", { className: "focus-list", attrs: { id: "focus-list" } }),
    nav: el("section", { className: "heatmap-nav", attrs: { "aria-label": "Find and navigate" } }),
    text: el("section", { className: "heatmap-text", attrs: { "aria-label": "The text, shaded by attention" } }),
  };
  refs.wrap = el(
    "div",
    {
      className: "heatmap-wrap",
      attrs: { id: "heatmap", role: "img", "aria-label": "Attention heatmap" },
      dataset: { state: "empty" },
    },
    refs.canvas,
    refs.overlay,
  );
  refs.gammaControl.append(el("label", { text: "Gamma γ", attrs: { for: "color-gamma" } }), refs.gamma, refs.gammaValue);
  const main = el(
    "div",
    { className: "heatmap-main" },
    el(
      "div",
      { className: "view-toolbar" },
      refs.caption,
      el(
        "div",
        { className: "zoom-bar", attrs: { role: "group", "aria-label": "Zoom" } },
        refs.zoomOut,
        refs.zoomIn,
        refs.zoomReset,
        el("label", { className: "pool-pick", text: "Pooling ", attrs: { for: "heatmap-pool" } }),
        refs.pool,
        refs.lod,
        refs.zoomLevel,
      ),
    ),
    refs.notice,
    el("div", { className: "heatmap-stage" }, refs.wrap, el("div", { className: "heatmap-minimap-box" }, refs.minimap)),
    el("p", {
      className: "hint",
      text:
        "Wheel over the matrix to zoom about the pointer, drag to pan; drag along the row labels to select " +
        "query rows. Click a cell or a label to focus its token; Esc clears. Keys: + / − zoom, 0 resets, / finds.",
    }),
    refs.nav,
    refs.text,
  );
  const side = el(
    "aside",
    { className: "heatmap-side", attrs: { id: "heatmap-side" } },
    el(
      "div",
      { className: "legend" },
      el("span", { className: "legend-title", text: "Attention weight" }),
      refs.legend,
      control("Colour scale", "color-mode", refs.colorMode),
      refs.gammaControl,
      refs.legendHint,
    ),
    el(
      "div",
      { className: "focus", attrs: { id: "focus" } },
      refs.focusTitle,
      el(
        "div",
        { className: "focus-pick" },
        control("Focus token", "focus-token", refs.focusToken),
        el("div", { className: "control" }, el("label", { text: "Show", attrs: { for: "focus-axis" } }), refs.focusAxis),
      ),
      refs.focusHint,
      refs.focusQuery,
      refs.focusList,
    ),
  );
  panel.classList.add("heatmap-panel");
  panel.replaceChildren(main, side);
  refs.side = side;
  return refs;
}

// ---- layout ---------------------------------------------------------------------------------------------

/** Margins for the labels, the grid's size and the zoom range for `labels` in `width` CSS px. */
function computeLayout(ctx, labels, width, height) {
  const n = labels.length;
  ctx.font = `600 ${MAX_FONT}px ${FONT_FAMILY}`;
  let widest = ctx.measureText(String(n)).width;
  const sample = n <= 4096 ? labels : labels.filter((_, i) => i % Math.ceil(n / 4096) === 0);
  for (const label of sample) widest = Math.max(widest, ctx.measureText(label).width);
  const margin = Math.ceil(Math.min(widest, MAX_LABEL_WIDTH)) + LABEL_GAP + 4;
  const room = Math.max(120, Math.min(width - margin - 12, MAX_GRID, height));
  let grid = room;
  if (room / n >= 3) grid = Math.floor(room / n) * n; // cells big enough to see get whole CSS px, all alike
  grid = Math.min(grid, n * 44); // a handful of tokens stays a compact square
  return {
    n,
    left: margin,
    top: margin,
    grid,
    labelWidth: margin - LABEL_GAP - 4,
    width: Math.ceil(margin + grid + 8),
    height: Math.ceil(margin + grid + 8),
    maxZoom: maxZoomFor(n, grid, { maxCell: MAX_CELL, minVisible: MIN_VISIBLE }),
  };
}

// ---- drawing ---------------------------------------------------------------------------------------------

/** Paint a tile's values into a canvas of its shape through the colour scale. */
function paintTile(tile, colorScale) {
  const [h, w] = tile.shape;
  const canvas = tile.canvas || document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const c = canvas.getContext("2d");
  const image = c.createImageData(w, h);
  paintValues(image, tile.values, colorScale);
  c.putImageData(image, 0, 0);
  tile.canvas = canvas;
  tile.paintedWith = colorScale;
}

/** Draw the part of `tile` inside the view on the grid. */
function drawTile(c, layout, view, tile) {
  const { left, top, grid, n } = layout;
  const rect = viewRect(view, n);
  const [a, b] = tile.rows;
  const [cc, d] = tile.cols;
  const x0 = Math.max(cc, rect.x0);
  const x1 = Math.min(d, rect.x1);
  const y0 = Math.max(a, rect.y0);
  const y1 = Math.min(b, rect.y1);
  if (x1 <= x0 || y1 <= y0) return;
  const [h, w] = tile.shape;
  const sx = ((x0 - cc) * w) / (d - cc);
  const sy = ((y0 - a) * h) / (b - a);
  const sw = ((x1 - x0) * w) / (d - cc);
  const sh = ((y1 - y0) * h) / (b - a);
  const cell = cellSize(view, grid, n);
  const dx = left + (x0 - rect.x0) * cell;
  const dy = top + (y0 - rect.y0) * cell;
  c.drawImage(tile.canvas, sx, sy, sw, sh, dx, dy, (x1 - x0) * cell, (y1 - y0) * cell);
}

/** One axis label (axis "row" left of the grid, "col" above it) for displayed index `i`. */
function drawLabel(c, layout, view, axis, i, text, color, blank) {
  const cell = cellSize(view, layout.grid, layout.n);
  const font = labelFont(cell);
  const center = (i + 0.5 - (axis === "row" ? view.y0 : view.x0)) * cell;
  c.save();
  if (axis === "row") c.translate(layout.left - LABEL_GAP, layout.top + center);
  else {
    c.translate(layout.left + center, layout.top - LABEL_GAP);
    c.rotate(-Math.PI / 2);
  }
  c.textAlign = axis === "row" ? "right" : "left";
  c.textBaseline = "middle";
  if (blank) {
    const slot = layout.labelWidth + 4;
    c.fillStyle = "#ffffff";
    c.fillRect(axis === "row" ? -slot : -2, -font * 0.8, slot + 2, font * 1.6);
  }
  c.fillStyle = color;
  c.fillText(fitText(c, text, layout.labelWidth), 0, 0);
  c.restore();
}

function clipAxis(c, layout, axis) {
  const extra = MAX_FONT;
  c.beginPath();
  if (axis === "row") c.rect(0, layout.top - extra, layout.left, layout.grid + 2 * extra);
  else c.rect(layout.left - extra, 0, layout.grid + 2 * extra, layout.top);
  c.clip();
}

/**
 * Labels along both axes: every token's label once rows are tall enough to read (thinned to a nice step
 * while they are a few px), else position numbers at a nice step.
 */
function axisStep(cell) {
  return niceStep(Math.ceil((labelFont(cell) + 3) / cell));
}

/** Whether the axes name tokens (rows tall enough, every few labelled) rather than positions. */
function axisWords(view, layout) {
  return axisStep(cellSize(view, layout.grid, layout.n)) <= 10;
}

function drawAxes(c, layout, view, axis) {
  const cell = cellSize(view, layout.grid, layout.n);
  const font = labelFont(cell);
  const step = axisStep(cell);
  const words = step <= 10;
  c.font = `${font}px ${FONT_FAMILY}`;
  for (const side of ["row", "col"]) {
    const start = side === "row" ? view.y0 : view.x0;
    const first = Math.ceil(Math.max(0, Math.floor(start)) / step) * step;
    const last = Math.min(layout.n - 1, Math.ceil(start + layout.n / view.zoom));
    c.save();
    clipAxis(c, layout, side);
    for (let i = first; i <= last; i += step) {
      const text = words ? axis.labels[i] : axis.positions[i];
      drawLabel(c, layout, view, side, i, text, axis.special[i] ? COLORS.special : COLORS.text, false);
    }
    if (step > 1) {
      c.strokeStyle = COLORS.tick;
      c.lineWidth = 1;
      c.beginPath();
      for (let i = first; i <= last; i += step) {
        const at = Math.round((i + 0.5 - start) * cell * 2) / 2;
        if (side === "row") {
          c.moveTo(layout.left - 3, layout.top + at);
          c.lineTo(layout.left, layout.top + at);
        } else {
          c.moveTo(layout.left + at, layout.top - 3);
          c.lineTo(layout.left + at, layout.top);
        }
      }
      c.stroke();
    }
    c.restore();
  }
}

/** A band across the grid for displayed rows (axis "row") or columns [a, b), at least 2 px wide. */
function band(c, layout, view, axis, a, b, style) {
  const cell = cellSize(view, layout.grid, layout.n);
  const start = (a - (axis === "row" ? view.y0 : view.x0)) * cell;
  let size = (b - a) * cell;
  let at = start;
  if (size < 2) {
    at = start + size / 2 - 1;
    size = 2;
  }
  if (at + size < 0 || at > layout.grid) return;
  c.fillStyle = style;
  if (axis === "row") c.fillRect(layout.left, layout.top + at, layout.grid, size);
  else c.fillRect(layout.left + at, layout.top, size, layout.grid);
}

/** A tick on an axis (outside the grid) for displayed rows/columns [a, b). */
function axisTick(c, layout, view, axis, a, b, style) {
  const cell = cellSize(view, layout.grid, layout.n);
  const start = (a - (axis === "row" ? view.y0 : view.x0)) * cell;
  const size = Math.max(2, (b - a) * cell);
  if (start + size < 0 || start > layout.grid) return;
  c.fillStyle = style;
  if (axis === "row") c.fillRect(layout.left - 5, layout.top + start, 4, size);
  else c.fillRect(layout.left + start, layout.top - 5, size, 4);
}

/**
 * The transparent layer over the cells: the selected rows, the matches of a find (both axes), the focused row or
 * column, the hovered cell, rows the page asks to outline, and the labels of the focus and the hover.
 * `marks`: {selection: [a, b] | null, matches: [{rows}], currentMatch, pinned, hovered, outlined: [row], labels}.
 */
function paintOverlay(canvas, layout, view, marks) {
  const { selection, matches, currentMatch, pinned, hovered, outlined, labels } = marks;
  const { ctx: c } = setupCanvas(canvas, layout.width, layout.height);
  const cell = cellSize(view, layout.grid, layout.n);
  c.save();
  c.beginPath();
  c.rect(layout.left, layout.top, layout.grid, layout.grid);
  c.clip();
  if (selection) band(c, layout, view, "row", selection[0], selection[1], COLORS.selection);
  matches.forEach((m, k) => {
    const style = k === currentMatch ? "rgba(22, 163, 74, 0.30)" : "rgba(22, 163, 74, 0.14)";
    band(c, layout, view, "row", m.rows[0], m.rows[1], style);
    band(c, layout, view, "col", m.rows[0], m.rows[1], style);
  });
  if (pinned) {
    if (cell >= 6) {
      const at = (pinned.index - (pinned.axis === "row" ? view.y0 : view.x0)) * cell;
      c.strokeStyle = COLORS.pinned;
      c.lineWidth = 2;
      if (pinned.axis === "row") c.strokeRect(layout.left + 1, layout.top + at, layout.grid - 2, cell);
      else c.strokeRect(layout.left + at, layout.top + 1, cell, layout.grid - 2);
    } else band(c, layout, view, pinned.axis, pinned.index, pinned.index + 1, "rgba(194, 65, 12, 0.55)");
  }
  if (hovered) {
    const tint = cell >= 6 ? "rgba(234, 88, 12, 0.10)" : "rgba(234, 88, 12, 0.35)";
    band(c, layout, view, "row", hovered.row, hovered.row + 1, tint);
    band(c, layout, view, "col", hovered.col, hovered.col + 1, tint);
    const box = Math.max(cell, 6);
    const cx = layout.left + (hovered.col + 0.5 - view.x0) * cell;
    const cy = layout.top + (hovered.row + 0.5 - view.y0) * cell;
    c.strokeStyle = COLORS.highlight;
    c.lineWidth = 2;
    c.strokeRect(cx - box / 2, cy - box / 2, box, box);
  }
  c.restore();
  // marks on the axes: matches, the selection, the focus
  matches.forEach((m, k) => {
    const style = k === currentMatch ? COLORS.matchCurrent : COLORS.match;
    axisTick(c, layout, view, "row", m.rows[0], m.rows[1], style);
    axisTick(c, layout, view, "col", m.rows[0], m.rows[1], style);
  });
  if (selection) axisTick(c, layout, view, "row", selection[0], selection[1], COLORS.selectionEdge);
  for (const row of outlined) {
    c.save();
    c.beginPath();
    c.rect(0, layout.top - 2, layout.left + layout.grid + 4, layout.grid + 4);
    c.clip();
    c.strokeStyle = COLORS.mark;
    c.lineWidth = 2;
    const y = layout.top + (row - view.y0) * cell;
    if (cell >= 4) {
      c.setLineDash(cell >= 8 ? [5, 3] : []);
      c.strokeRect(layout.left - 1, y - 1, layout.grid + 2, cell + 2);
    } else {
      c.fillStyle = COLORS.mark;
      c.fillRect(layout.left - 5, y, 4, Math.max(cell, 1));
    }
    c.restore();
  }
  c.font = `600 ${labelFont(cell)}px ${FONT_FAMILY}`;
  const label = (axis, i, color) => {
    c.save();
    clipAxis(c, layout, axis);
    drawLabel(c, layout, view, axis, i, labels[i], color, true);
    c.restore();
  };
  if (pinned && pinned.index < layout.n) label(pinned.axis, pinned.index, COLORS.pinned);
  if (hovered) {
    label("row", hovered.row, COLORS.highlight);
    label("col", hovered.col, COLORS.highlight);
  }
}

/** The minimap: the whole matrix from `tiles` (the coarsest cached picture) and the viewport's box on it. */
function paintMinimap(canvas, view, n, tiles, colorScale) {
  const { ctx: c } = setupCanvas(canvas, MINIMAP, MINIMAP);
  c.fillStyle = COLORS.empty;
  c.fillRect(0, 0, MINIMAP, MINIMAP);
  c.imageSmoothingEnabled = true;
  const s = MINIMAP / n;
  for (const tile of colorScale ? tiles : []) {
    if (tile.paintedWith !== colorScale) paintTile(tile, colorScale);
    const [w, h] = [tile.cols[1] - tile.cols[0], tile.rows[1] - tile.rows[0]];
    c.drawImage(tile.canvas, tile.cols[0] * s, tile.rows[0] * s, w * s, h * s);
  }
  const box = minimapBox(view, n, MINIMAP);
  c.strokeStyle = COLORS.highlight;
  c.lineWidth = 2;
  c.strokeRect(box.x, box.y, Math.max(3, box.w), Math.max(3, box.h));
  c.strokeStyle = COLORS.frame;
  c.lineWidth = 1;
  c.strokeRect(0.5, 0.5, MINIMAP - 1, MINIMAP - 1);
}

// ---- data: tiles from the source, or cut from a whole matrix held here -----------------------------------

/** An exact strip of the matrix (one row or one column) from tiles of at most 1,024 cells. */
async function exactStrip(source, sel, axis, index, n, signal) {
  if (axis === "row" && typeof source.row === "function") {
    return source.row({ layer: sel.layer, head: sel.head, row: index }, signal);
  }
  const out = new Float32Array(n);
  const jobs = [];
  for (let s = 0; s < n; s += 1024) {
    const span2 = [s, Math.min(n, s + 1024)];
    const params =
      axis === "row"
        ? { layer: sel.layer, head: sel.head, rows: [index, index + 1], cols: span2, size: 1024, pool: "max" }
        : { layer: sel.layer, head: sel.head, rows: span2, cols: [index, index + 1], size: 1024, pool: "max" };
    jobs.push(source.tile(params, signal).then((t) => out.set(t.values, s)));
  }
  await Promise.all(jobs);
  return out;
}

/**
 * The tooltip of cell `hit` ({row, col}) showing `found` (valueAt: the value, whether exact, the cells pooled;
 * null while loading): its lines, and the outcome attributes on `tip` (data-q, -k, -value, -exact, …).
 */
function tooltipLines(tip, axis, hit, found) {
  const { labels, positions } = axis;
  tip.dataset.q = String(hit.row);
  tip.dataset.k = String(hit.col);
  tip.dataset.qTokens = positions[hit.row];
  tip.dataset.kTokens = positions[hit.col];
  const lines = [line(span(labels[hit.row], "tok"), span(" → ", "arrow"), span(labels[hit.col], "tok"))];
  if (found) {
    tip.dataset.value = String(found.value);
    tip.dataset.exact = String(found.exact);
    if (found.exact) lines.push(line(span(formatValue(found.value), "value")));
    else {
      const bin = `rows ${found.rows[0]}–${found.rows[1] - 1}, columns ${found.cols[0]}–${found.cols[1] - 1}`;
      lines.push(line(span(formatValue(found.value), "value"), span(` ${found.pool} of ${bin}`, "pos")));
    }
  } else {
    delete tip.dataset.value;
    tip.dataset.exact = "false";
    lines.push(line(span("loading…", "pos")));
  }
  lines.push(line(span(`q=${positions[hit.row]} k=${positions[hit.col]}`, "pos")));
  return lines;
}

/** The focus side list's title and sentence for `target` ({axis, index}, or null: the hint instead). */
function showFocusHead(refs, target, axis) {
  refs.focusList.replaceChildren();
  delete refs.focusList.dataset.index; // set again when the list is filled
  refs.focusHint.hidden = Boolean(target);
  refs.focusQuery.hidden = !target;
  if (!target) {
    refs.focusTitle.textContent = "Strongest keys";
    return;
  }
  const isRow = target.axis === "row";
  refs.focusTitle.textContent = isRow ? "Strongest keys" : "Strongest queries";
  refs.focusQuery.replaceChildren(
    span(isRow ? "What " : "What attends to "),
    span(axis.labels[target.index], "tok"),
    span(isRow ? " attends to" : ""),
    span(` ${isRow ? "q" : "k"}=${axis.positions[target.index]}`, "pos"),
  );
}

/** The focus side list: the strongest keys of a row, or queries of a column, `top` ([{index, weight}]). */
function showFocusList(refs, target, axis, top) {
  const other = target.axis === "row" ? "k" : "q";
  refs.focusList.replaceChildren(
    ...top.map(({ index, weight }) =>
      el(
        "li",
        {},
        span(axis.labels[index], "tok"),
        span(formatValue(weight), "value"),
        span(`${other}=${axis.positions[index]}`, "pos"),
      ),
    ),
  );
  refs.focusList.dataset.index = String(target.index);
}

/** Row (axis "row") or column `index` of a dense n × n matrix. */
function denseStrip(data, n, { axis, index }) {
  const strip = new Float32Array(n);
  for (let j = 0; j < n; j++) strip[j] = axis === "row" ? data[index * n + j] : data[j * n + index];
  return strip;
}

/** The `k` largest of `values` as [{index, weight}], largest first. */
function topOf(values, k) {
  const best = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (best.length === k && !(v > best[k - 1].weight)) continue;
    let at = best.length;
    while (at > 0 && v > best[at - 1].weight) at--;
    best.splice(at, 0, { index: i, weight: v });
    if (best.length > k) best.pop();
  }
  return best;
}

// ---- the view ------------------------------------------------------------------------------------------

/**
 * Mount the view into `panel`. `ctx`: {source (info, tile, row, topKeys, attention?), store?, tooltip?, marks?,
 * setFigure?, expose?} (see pages/analysis.js). Returns {update(state) → Promise, unmount(), figure(), debug}.
 */
export function mount(panel, ctx) {
  const source = ctx.source;
  const lifetime = new AbortController();
  const on = (target, type, fn, opts = {}) => target.addEventListener(type, fn, { ...opts, signal: lifetime.signal });
  const refs = buildPanel(panel);
  const tooltip = ctx.tooltip || makeTooltip(panel);
  const store = ctx.store || null;

  const initial = store ? store.get() : {};
  let mode = initial.scale in COLOR_MODES ? initial.scale : "linear";
  let gamma = Number.isFinite(initial.gamma) && initial.gamma > 0 ? initial.gamma : DEFAULT_GAMMA;
  let pool = initial.pool === "mean" ? "mean" : "max";
  let pendingZoom = parseZoom(initial.zoom); // applied once the first layout is known
  let pendingSelect = parseRange(initial.select); // a selected range of query rows from the URL
  let pinned = Number.isInteger(initial.focus)
    ? { axis: initial.focusAxis === "col" ? "col" : "row", index: initial.focus }
    : null;

  // What is shown: {info, sel, key (matrix identity), n, axis: {labels, special, positions, groups},
  // dense: {data, n} | null, transformed, colorScale}
  let shown = null;
  let layout = null;
  let view = FULL_VIEW;
  let samples = 512;
  let hovered = null;
  let pointer = null;
  let drag = null;
  let frameRequested = false;
  let generation = 0;
  let matches = []; // [{rows: [a, b]}] from find, in displayed rows
  let currentMatch = -1;
  let selection = null; // [a, b) of query rows
  let focusRequest = null;

  // ---- colour ----------------------------------------------------------------------------------------

  refs.colorMode.replaceChildren(...Object.entries(COLOR_MODES).map(([value, { label }]) => option(value, label)));
  refs.colorMode.value = mode;
  refs.gamma.value = String(gamma);
  refs.gammaValue.textContent = gamma.toFixed(2);
  refs.gammaControl.hidden = mode !== "power";
  refs.pool.value = pool;

  function setColor() {
    if (!shown || !shown.colorScale) return; // the first full view takes the mode and gamma as they are then
    shown.colorScale = makeColorScale(shown.colorScale.max, { mode, gamma });
    drawLegend(refs.legend, shown.colorScale, { width: 260 });
    scheduleFrame();
  }

  on(refs.colorMode, "change", () => {
    mode = refs.colorMode.value in COLOR_MODES ? refs.colorMode.value : "linear";
    refs.gammaControl.hidden = mode !== "power";
    if (store) store.set({ scale: mode });
    setColor();
  });
  on(refs.gamma, "input", () => {
    gamma = Number.parseFloat(refs.gamma.value) || DEFAULT_GAMMA;
    refs.gammaValue.textContent = gamma.toFixed(2);
    if (store) store.set({ gamma });
    setColor();
  });
  on(refs.pool, "change", () => {
    pool = refs.pool.value === "mean" ? "mean" : "max";
    if (store) store.set({ pool: pool === "max" ? undefined : pool });
    if (shown) shown.recolor = true; // the colour range becomes that of the new pooling's first full view
    loader.forgetFailures();
    scheduleFrame();
  });

  // ---- tiles -----------------------------------------------------------------------------------------

  /** A request for tile (level, i, j) of `matrix` (layer, head): everything its loading needs. */
  function jobOf(level, i, j, matrix = shown.key, layer = shown.sel.layer, head = shown.sel.head) {
    const range = tileRange(level, i, j, shown.n, samples);
    const key = tileKey(`${matrix}|${samples}`, level, i, j, isExact(range, samples), pool);
    const causal = Boolean(shown.info.model && shown.info.model.kind === "causal-lm");
    return { key, level, range, layer, head, size: samples, pool, dense: shown.dense, n: shown.n, causal };
  }

  /** Load a job's tile: from the source, or cut from the whole matrix held here, or zeros. */
  function loadTile(job, signal) {
    const { range, size } = job;
    if (!job.dense && job.causal && range.cols[0] >= range.rows[1]) {
      // every key after every query: a causal model's weights there are exactly 0, nothing to ask for
      const h = Math.min(size, range.rows[1] - range.rows[0]);
      const w = Math.min(size, range.cols[1] - range.cols[0]);
      return { ...range, shape: [h, w], pooled: !isExact(range, size), pool: job.pool, values: new Float32Array(h * w) };
    }
    if (job.dense) return poolBlock(job.dense.data, job.n, range.rows, range.cols, size, job.pool);
    const { layer, head } = job;
    return source.tile({ layer, head, rows: range.rows, cols: range.cols, size, pool: job.pool }, signal);
  }

  const loader = createTileLoader({
    load: (job, signal) => loadTile(job, signal),
    maxInFlight: MAX_IN_FLIGHT,
    maxBytes: TILE_CACHE_BYTES,
    onSettled() {
      scheduleFrame(); // the tile may be one the view shows (or, fetched ahead, the head shown by now)
    },
  });

  /** A cached tile (level, i, j) of what is shown: of the pooling in use, else (while it loads) the other. */
  function cachedTile(level, i, j) {
    const job = jobOf(level, i, j);
    const other = job.key.replace(/\|(max|mean)$/, pool === "max" ? "|mean" : "|max");
    return loader.peek(job.key) || loader.peek(other);
  }

  /**
   * Once a view is drawn, fetch the same tiles of the neighbouring heads and layers (what the arrow keys
   * open next), for inputs short enough that this costs little.
   */
  function prefetchNeighbours() {
    if (!shown || shown.dense || shown.sel.agg !== "none" || shown.n > PREFETCH_MAX_N) return;
    const { layer, head } = shown.sel;
    const { info } = shown;
    const wanted = visibleTiles(viewRect(view, shown.n), targetLevel(), shown.n, samples);
    for (const [l, h] of [[layer, head + 1], [layer, head - 1], [layer + 1, head], [layer - 1, head]]) {
      if (l < 0 || h < 0 || l >= info.layers || h >= info.heads) continue;
      for (const t of wanted) loader.prefetch(jobOf(t.level, t.i, t.j, `${info.key}|${l}|${h}|`, l, h), lifetime.signal);
    }
  }

  /** The level to draw now. */
  function targetLevel() {
    const dpr = globalThis.devicePixelRatio || 1;
    return levelFor(cellSize(view, layout.grid, shown.n) * dpr, shown.n, samples);
  }

  /** Ask for the visible tiles that are missing, nearest the centre first (cancelling those not needed);
   * true when all of them are cached. */
  function fetchVisible() {
    const wanted = visibleTiles(viewRect(view, shown.n), targetLevel(), shown.n, samples);
    const jobs = wanted.map((t) => jobOf(t.level, t.i, t.j));
    const complete = loader.want(jobs);
    const failed = jobs.map((j) => loader.failure(j.key)).find(Boolean);
    return { complete, failed };
  }

  /** Fix the colour range from the first complete view: the largest sample it shows. */
  function ensureColor(wanted) {
    const tiles = wanted.map((t) => loader.peek(jobOf(t.level, t.i, t.j).key));
    if (tiles.some((t) => !t)) return;
    const max = Math.max(...tiles.map((t) => maxOf(t.values)));
    shown.colorScale = makeColorScale(max, { mode, gamma });
    drawLegend(refs.legend, shown.colorScale, { width: 260 });
  }

  /** Cached tiles intersecting the view, in draw order (coarse first, the target level on top). */
  function drawableTiles(target) {
    const out = [];
    const rect = viewRect(view, shown.n);
    const top = topLevel(shown.n, samples);
    for (const level of drawOrder(target, top)) {
      // finer levels than the target could be many tiles; they only fill in while the target loads
      if (level < target - 2) continue;
      for (const t of visibleTiles(rect, level, shown.n, samples)) {
        const tile = cachedTile(t.level, t.i, t.j);
        if (tile) out.push(tile);
      }
    }
    return out;
  }

  // ---- frames ----------------------------------------------------------------------------------------

  function scheduleFrame() {
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      frame();
    });
  }

  /** Draw what is cached for the view, ask for what is missing, and report the state on #heatmap. */
  function frame() {
    if (!shown || !layout) return;
    const started = performance.now();
    const { complete, failed } = fetchVisible();
    const { ctx: c } = setupCanvas(refs.canvas, layout.width, layout.height);
    const target = targetLevel();
    if ((!shown.colorScale || shown.recolor) && complete) {
      shown.recolor = false;
      ensureColor(visibleTiles(viewRect(view, shown.n), target, shown.n, samples));
    }
    c.fillStyle = COLORS.empty;
    c.fillRect(layout.left, layout.top, layout.grid, layout.grid);
    if (shown.colorScale) {
      c.save();
      c.beginPath();
      c.rect(layout.left, layout.top, layout.grid, layout.grid);
      c.clip();
      c.imageSmoothingEnabled = false;
      for (const tile of drawableTiles(target)) {
        if (tile.paintedWith !== shown.colorScale) paintTile(tile, shown.colorScale);
        drawTile(c, layout, view, tile);
      }
      c.restore();
    }
    c.strokeStyle = COLORS.frame;
    c.lineWidth = 1;
    c.strokeRect(layout.left - 0.5, layout.top - 0.5, layout.grid + 1, layout.grid + 1);
    drawAxes(c, layout, view, shown.axis);
    drawOverlay();
    drawMinimap();
    describe(target, complete && Boolean(shown.colorScale), performance.now() - started);
    if (failed) {
      // not asked again for this matrix until it is shown anew (another head, pooling or option)
      refs.wrap.dataset.state = "error";
      showNotice(failed.message || String(failed));
    }
  }

  function drawOverlay() {
    paintOverlay(refs.overlay, layout, view, {
      selection,
      matches,
      currentMatch,
      pinned,
      hovered,
      outlined: markedRows(),
      labels: shown.axis.labels,
    });
  }

  /** The minimap, from the coarsest cached picture of the whole matrix (down to two levels below the top). */
  function drawMinimap() {
    const top = topLevel(shown.n, samples);
    let found = [];
    for (let level = top; level >= Math.max(0, top - 2) && !found.length; level--) {
      const tiles = visibleTiles({ x0: 0, y0: 0, x1: shown.n, y1: shown.n }, level, shown.n, samples);
      found = tiles.map((t) => cachedTile(t.level, t.i, t.j)).filter(Boolean);
    }
    paintMinimap(refs.minimap, view, shown.n, found, shown.colorScale);
    refs.minimap.hidden = view.zoom <= 1.0001 && shown.n <= 1024;
  }

  /** The words, the outcome attributes and the URL state of what is drawn. */
  function describe(level, drawn, ms) {
    const n = shown.n;
    const range = visibleRange(view, n);
    const zoomed = view.zoom > 1.0001;
    refs.zoomLevel.textContent = zoomed
      ? `×${view.zoom.toFixed(1)} · rows ${range.rows[0]}–${range.rows[1] - 1}, ` +
        `columns ${range.cols[0]}–${range.cols[1] - 1} of ${n}`
      : `All ${n.toLocaleString("en")} rows and columns`;
    const dpr = globalThis.devicePixelRatio || 1;
    const perPx = 1 / (2 ** level * cellSize(view, layout.grid, n) * dpr);
    const lod = poolingLabel(level, pool, perPx);
    refs.lod.textContent = lod;
    refs.lod.classList.toggle("exact", level === 0);
    refs.zoomReset.disabled = !zoomed;
    refs.zoomOut.disabled = !zoomed;
    refs.zoomIn.disabled = view.zoom >= layout.maxZoom - 1e-6;
    refs.wrap.classList.toggle("zoomed", zoomed);
    const d = refs.wrap.dataset;
    d.zoom = String(Math.round(view.zoom * 1000) / 1000);
    d.visible = String(Math.round(n / view.zoom));
    d.rows = `${range.rows[0]}:${range.rows[1]}`;
    d.cols = `${range.cols[0]}:${range.cols[1]}`;
    d.level = String(level);
    d.lod = lod;
    d.pool = pool;
    d.samples = String(samples);
    d.x0 = view.x0.toFixed(3); // the exact window, for tests that point at cells
    d.y0 = view.y0.toFixed(3);
    d.cell = cellSize(view, layout.grid, n).toFixed(4); // CSS px per cell
    d.gridLeft = String(layout.left);
    d.gridTop = String(layout.top);
    d.axisLabels = axisWords(view, layout) ? "tokens" : "positions";
    d.frameMs = String(Math.round(ms * 100) / 100);
    d.tilesRequested = String(loader.stats.requested);
    if (drawn) {
      if (d.state !== "ready") {
        d.drawMs = String(Math.round((performance.now() - shown.started) * 10) / 10);
        setTimeout(prefetchNeighbours, 0);
      }
      d.state = "ready";
    } else d.state = "loading";
    if (store && drawn) {
      const zoom = zoomed ? formatZoom(range) : undefined;
      if (store.get().zoom !== zoom) store.set({ zoom });
    }
  }

  // ---- what to show ------------------------------------------------------------------------------------

  function availableWidth() {
    const style = getComputedStyle(panel);
    const beside = style.flexDirection === "row";
    const gap = Number.parseFloat(style.columnGap) || 0;
    return Math.max(240, panel.clientWidth - (beside ? refs.side.offsetWidth + gap : 0) - MINIMAP - 16);
  }

  function relayout() {
    if (!shown) return;
    const tall = Math.max(360, (globalThis.innerHeight || 900) - 160);
    layout = computeLayout(refs.canvas.getContext("2d"), shown.axis.labels, availableWidth(), tall);
    // a matrix of at most 1,024 tokens is one exact tile (one request per head, as small as the dense head)
    samples = shown.n <= MAX_SAMPLES ? MAX_SAMPLES : tileSamples(layout.grid * (globalThis.devicePixelRatio || 1));
    if (pendingZoom) {
      const z = pendingZoom;
      pendingZoom = null;
      const span2 = Math.max(z.rows[1] - z.rows[0], z.cols[1] - z.cols[0]);
      const zoom = shown.n / span2;
      view = clampView({ zoom, x0: z.cols[0], y0: z.rows[0] }, shown.n, layout.maxZoom);
    } else view = clampView(view, shown.n, layout.maxZoom);
    scheduleFrame();
  }

  /** The whole matrix of a transformed view (hidden special tokens, merged words), when short enough. */
  async function loadDense(state, sel, signal) {
    const info = source.info;
    if (typeof source.attention !== "function" || info.n > DENSE_MAX_N) return null;
    const result = await source.attention(
      {
        layer: sel.layer ?? undefined,
        head: sel.head ?? undefined,
        agg: sel.agg,
        hideSpecial: Boolean(state.hideSpecial),
        mergeWords: Boolean(state.mergeWords),
      },
      signal,
    );
    const m = result.shape[result.shape.length - 1];
    return { data: result.data, n: m, groups: result.groups };
  }

  let loadController = null;

  async function update(state) {
    const info = source.info || state.meta;
    if (!info) return;
    const sel = selectionOf(state);
    const transformed =
      state.hideSpecial || state.mergeWords
        ? { hideSpecial: Boolean(state.hideSpecial), mergeWords: Boolean(state.mergeWords) }
        : null;
    const options = transformed ? `${transformed.hideSpecial}${transformed.mergeWords}` : "";
    const key = `${info.key}|${sel.layer}|${sel.head}|${options}`;
    if (state.pool && state.pool !== pool && (state.pool === "mean" || state.pool === "max")) {
      pool = state.pool;
      refs.pool.value = pool;
    }
    if (shown && shown.key === key) {
      scheduleFrame();
      return;
    }
    if (loadController) loadController.abort();
    loadController = new AbortController();
    const mine = ++generation;
    loader.cancelAll();
    loader.forgetFailures();
    refs.wrap.dataset.state = "loading";
    const started = performance.now();
    let dense = null;
    let notice = "";
    if (transformed) {
      dense = await loadDense(state, sel, loadController.signal).catch((err) => {
        if (isAbort(err)) throw err;
        notice = err.message || String(err);
        return null;
      });
      if (mine !== generation) return;
      if (!dense && !notice) {
        notice =
          "Hiding special tokens and merging words need the whole matrix, offered up to " +
          `${DENSE_MAX_N.toLocaleString("en")} ` +
          "tokens; this shows every token.";
      }
    }
    showNotice(notice);
    const groups = dense ? dense.groups : null;
    const groupsKey = groups ? groups.map((g) => g.join("+")).join(",") : "all";
    const sameAxis = shown && shown.info === info && shown.groupsKey === groupsKey;
    const axis = sameAxis ? shown.axis : axisOf(info, groups);
    const previous = shown;
    shown = {
      info,
      sel,
      key,
      n: axis.groups.length,
      axis,
      groupsKey,
      dense: dense ? { data: dense.data } : null,
      transformed: dense ? transformed : null,
      colorScale: null,
      started,
    };
    if (!sameAxis) {
      view = FULL_VIEW;
      if (previous) pinned = null;
      matches = [];
      currentMatch = -1;
      selection = null;
      nav.reset();
    }
    refs.focusToken.max = String(shown.n - 1);
    const what = caption(sel, info, shown.n, shown.transformed);
    refs.caption.textContent = what;
    refs.legendHint.textContent =
      (shown.transformed && shown.transformed.hideSpecial
        ? "Rows are query tokens, columns key tokens. Special tokens are hidden and every row is renormalised " +
          "to sum to 1 over the tokens shown. "
        : "Rows are query tokens, columns key tokens. ") +
      "Colours are scaled to the largest value of the first picture; zoomed out, each pixel shows the pooled " +
      "cells (max keeps single strong cells visible).";
    refs.wrap.setAttribute("aria-label", `Attention heatmap, ${what}: ${shown.n} query tokens by ${shown.n} key tokens`);
    const d = refs.wrap.dataset;
    d.layer = String(state.layer);
    d.head = String(state.head);
    d.n = String(shown.n);
    d.agg = sel.agg;
    delete d.drawMs;
    if (!layout || !sameAxis || panel.clientWidth !== lastWidth) {
      lastWidth = panel.clientWidth;
      relayout();
    } else scheduleFrame();
    if (pendingSelect) {
      const [a, b] = pendingSelect;
      pendingSelect = null;
      if (b <= shown.n) selectRows(a, b, true);
    }
    refreshFocus();
    text.update(true);
  }
  let lastWidth = 0;

  function axisOf(info, groups) {
    const g = groups || identityGroups(info.n);
    return { groups: g, ...describeAxis(info, g) };
  }

  function showNotice(message) {
    refs.notice.textContent = message || "";
    refs.notice.hidden = !message;
  }

  // ---- moving the view -----------------------------------------------------------------------------------

  function setView(next) {
    if (!shown || !layout) return;
    const v = clampView(next, shown.n, layout.maxZoom);
    if (sameView(v, view)) return;
    view = v;
    hovered = null;
    tooltip.hide();
    refs.wrap.dataset.state = "loading"; // until the frame of the new view has drawn every visible tile
    scheduleFrame();
  }

  function zoomBy(factor, px, py) {
    if (!shown || !layout) return;
    setView(zoomAbout(view, factor, px, py, layout.grid, shown.n, layout.maxZoom));
  }

  function zoomButton(factor) {
    if (!layout) return;
    let px = layout.grid / 2;
    let py = layout.grid / 2;
    if (pinned) {
      const cell = cellSize(view, layout.grid, shown.n);
      const along = clamp((pinned.index + 0.5 - (pinned.axis === "row" ? view.y0 : view.x0)) * cell, 0, layout.grid);
      if (pinned.axis === "row") py = along;
      else px = along;
    }
    zoomBy(factor, px, py);
  }

  /** Zoom so that rows' labels are readable, centred on displayed row `row` (and column `col`). */
  function showCell(row, col = row) {
    if (!shown || !layout) return;
    const zoom = Math.max(view.zoom, Math.min(layout.maxZoom, (READABLE_CELL * shown.n) / layout.grid));
    setView(centerOn(row, col, zoom, shown.n, layout.maxZoom));
  }

  function showRows(a, b) {
    if (!shown || !layout) return;
    setView(fitRange(a, b, shown.n, layout.maxZoom, "row"));
  }

  on(refs.zoomIn, "click", () => zoomButton(ZOOM_STEP));
  on(refs.zoomOut, "click", () => zoomButton(1 / ZOOM_STEP));
  on(refs.zoomReset, "click", () => setView(FULL_VIEW));

  // ---- pointer -------------------------------------------------------------------------------------------

  function local(event) {
    const rect = refs.wrap.getBoundingClientRect();
    return { x: event.clientX - rect.left - layout.left, y: event.clientY - rect.top - layout.top };
  }

  /** What is under a pointer: {kind: "cell", row, col}, {kind: "label", axis, index} or null. */
  function hitTest(event) {
    if (!shown || !layout) return null;
    const { x, y } = local(event);
    const hit = cellAt(view, clamp(x, 0, layout.grid - 1e-6), clamp(y, 0, layout.grid - 1e-6), layout.grid, shown.n);
    if (!hit) return null;
    const inX = x >= 0 && x < layout.grid;
    const inY = y >= 0 && y < layout.grid;
    if (inX && inY) return { kind: "cell", row: hit.row, col: hit.col };
    if (inY && x < 0 && x > -layout.left) return { kind: "label", axis: "row", index: hit.row };
    if (inX && y < 0 && y > -layout.top) return { kind: "label", axis: "col", index: hit.col };
    return null;
  }

  /** The finest cached sample holding displayed cell (row, col): {value, exact, rows, cols} or null. */
  function valueAt(row, col) {
    if (!shown) return null;
    const top = topLevel(shown.n, samples);
    for (let level = 0; level <= top; level++) {
      const span2 = tileSpan(level, samples);
      const tile = loader.peek(jobOf(level, Math.floor(row / span2), Math.floor(col / span2)).key);
      if (!tile) continue;
      const at = sampleAt(tile, row, col);
      if (!at) continue;
      const exact = at.rows[1] - at.rows[0] === 1 && at.cols[1] - at.cols[0] === 1;
      return { value: tile.values[at.index], exact, rows: at.rows, cols: at.cols, pool };
    }
    return null;
  }

  function showTooltip(hit, event) {
    const found = valueAt(hit.row, hit.col);
    tooltip.show(tooltipLines(tooltip.element, shown.axis, hit, found), event.clientX, event.clientY);
  }

  function onPointer(event) {
    pointer = { clientX: event.clientX, clientY: event.clientY };
    if (drag) return;
    const hit = hitTest(event);
    refs.wrap.classList.toggle("over-label", Boolean(hit && hit.kind === "label"));
    if (!hit || hit.kind !== "cell") {
      clearHover();
      return;
    }
    if (!hovered || hovered.row !== hit.row || hovered.col !== hit.col) {
      hovered = { row: hit.row, col: hit.col };
      drawOverlay();
      if (shown.dense && !pinned) refreshFocus();
    }
    showTooltip(hit, event);
  }

  function clearHover() {
    const had = hovered;
    hovered = null;
    if (had && shown && layout) drawOverlay();
    tooltip.hide();
  }

  on(refs.wrap, "pointermove", (event) => {
    if (!drag) return onPointer(event);
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < DRAG_SLOP) return;
    if (!drag.moved) {
      drag.moved = true;
      refs.wrap.classList.add("dragging");
      hovered = null;
      tooltip.hide();
    }
    if (drag.select) {
      const { y } = local(event);
      const cell = cellSize(view, layout.grid, shown.n);
      const row = clamp(Math.floor(view.y0 + y / cell), 0, shown.n - 1);
      selectRows(Math.min(drag.select, row), Math.max(drag.select, row) + 1, false);
      return;
    }
    setView(panBy(drag.view, dx, dy, layout.grid, shown.n, layout.maxZoom));
  });
  on(refs.wrap, "pointerdown", (event) => {
    if (event.button !== 0 || !shown || !layout) return;
    const hit = hitTest(event);
    const select = hit && hit.kind === "label" && hit.axis === "row" ? hit.index : null;
    drag = { x: event.clientX, y: event.clientY, view, moved: false, hit, select };
    refs.wrap.setPointerCapture(event.pointerId);
  });
  const onUp = (event) => {
    if (!drag) return;
    const { moved, hit, select } = drag;
    drag = null;
    refs.wrap.classList.remove("dragging");
    if (refs.wrap.hasPointerCapture(event.pointerId)) refs.wrap.releasePointerCapture(event.pointerId);
    if (moved && select !== null && selection) selectRows(selection[0], selection[1], true);
    if (!moved && hit) {
      const next = hit.kind === "label" ? { axis: hit.axis, index: hit.index } : { axis: "row", index: hit.row };
      const same = pinned && pinned.axis === next.axis && pinned.index === next.index;
      setPinned(same ? null : next);
    }
    onPointer(event);
  };
  on(refs.wrap, "pointerup", onUp);
  on(refs.wrap, "pointercancel", onUp);
  on(refs.wrap, "pointerleave", () => {
    pointer = null;
    if (!drag) clearHover();
  });
  on(
    refs.wrap,
    "wheel",
    (event) => {
      const hit = hitTest(event);
      if (!hit || hit.kind !== "cell") return; // the page scrolls
      event.preventDefault();
      const { x, y } = local(event);
      zoomBy(wheelFactor(event.deltaY, event.deltaMode), x, y);
    },
    { passive: false },
  );
  let minimapDrag = false;
  const fromMinimap = (event) => {
    const rect = refs.minimap.getBoundingClientRect();
    setView(viewFromMinimap(view, event.clientX - rect.left, event.clientY - rect.top, MINIMAP, shown.n, layout.maxZoom));
  };
  on(refs.minimap, "pointerdown", (event) => {
    if (!shown || !layout) return;
    minimapDrag = true;
    refs.minimap.setPointerCapture(event.pointerId);
    fromMinimap(event);
  });
  on(refs.minimap, "pointermove", (event) => minimapDrag && fromMinimap(event));
  on(refs.minimap, "pointerup", () => {
    minimapDrag = false;
  });
  on(document, "keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) return;
    if (panel.hidden || !shown) return;
    if (event.key === "Escape" && (pinned || selection)) {
      if (pinned) setPinned(null);
      else selectRows(null);
    } else if (event.key === "+" || event.key === "=") zoomButton(ZOOM_STEP);
    else if (event.key === "-") zoomButton(1 / ZOOM_STEP);
    else if (event.key === "0") setView(FULL_VIEW);
    else if (event.key === "/") refs.nav.querySelector("#find-input").focus();
    else return;
    event.preventDefault();
  });
  const resize = new ResizeObserver(() => {
    if (shown && panel.clientWidth !== lastWidth) {
      lastWidth = panel.clientWidth;
      requestAnimationFrame(relayout);
    }
  });
  resize.observe(panel);
  lifetime.signal.addEventListener("abort", () => resize.disconnect());

  /** Displayed rows holding a position the page asks to outline (ctx.marks.rowMarks: masked tokens, …). */
  function markedRows() {
    const marks = ctx.marks && ctx.marks.rowMarks ? ctx.marks.rowMarks(shown.info) : [];
    if (!marks || !marks.length) return [];
    const positions = new Set(marks.map((m) => m.position));
    const rows = [];
    shown.axis.groups.forEach((group, row) => group.some((p) => positions.has(p)) && rows.push(row));
    return rows;
  }

  on(refs.wrap, "dblclick", (event) => {
    const hit = ctx.marks && ctx.marks.onLabelDoubleClick && hitTest(event);
    if (hit && hit.kind === "label") ctx.marks.onLabelDoubleClick(shown.axis.groups[hit.index]);
  });

  // ---- focus: the pinned token's row (what it attends to) or column (what attends to it) ----------------

  function setPinned(next) {
    pinned = next && shown && next.index >= 0 && next.index < shown.n ? next : null;
    refs.focusToken.value = pinned ? String(pinned.index) : "";
    if (pinned) refs.focusAxis.value = pinned.axis;
    refs.wrap.dataset.focus = pinned ? `${pinned.axis}:${pinned.index}` : "";
    if (store) {
      store.set({
        focus: pinned ? pinned.index : undefined,
        focusAxis: pinned && pinned.axis === "col" ? "col" : undefined,
      });
    }
    if (layout && shown) drawOverlay();
    refreshFocus();
    text.update();
  }

  /** The token position behind displayed index `i` (its first token for a merged word). */
  const tokenOf = (i) => shown.axis.groups[i][0];

  async function refreshFocus() {
    if (!shown) return;
    const target = pinned || (shown.dense && hovered ? { axis: "row", index: hovered.row } : null);
    refs.wrap.dataset.focus = pinned ? `${pinned.axis}:${pinned.index}` : "";
    if (focusRequest) focusRequest.abort();
    if (!target || target.index >= shown.n) {
      showFocusHead(refs, null, shown.axis);
      return;
    }
    showFocusHead(refs, target, shown.axis);
    focusRequest = new AbortController();
    const signal = focusRequest.signal;
    const current = shown;
    let strip;
    try {
      strip = current.dense
        ? denseStrip(current.dense.data, current.n, target)
        : await exactStrip(source, current.sel, target.axis, target.index, current.n, signal);
    } catch (err) {
      if (!isAbort(err)) showNotice(err.message || String(err));
      return;
    }
    if (signal.aborted || current !== shown) return;
    showFocusList(refs, target, current.axis, topOf(strip, Math.min(TOP_KEYS, current.n)));
  }

  const onFocusPick = () => {
    const raw = refs.focusToken.value.trim();
    const index = Number.parseInt(raw, 10);
    if (raw === "" || !Number.isInteger(index)) setPinned(null);
    else {
      setPinned({ axis: refs.focusAxis.value === "col" ? "col" : "row", index: clamp(index, 0, shown ? shown.n - 1 : 0) });
      if (pinned) showCell(pinned.index);
    }
  };
  on(refs.focusToken, "change", onFocusPick);
  on(refs.focusAxis, "change", onFocusPick);

  // ---- navigation and the text panel -------------------------------------------------------------------

  /** Select query rows [a, b) (null clears); `final` when the drag or the inputs are done. */
  function selectRows(a, b, final = true) {
    selection = a === null || a === undefined ? null : [clamp(a, 0, shown.n - 1), clamp(b, a + 1, shown.n)];
    refs.wrap.dataset.select = selection ? `${selection[0]}:${selection[1]}` : "";
    if (layout) drawOverlay();
    if (final) {
      if (store) store.set({ select: selection ? `${selection[0]}:${selection[1]}` : undefined });
      nav.showSelection(selection);
    }
  }

  const nav = mountNavigate(refs.nav, {
    signal: lifetime.signal,
    info: () => (shown ? shown.info : source.info),
    /** Matches as displayed rows; token positions [a, b) map to the displayed rows holding them. */
    setMatches(found, current) {
      matches = (found || []).map((m) => ({ rows: displayedRange(m.tokens) }));
      currentMatch = current;
      refs.wrap.dataset.matches = String(matches.length);
      refs.wrap.dataset.match = current >= 0 ? String(current) : "";
      if (current >= 0 && matches[current]) showCell(matches[current].rows[0]);
      else if (layout) drawOverlay();
    },
    jump(position) {
      if (!shown) return;
      const row = displayedRange([position, position + 1])[0];
      showCell(row);
      setPinned({ axis: "row", index: row });
    },
    selectRows(a, b) {
      if (!shown) return;
      selectRows(a, b, true);
      showRows(a, b);
    },
    topKeys(rows, k, signal) {
      const sel = shown.sel;
      if (shown.dense) return Promise.resolve(denseTopKeys(rows, k));
      if (typeof source.topKeys === "function") return source.topKeys({ layer: sel.layer, head: sel.head, rows, k }, signal);
      return exactStrip(source, sel, "row", rows[0], shown.n, signal).then((row) => topOf(row, k));
    },
    focusKey(index) {
      if (!shown) return;
      showCell(selection ? selection[0] : index, index);
    },
  });

  function denseTopKeys(rows, k) {
    const n = shown.n;
    const mean = new Float32Array(n);
    for (let r = rows[0]; r < rows[1]; r++) for (let j = 0; j < n; j++) mean[j] += shown.dense.data[r * n + j];
    for (let j = 0; j < n; j++) mean[j] /= rows[1] - rows[0];
    return topOf(mean, k).map(({ index, weight }) => ({ index: shown.axis.groups[index][0], weight }));
  }

  /** Displayed rows [a, b) covering token positions [p, q). */
  function displayedRange([p, q]) {
    if (!shown || shown.groupsKey === "all") return [p, q];
    const groups = shown.axis.groups;
    let a = -1;
    let b = -1;
    groups.forEach((g, i) => {
      if (g.some((t) => t >= p && t < q)) {
        if (a < 0) a = i;
        b = i + 1;
      }
    });
    return a < 0 ? [0, 1] : [a, b];
  }

  const text = mountTextPanel(refs.text, {
    signal: lifetime.signal,
    info: () => (shown ? shown.info : source.info),
    /** The focused query as a token position, or null. */
    focus: () => (shown && pinned && pinned.axis === "row" ? tokenOf(pinned.index) : null),
    /** The focused query's exact row over every token (the plain axis), for shading. */
    row(position, signal) {
      const sel = shown.sel;
      return exactStrip(source, sel, "row", position, shown.info.n, signal);
    },
    /** A token was clicked in the text: focus its row. */
    pick(position) {
      const row = displayedRange([position, position + 1])[0];
      setPinned({ axis: "row", index: row });
      showCell(row);
    },
  });

  // ---- figure export and the debug handle ----------------------------------------------------------------

  /**
   * What is shown, for a figure (PNG/SVG): the visible window's exact weights when it is at most 1,024 cells a
   * side and drawn at level 0, else null. {matrix, labels, special, colorScale, caption, rows, cols}.
   */
  function figure() {
    if (!shown || !layout || !shown.colorScale) return null;
    const { rows, cols } = visibleRange(view, shown.n);
    const h = rows[1] - rows[0];
    const w = cols[1] - cols[0];
    if (h > 1024 || w > 1024 || h !== w) return null;
    const matrix = new Float32Array(h * w);
    for (let r = 0; r < h; r++) {
      for (let k = 0; k < w; k++) {
        const found = valueAt(rows[0] + r, cols[0] + k);
        if (!found || !found.exact) return null;
        matrix[r * w + k] = found.value;
      }
    }
    const pick = (list) => list.slice(rows[0], rows[1]);
    return {
      matrix,
      labels: pick(shown.axis.labels),
      special: pick(shown.axis.special),
      colorScale: shown.colorScale,
      caption: refs.caption.textContent,
      rows,
      cols,
    };
  }

  /** Viewport coordinates of the centre of displayed cell (q, k), or null outside the view. */
  function cellBox(q, k) {
    if (!shown || !layout) return null;
    const cell = cellSize(view, layout.grid, shown.n);
    const x = (k + 0.5 - view.x0) * cell;
    const y = (q + 0.5 - view.y0) * cell;
    if (x < 0 || y < 0 || x > layout.grid || y > layout.grid) return null;
    const rect = refs.wrap.getBoundingClientRect();
    return { x: rect.left + layout.left + x, y: rect.top + layout.top + y };
  }

  /** Viewport coordinates of the label of displayed row (axis "row") or column `i`, or null if not visible. */
  function labelBox(axis, i) {
    if (!shown || !layout) return null;
    const cell = cellSize(view, layout.grid, shown.n);
    const along = (i + 0.5 - (axis === "row" ? view.y0 : view.x0)) * cell;
    if (along < 0 || along > layout.grid) return null;
    const rect = refs.wrap.getBoundingClientRect();
    if (axis === "row") return { x: rect.left + layout.left - LABEL_GAP - 3, y: rect.top + layout.top + along };
    return { x: rect.left + layout.left + along, y: rect.top + layout.top - LABEL_GAP - 3 };
  }

  const debug = {
    view: "heatmap",
    get meta() {
      return shown ? shown.info : source.info;
    },
    get layer() {
      return shown ? Number(refs.wrap.dataset.layer) : null;
    },
    get head() {
      return shown ? Number(refs.wrap.dataset.head) : null;
    },
    get n() {
      return shown ? shown.n : 0;
    },
    get groups() {
      return shown ? shown.axis.groups : [];
    },
    get labels() {
      return shown ? shown.axis.labels : [];
    },
    get agg() {
      return shown ? shown.sel.agg : "none";
    },
    /** The whole displayed matrix when it is held here (short transformed views), else null. */
    get matrix() {
      return shown && shown.dense ? shown.dense.data : null;
    },
    get stats() {
      return { ...loader.stats, cachedTiles: loader.cache.size, cachedBytes: loader.cache.bytes };
    },
    cellBox,
    labelBox,
    valueAt,
    setView: (v) => setView(v),
    showCell,
  };

  if (ctx.setFigure) ctx.setFigure(figure);
  if (ctx.expose) ctx.expose(debug);

  return {
    update,
    figure,
    debug,
    unmount() {
      if (ctx.setFigure) ctx.setFigure(null);
      generation++;
      if (loadController) loadController.abort();
      if (focusRequest) focusRequest.abort();
      lifetime.abort();
      tooltip.hide();
      loader.clear();
    },
  };
}

/** A tooltip of the view's own, for pages that give none. */
function makeTooltip(panel) {
  const element = el("div", { className: "tooltip", attrs: { role: "tooltip" }, hidden: true });
  panel.append(element);
  return {
    element,
    show(nodes, x, y) {
      element.replaceChildren(...nodes);
      element.hidden = false;
      element.style.left = `${x + 14}px`;
      element.style.top = `${y + 14}px`;
    },
    hide() {
      element.hidden = true;
    },
  };
}
