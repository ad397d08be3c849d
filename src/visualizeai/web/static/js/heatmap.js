// Heatmap view: one head's [n, n] attention matrix (or an average, with special tokens hidden or words merged)
// on a canvas. Rows are query tokens (left axis), columns key tokens (top axis). Cells are pixels of an n×n
// image scaled up without smoothing, never one DOM element per cell, so 512 tokens draw as fast as 10.
// Zoom (wheel, buttons) and pan (drag) only change which part of that image is drawn: no repaint of cells.

import { drawLegend, fitText, setupCanvas } from "./lib/canvas.js";
import { COLOR_MODES, DEFAULT_GAMMA, makeColorScale, paintValues } from "./lib/color.js";
import { span } from "./lib/dom.js";
import { cachedLoad } from "./lib/lru.js";
import { aggregateOf, isPlain } from "./lib/options.js";
import { describeAxis, identityGroups } from "./lib/tokens.js";

/** Which shared controls this view uses (main.js hides the others). */
export const controls = ["layer", "head", "aggregate", "tokens"];

const FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const MAX_CELL = 44; // CSS px: a 10-token matrix stays a compact square
const MAX_GRID = 1000; // CSS px; also kept within the window height so the whole matrix fits on screen
const MIN_LABEL_FONT = 9;
const MAX_LABEL_FONT = 13;
const MAX_LABEL_WIDTH = 140; // CSS px; longer token labels are cut with an ellipsis
const LABEL_GAP = 6;
const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500];
const TOP_KEYS = 5;
const MAX_ZOOM_CELL = 48; // CSS px: zooming stops when a cell is this big…
const MIN_VISIBLE = 4; // …or this few tokens are visible
const ZOOM_STEP = 1.6; // per button press
const DRAG_SLOP = 4; // CSS px a press may move and still count as a click
const VIEW_CACHE = 8; // transformed matrices kept (plain heads are cached by main.js)

const COLORS = {
  text: "#1e293b",
  special: "#94a3b8",
  frame: "rgba(15, 23, 42, 0.28)",
  tick: "rgba(15, 23, 42, 0.35)",
  highlight: "#ea580c",
  pinned: "#c2410c",
  labelBackground: "#ffffff",
};

/**
 * Hooks for modules that decorate the heatmap (predictions.js sets them; null = unused). Positions are token
 * indices into meta.tokens; the heatmap maps them to its displayed rows (hidden tokens, merged words).
 *   rowMarks(meta) → [{position, kind}]: rows to outline, e.g. a masked token ("mask") or the token whose
 *     successor is predicted ("next");
 *   onLabelDoubleClick(positions): a token label was double-clicked (click-to-mask); `positions` are the
 *     tokens of that row or column (several for a merged word).
 */
let heatmapHooks = { rowMarks: null, onLabelDoubleClick: null }; // ctx.marks once mounted

/** What the mounted heatmap shows now, for figure export (exportmenu.js); null when it is not mounted. */

const MARK_COLOR = "#7c3aed";

/** Outline the displayed rows `marks` (indices) across the matrix and write their labels in the mark colour. */
function drawMarks(ctx, layout, frame, labels, marks) {
  const { left, top, grid } = layout;
  const { cell, font } = frame;
  for (const row of marks) {
    const y = top + (row - frame.y0) * cell;
    if (y + cell < top || y > top + grid) continue;
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, top - 2, left + grid + 4, grid + 4);
    ctx.clip();
    ctx.strokeStyle = MARK_COLOR;
    ctx.fillStyle = MARK_COLOR;
    ctx.lineWidth = 2;
    if (cell >= 4) {
      ctx.setLineDash(cell >= 8 ? [5, 3] : []);
      ctx.strokeRect(left - 1, y - 1, grid + 2, cell + 2);
    } else {
      ctx.fillRect(left - 5, y, 4, Math.max(cell, 1)); // a tab on the axis for thin rows
    }
    ctx.restore();
    ctx.save();
    clipAxis(ctx, layout, "row");
    ctx.font = `700 ${font}px ${FONT_FAMILY}`;
    drawLabel(ctx, layout, frame, "row", row, labels[row], MARK_COLOR, true);
    ctx.restore();
  }
}

/** How a value is written for people: four significant digits. */
export function formatValue(value) {
  return Number.isFinite(value) ? value.toPrecision(4) : String(value);
}

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

function niceStep(minimum) {
  return NICE_STEPS.find((s) => s >= minimum) ?? Math.ceil(minimum / 1000) * 1000;
}

function labelFont(cell) {
  return clamp(Math.floor(cell * 0.62), MIN_LABEL_FONT, MAX_LABEL_FONT);
}

function matrixMax(matrix) {
  let max = 0;
  for (let i = 0; i < matrix.length; i++) if (matrix[i] > max) max = matrix[i];
  return max;
}

/** The `k` largest of `count` values read as get(i), as [{index, value}], largest first. */
function topK(count, get, k) {
  const best = [];
  for (let i = 0; i < count; i++) {
    const value = get(i);
    if (best.length === k && !(value > best[k - 1].value)) continue;
    let at = best.length;
    while (at > 0 && value > best[at - 1].value) at--;
    best.splice(at, 0, { index: i, value });
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * Work out the base cell size, margins and zoom range for `n` tokens in `width` CSS px. At zoom 1 cells are
 * whole device pixels once they are big enough to see, so every cell has the same size. The label margin is
 * measured at the largest font zooming can reach, so zooming never moves the matrix.
 */
function computeLayout(ctx, labels, width, dpr) {
  const n = labels.length;
  const tall = Math.max(480, window.innerHeight - 140);
  const plan = (margin) => {
    const room = Math.max(40, Math.min(width - margin - 12, MAX_GRID, tall));
    let cell = Math.min(room / n, MAX_CELL);
    const cellDevice = cell * dpr;
    if (cellDevice >= 3) cell = Math.floor(cellDevice) / dpr;
    const maxZoom = Math.max(1, Math.min(n / MIN_VISIBLE, MAX_ZOOM_CELL / cell));
    return { cell, maxZoom, font: labelFont(cell * maxZoom) };
  };
  // Two passes: the margin depends on the label font, which depends on the cell size. Every label is
  // measured (not just the thinned-out ones) so the label shown on hover has room too.
  let margin = 90;
  let layout = null;
  for (let pass = 0; pass < 2; pass++) {
    layout = plan(margin);
    ctx.font = `600 ${layout.font}px ${FONT_FAMILY}`;
    let widest = 0;
    for (const label of labels) widest = Math.max(widest, ctx.measureText(label).width);
    margin = Math.ceil(Math.min(widest, MAX_LABEL_WIDTH)) + LABEL_GAP + 4;
  }
  const snap = (v) => Math.round(v * dpr) / dpr;
  const left = snap(margin);
  const top = snap(margin);
  const grid = layout.cell * n;
  return {
    n,
    base: layout.cell,
    maxZoom: layout.maxZoom,
    left,
    top,
    grid,
    labelWidth: margin - LABEL_GAP - 4,
    width: Math.ceil(left + grid + 8),
    height: Math.ceil(top + grid + 8),
  };
}

/** What a zoom state shows: first visible column/row (fractional), how many, cell size, label font and step. */
function frameOf(layout, view) {
  const visible = layout.n / view.zoom;
  const cell = layout.grid / visible;
  const font = labelFont(cell);
  return { x0: view.x0, y0: view.y0, visible, cell, font, step: niceStep(Math.ceil((font + 3) / cell)) };
}

/** Draw one row label (axis "row") or column label (axis "col") for position `i`. */
function drawLabel(ctx, layout, frame, axis, i, text, color, emphasis) {
  const { left, top, labelWidth } = layout;
  const { cell, font } = frame;
  const center = (i + 0.5 - (axis === "row" ? frame.y0 : frame.x0)) * cell;
  ctx.save();
  if (axis === "row") {
    ctx.translate(left - LABEL_GAP, top + center);
  } else {
    ctx.translate(left + center, top - LABEL_GAP);
    ctx.rotate(-Math.PI / 2);
  }
  ctx.textAlign = axis === "row" ? "right" : "left";
  ctx.textBaseline = "middle";
  if (emphasis) {
    // Blank the whole label slot (whatever label was drawn there) before writing.
    const slot = labelWidth + 4;
    ctx.fillStyle = COLORS.labelBackground;
    ctx.fillRect(axis === "row" ? -slot : -2, -font * 0.8, slot + 2, font * 1.6);
  }
  ctx.fillStyle = color;
  ctx.fillText(fitText(ctx, text, labelWidth), 0, 0);
  ctx.restore();
}

/** Clip to the band of row labels (left of the grid) or column labels (above it). */
function clipAxis(ctx, layout, axis) {
  // A little past the grid's ends, so the first and last labels are not cut in half.
  const extra = MAX_LABEL_FONT;
  ctx.beginPath();
  if (axis === "row") ctx.rect(0, layout.top - extra, layout.left, layout.grid + 2 * extra);
  else ctx.rect(layout.left - extra, 0, layout.grid + 2 * extra, layout.top);
  ctx.clip();
}

function drawAxisLabels(ctx, layout, frame, labels, special) {
  const { n, left, top } = layout;
  const { cell, step, font } = frame;
  ctx.font = `${font}px ${FONT_FAMILY}`;
  for (const axis of ["row", "col"]) {
    const start = axis === "row" ? frame.y0 : frame.x0;
    const first = Math.ceil(Math.max(0, Math.floor(start)) / step) * step;
    const last = Math.min(n - 1, Math.ceil(start + frame.visible));
    ctx.save();
    clipAxis(ctx, layout, axis);
    for (let i = first; i <= last; i += step) {
      drawLabel(ctx, layout, frame, axis, i, labels[i], special[i] ? COLORS.special : COLORS.text, false);
    }
    if (step > 1) {
      // Small ticks mark which rows/columns the thinned-out labels belong to.
      ctx.strokeStyle = COLORS.tick;
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let i = first; i <= last; i += step) {
        const c = Math.round((i + 0.5 - start) * cell * 2) / 2;
        if (axis === "row") {
          ctx.moveTo(left - 3, top + c);
          ctx.lineTo(left, top + c);
        } else {
          ctx.moveTo(left + c, top - 3);
          ctx.lineTo(left + c, top);
        }
      }
      ctx.stroke();
    }
    ctx.restore();
  }
}

/** Paint `matrix` (n×n, row = query) into the n×n offscreen canvas `cells`, one pixel per cell. */
function paintCells(cells, matrix, n, colorScale) {
  if (cells.width !== n || cells.height !== n) {
    cells.width = n;
    cells.height = n;
  }
  const cellsCtx = cells.getContext("2d");
  const image = cellsCtx.createImageData(n, n);
  paintValues(image, matrix, colorScale);
  cellsCtx.putImageData(image, 0, 0);
}

/** Draw the visible part of the painted `cells` with token labels on `canvas`. */
function drawHeatmap(canvas, { cells, labels, special, layout, view, marks }) {
  const { ctx } = setupCanvas(canvas, layout.width, layout.height);
  const frame = frameOf(layout, view);
  ctx.save();
  ctx.beginPath();
  ctx.rect(layout.left, layout.top, layout.grid, layout.grid);
  ctx.clip();
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cells, frame.x0, frame.y0, frame.visible, frame.visible, layout.left, layout.top, layout.grid,
    layout.grid);
  ctx.restore();
  ctx.strokeStyle = COLORS.frame;
  ctx.lineWidth = 1;
  ctx.strokeRect(layout.left - 0.5, layout.top - 0.5, layout.grid + 1, layout.grid + 1);
  drawAxisLabels(ctx, layout, frame, labels, special);
  if (marks && marks.length) drawMarks(ctx, layout, frame, labels, marks);
}

/**
 * Draw a whole n×n `matrix` (row = query) with its token labels on `canvas`, at zoom 1, for views that show a
 * matrix without this view's zoom and focus tools (rollout.js, compare.js). Cells go through `colorScale`
 * (colorscale.js makeColorScale); `marks` outlines rows, as for masked tokens. `width` is the CSS width the
 * drawing may use. Returns {layout, cellAt(clientX, clientY) → {row, col} | null}.
 */
export function drawMatrix(canvas, { matrix, labels, special, width, colorScale, marks = [] }) {
  const n = labels.length;
  const cells = document.createElement("canvas");
  paintCells(cells, matrix, n, colorScale);
  const layout = computeLayout(canvas.getContext("2d"), labels, width, window.devicePixelRatio || 1);
  const flags = special || labels.map(() => false);
  drawHeatmap(canvas, { cells, labels, special: flags, layout, view: { zoom: 1, x0: 0, y0: 0 }, marks });
  const cellAt = (clientX, clientY) => {
    const rect = canvas.getBoundingClientRect();
    const cell = layout.grid / n;
    const col = Math.floor((clientX - rect.left - layout.left) / cell);
    const row = Math.floor((clientY - rect.top - layout.top) / cell);
    return row >= 0 && col >= 0 && row < n && col < n ? { row, col } : null;
  };
  return { layout, cellAt };
}

/** Row (axis "row") or column band of index `i` on the overlay, clipped to the grid. */
function fillBand(ctx, layout, frame, axis, i, style) {
  const { left, top, grid } = layout;
  const { cell } = frame;
  ctx.fillStyle = style;
  const thin = cell < 6;
  const size = thin ? 1 : cell;
  if (axis === "row") {
    const y = top + (i - frame.y0) * cell + (thin ? cell / 2 - 0.5 : 0);
    ctx.fillRect(left, y, grid, size);
  } else {
    const x = left + (i - frame.x0) * cell + (thin ? cell / 2 - 0.5 : 0);
    ctx.fillRect(x, top, size, grid);
  }
}

/** Hover marks for cell {row, col} and the pinned row/column {axis, index} on the transparent overlay. */
function drawOverlay(overlay, layout, view, labels, hover, pinned) {
  const { ctx } = setupCanvas(overlay, layout.width, layout.height);
  if (!hover && !pinned) return;
  const frame = frameOf(layout, view);
  const { left, top, grid } = layout;
  const { cell, font } = frame;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, grid, grid);
  ctx.clip();
  if (pinned && cell >= 6) {
    // an outline keeps the cells' colours readable
    const at = (pinned.index - (pinned.axis === "row" ? frame.y0 : frame.x0)) * cell;
    ctx.strokeStyle = COLORS.pinned;
    ctx.lineWidth = 2;
    if (pinned.axis === "row") ctx.strokeRect(left + 1, top + at, grid - 2, cell);
    else ctx.strokeRect(left + at, top + 1, cell, grid - 2);
  } else if (pinned) {
    fillBand(ctx, layout, frame, pinned.axis, pinned.index, "rgba(194, 65, 12, 0.55)");
  }
  if (hover) {
    const tint = cell >= 6 ? "rgba(234, 88, 12, 0.10)" : "rgba(234, 88, 12, 0.35)";
    fillBand(ctx, layout, frame, "row", hover.row, tint);
    fillBand(ctx, layout, frame, "col", hover.col, tint);
    ctx.strokeStyle = COLORS.highlight;
    ctx.lineWidth = 2;
    const box = Math.max(cell, 6);
    const cx = left + (hover.col + 0.5 - frame.x0) * cell;
    const cy = top + (hover.row + 0.5 - frame.y0) * cell;
    ctx.strokeRect(cx - box / 2, cy - box / 2, box, box);
  }
  ctx.restore();
  ctx.font = `600 ${font}px ${FONT_FAMILY}`;
  const label = (axis, i, color) => {
    ctx.save();
    clipAxis(ctx, layout, axis);
    drawLabel(ctx, layout, frame, axis, i, labels[i], color, true);
    ctx.restore();
  };
  if (pinned) label(pinned.axis, pinned.index, COLORS.pinned);
  if (hover) {
    label("row", hover.row, COLORS.highlight);
    label("col", hover.col, COLORS.highlight);
  }
}

function line(...children) {
  const div = document.createElement("div");
  div.append(...children);
  return div;
}

function option(value, text) {
  const el = document.createElement("option");
  el.value = value;
  el.textContent = text;
  return el;
}

/** Human description of what is shown, e.g. "Layer 3 · mean of 12 heads · special tokens hidden". */
function caption(state, meta, n) {
  const agg = aggregateOf(state);
  const parts = [];
  if (agg === "none") parts.push(`Layer ${state.layer} · head ${state.head}`);
  else if (agg === "mean_heads") parts.push(`Layer ${state.layer} · mean of ${meta.heads} heads`);
  else if (agg === "mean_layers") parts.push(`Head ${state.head} · mean over ${meta.layers} layers`);
  else parts.push(`Mean of all ${meta.layers * meta.heads} heads`);
  if (state.mergeWords) parts.push(`${n} words`);
  else parts.push(`${n} tokens`);
  if (state.hideSpecial) parts.push("special tokens hidden, rows renormalised");
  return parts.join(" · ");
}

/**
 * Mount the view into `panel`. `ctx` provides loadHead(layer, head) → Promise<Float32Array>, prefetch(layer,
 * head), withKey(fetcher), the store and a tooltip.
 * Returns {update(state) → Promise, unmount()}.
 */
export function mount(panel, ctx) {
  const $ = (sel) => panel.querySelector(sel);
  const canvas = $("#heatmap");
  const overlay = $("#heatmap-overlay");
  const wrap = $("#heatmap-wrap");
  const side = $("#heatmap-side");
  const legend = $("#legend");
  const legendHint = $("#legend-hint");
  const modeSelect = $("#color-mode");
  const gammaControl = $("#gamma-control");
  const gammaInput = $("#color-gamma");
  const gammaValue = $("#color-gamma-value");
  const captionEl = $("#heatmap-caption");
  const zoomLevel = $("#zoom-level");
  const zoomButtons = { in: $("#zoom-in"), out: $("#zoom-out"), reset: $("#zoom-reset") };
  const focus = {
    title: $("#focus-title"),
    hint: $("#focus-hint"),
    query: $("#focus-query"),
    list: $("#focus-list"),
    token: $("#focus-token"),
    axis: $("#focus-axis"),
  };

  // shown: {meta, state, matrix, n, groups, labels, special, positions, colorScale, layout}
  let shown = null;
  // Colour scale and gamma live in the store (and so in the URL: a reload restores them).
  const initial = ctx.store.get();
  let mode = initial.scale in COLOR_MODES ? initial.scale : "linear";
  let gamma = Number.isFinite(initial.gamma) && initial.gamma > 0 ? initial.gamma : DEFAULT_GAMMA;
  let request = 0;
  let lastWidth = 0;
  let hovered = null; // {row, col} under the pointer
  let pointer = null; // last pointer position over the matrix, to refresh the tooltip after a redraw
  let pinned = null; // {axis: "row"|"col", index}: the focused token's row or column
  let view = { zoom: 1, x0: 0, y0: 0 };
  let drag = null; // {x, y, x0, y0, moved} while a button is held on the matrix
  let frameRequested = false;
  const cells = document.createElement("canvas");
  const viewCache = new Map(); // params → Promise<{data, groups}>
  const cleanups = [];
  heatmapHooks = ctx.marks;
  ctx.setFigure(() =>
    shown && {
      matrix: shown.matrix,
      labels: shown.labels,
      special: shown.special,
      colorScale: shown.colorScale,
      caption: captionEl.textContent,
    });
  cleanups.push(() => {
    ctx.setFigure(null);
  });

  /** Width the matrix may use: the panel, less the side column when it sits beside the matrix. */
  function availableWidth() {
    const beside = side && getComputedStyle(panel).flexDirection === "row";
    const gap = Number.parseFloat(getComputedStyle(panel).columnGap) || 0;
    return Math.max(200, panel.clientWidth - (beside ? side.offsetWidth + gap : 0));
  }

  function clampView(v, n) {
    const zoom = clamp(v.zoom, 1, shown && shown.layout ? shown.layout.maxZoom : 1);
    const visible = n / zoom;
    return { zoom, x0: clamp(v.x0, 0, n - visible), y0: clamp(v.y0, 0, n - visible) };
  }

  function describeZoom() {
    if (!shown || !shown.layout) return;
    const frame = frameOf(shown.layout, view);
    const r0 = Math.floor(view.y0);
    const r1 = Math.min(shown.n, Math.ceil(view.y0 + frame.visible)) - 1;
    const c0 = Math.floor(view.x0);
    const c1 = Math.min(shown.n, Math.ceil(view.x0 + frame.visible)) - 1;
    zoomLevel.textContent =
      view.zoom <= 1.0001
        ? `All ${shown.n} rows and columns`
        : `×${view.zoom.toFixed(1)} · rows ${r0}–${r1}, columns ${c0}–${c1} of ${shown.n}`;
    canvas.dataset.zoom = String(Math.round(view.zoom * 1000) / 1000);
    canvas.dataset.visible = String(Math.round(frame.visible));
    zoomButtons.reset.disabled = view.zoom <= 1.0001;
    zoomButtons.out.disabled = view.zoom <= 1.0001;
    zoomButtons.in.disabled = view.zoom >= shown.layout.maxZoom - 1e-6;
    wrap.classList.toggle("zoomed", view.zoom > 1.0001);
  }

  /** Lay out for the current width and draw everything from the painted cells. */
  function render() {
    if (!shown) return;
    lastWidth = panel.clientWidth;
    shown.layout = computeLayout(canvas.getContext("2d"), shown.labels, availableWidth(), window.devicePixelRatio || 1);
    view = clampView(view, shown.n);
    redraw();
  }

  /** Draw the current zoom window (cheap: one drawImage and the visible labels). */
  function redraw() {
    if (!shown || !shown.layout) return;
    const { labels, special, layout, marks } = shown;
    drawHeatmap(canvas, { cells, labels, special, layout, view, marks });
    drawOverlay(overlay, shown.layout, view, shown.labels, hovered, pinned);
    describeZoom();
  }

  function scheduleRedraw() {
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      redraw();
    });
  }

  function setColor() {
    if (!shown) return;
    shown.colorScale = makeColorScale(matrixMax(shown.matrix), { mode, gamma });
    paintCells(cells, shown.matrix, shown.n, shown.colorScale);
    redraw();
    drawLegend(legend, shown.colorScale, { width: 260 });
  }

  if (modeSelect) {
    modeSelect.replaceChildren(...Object.entries(COLOR_MODES).map(([value, { label }]) => option(value, label)));
    modeSelect.value = mode;
    gammaControl.hidden = mode !== "power";
    const onMode = () => {
      mode = modeSelect.value in COLOR_MODES ? modeSelect.value : "linear";
      gammaControl.hidden = mode !== "power";
      ctx.store.set({ scale: mode });
      setColor();
    };
    modeSelect.addEventListener("change", onMode);
    cleanups.push(() => modeSelect.removeEventListener("change", onMode));
  }
  if (gammaInput) {
    gammaInput.value = String(gamma);
    gammaValue.textContent = gamma.toFixed(2);
    const onGamma = () => {
      gamma = Number.parseFloat(gammaInput.value) || DEFAULT_GAMMA;
      gammaValue.textContent = gamma.toFixed(2);
      ctx.store.set({ gamma });
      setColor();
    };
    gammaInput.addEventListener("input", onGamma);
    cleanups.push(() => gammaInput.removeEventListener("input", onGamma));
  }

  /** The transformed matrix for `state` (averages, hidden tokens, merged words), cached by its parameters. */
  function loadView(state) {
    const agg = aggregateOf(state);
    const params = {
      layer: agg === "none" || agg === "mean_heads" ? state.layer : undefined,
      head: agg === "none" || agg === "mean_layers" ? state.head : undefined,
      agg,
      hideSpecial: Boolean(state.hideSpecial),
      mergeWords: Boolean(state.mergeWords),
    };
    const id = `${state.meta.key}|${JSON.stringify(params)}`;
    return cachedLoad(viewCache, VIEW_CACHE, id, () => ctx.source.attention(params));
  }

  let axisCache = { meta: null, key: "", info: null };

  function axisFor(meta, groups) {
    const key = groups ? groups.map((g) => g.join("+")).join(",") : `all:${meta.n}`;
    if (axisCache.meta !== meta || axisCache.key !== key) {
      const g = groups || identityGroups(meta.n);
      axisCache = { meta, key, info: { groups: g, ...describeAxis(meta, g) } };
    }
    return axisCache;
  }

  async function update(state) {
    const { meta, layer, head } = state;
    if (!meta) return;
    const mine = ++request;
    const started = performance.now();
    canvas.dataset.state = "loading";
    let matrix;
    let groups = null;
    if (isPlain(state)) {
      matrix = await ctx.source.head(layer, head);
    } else {
      const result = await loadView(state);
      matrix = result.data;
      groups = result.groups;
    }
    if (mine !== request) return; // a newer layer/head was asked for meanwhile
    const axis = axisFor(meta, groups);
    const n = axis.info.groups.length;
    const sameAxis = shown && shown.axisKey === axis.key && shown.meta === meta;
    if (!sameAxis) {
      const keep = pinned && shown ? shown.groups[pinned.index][0] : null; // the token position, not the row
      view = { zoom: 1, x0: 0, y0: 0 };
      pinned = null;
      if (keep !== null) {
        const index = axis.info.groups.findIndex((g) => g.includes(keep));
        if (index >= 0) pinned = { axis: focus.axis.value === "col" ? "col" : "row", index };
      }
      fillFocusOptions(axis.info);
      focus.token.value = pinned ? String(pinned.index) : "";
    }
    shown = {
      meta,
      state,
      matrix,
      n,
      axisKey: axis.key,
      groups: axis.info.groups,
      labels: axis.info.labels,
      special: axis.info.special,
      positions: axis.info.positions,
      colorScale: makeColorScale(matrixMax(matrix), { mode, gamma }),
      layout: shown && sameAxis ? shown.layout : null,
    };
    shown.marks = markedRows(meta, shown.groups);
    paintCells(cells, matrix, n, shown.colorScale);
    if (!shown.layout || panel.clientWidth !== lastWidth) render();
    else redraw();
    drawLegend(legend, shown.colorScale, { width: 260 });
    const what = caption(state, meta, n);
    captionEl.textContent = what;
    legendHint.textContent = state.hideSpecial
      ? "Rows are query tokens, columns key tokens. Special tokens are hidden and every row is renormalised " +
        "to sum to 1 over the tokens shown. Colours are scaled to this matrix's maximum."
      : "Rows are query tokens, columns key tokens. Colours are scaled to this matrix's maximum.";
    canvas.setAttribute("aria-label", `Attention heatmap, ${what}: ${n} query tokens by ${n} key tokens`);
    canvas.dataset.layer = String(layer);
    canvas.dataset.head = String(head);
    canvas.dataset.n = String(n);
    canvas.dataset.agg = aggregateOf(state);
    canvas.dataset.state = "ready";
    canvas.dataset.drawMs = String(Math.round((performance.now() - started) * 10) / 10);
    ctx.expose({
      view: "heatmap",
      meta,
      layer,
      head,
      matrix,
      n,
      groups: shown.groups,
      labels: shown.labels,
      agg: aggregateOf(state),
      cellBox,
      labelBox,
    });
    showFocus();
    if (pointer) onPointer(pointer);
    // Arrow keys step to a neighbouring head or layer: have those ready.
    if (isPlain(state)) {
      for (const [l, h] of [[layer, head + 1], [layer, head - 1], [layer + 1, head], [layer - 1, head]]) {
        if (l >= 0 && h >= 0 && l < meta.layers && h < meta.heads) ctx.source.head(l, h).catch(() => {});
      }
    }
  }

  /** Displayed rows holding a position that heatmapHooks.rowMarks marks. */
  function markedRows(meta, groups) {
    const positions = new Set((heatmapHooks.rowMarks ? heatmapHooks.rowMarks(meta) : []).map((m) => m.position));
    const rows = [];
    groups.forEach((group, row) => group.some((p) => positions.has(p)) && rows.push(row));
    return rows;
  }

  function onDoubleClick(event) {
    const hit = heatmapHooks.onLabelDoubleClick && hitTest(event);
    if (hit && hit.kind === "label") heatmapHooks.onLabelDoubleClick(shown.groups[hit.index]);
  }

  // ---- geometry ---------------------------------------------------------------------------------------

  /** Viewport coordinates of the centre of displayed cell (row q, column k), or null when it is not visible. */
  function cellBox(q, k) {
    if (!shown || !shown.layout) return null;
    const frame = frameOf(shown.layout, view);
    const rect = canvas.getBoundingClientRect();
    const x = (k + 0.5 - view.x0) * frame.cell;
    const y = (q + 0.5 - view.y0) * frame.cell;
    if (x < 0 || y < 0 || x > shown.layout.grid || y > shown.layout.grid) return null;
    return { x: rect.left + shown.layout.left + x, y: rect.top + shown.layout.top + y };
  }

  /** Viewport coordinates of the label of displayed row (axis "row") or column `i`, or null if not visible. */
  function labelBox(axis, i) {
    if (!shown || !shown.layout) return null;
    const frame = frameOf(shown.layout, view);
    const rect = canvas.getBoundingClientRect();
    const along = (i + 0.5 - (axis === "row" ? view.y0 : view.x0)) * frame.cell;
    if (along < 0 || along > shown.layout.grid) return null;
    if (axis === "row") return { x: rect.left + shown.layout.left - LABEL_GAP - 3, y: rect.top + shown.layout.top + along };
    return { x: rect.left + shown.layout.left + along, y: rect.top + shown.layout.top - LABEL_GAP - 3 };
  }

  /** What is under a pointer: {kind: "cell", row, col}, {kind: "label", axis, index} or null. */
  function hitTest(event) {
    if (!shown || !shown.layout) return null;
    const rect = canvas.getBoundingClientRect();
    const { left, top, grid, n } = shown.layout;
    const frame = frameOf(shown.layout, view);
    const x = event.clientX - rect.left - left;
    const y = event.clientY - rect.top - top;
    const col = Math.floor(view.x0 + x / frame.cell);
    const row = Math.floor(view.y0 + y / frame.cell);
    const inX = x >= 0 && x < grid && col >= 0 && col < n;
    const inY = y >= 0 && y < grid && row >= 0 && row < n;
    if (inX && inY) return { kind: "cell", row, col };
    if (inY && x < 0 && x > -left) return { kind: "label", axis: "row", index: row };
    if (inX && y < 0 && y > -top) return { kind: "label", axis: "col", index: col };
    return null;
  }

  // ---- focus: hovered query, or a pinned row/column ----------------------------------------------------

  function fillFocusOptions(info) {
    const options = [option("", "none")];
    info.labels.forEach((label, i) => options.push(option(String(i), `${label}  (${info.positions[i]})`)));
    focus.token.replaceChildren(...options);
    focus.token.value = "";
  }

  function setPinned(next) {
    pinned = next;
    focus.token.value = pinned ? String(pinned.index) : "";
    if (pinned) focus.axis.value = pinned.axis;
    canvas.dataset.focus = pinned ? `${pinned.axis}:${pinned.index}` : "";
    if (shown && shown.layout) drawOverlay(overlay, shown.layout, view, shown.labels, hovered, pinned);
    showFocus();
  }

  /** The side list: the pinned row's strongest keys / column's strongest queries, else the hovered row's. */
  function showFocus() {
    const target = pinned || (hovered ? { axis: "row", index: hovered.row } : null);
    canvas.dataset.focus = pinned ? `${pinned.axis}:${pinned.index}` : "";
    if (!target || !shown) {
      focus.title.textContent = "Strongest keys";
      focus.hint.hidden = false;
      focus.query.hidden = true;
      focus.list.replaceChildren();
      focus.shown = null;
      return;
    }
    const signature = `${target.axis}:${target.index}`;
    if (focus.shown === signature && focus.matrix === shown.matrix) return;
    focus.shown = signature;
    focus.matrix = shown.matrix;
    const { matrix, n, labels, positions } = shown;
    const isRow = target.axis === "row";
    const i = target.index;
    focus.title.textContent = isRow ? "Strongest keys" : "Strongest queries";
    focus.hint.hidden = true;
    focus.query.hidden = false;
    focus.query.replaceChildren(
      span(isRow ? "What " : "What attends to "),
      span(labels[i], "tok"),
      span(isRow ? " attends to" : ""),
      span(` ${isRow ? "q" : "k"}=${positions[i]}`, "pos"),
    );
    const get = isRow ? (j) => matrix[i * n + j] : (j) => matrix[j * n + i];
    focus.list.replaceChildren(
      ...topK(n, get, Math.min(TOP_KEYS, n)).map(({ index, value }) => {
        const item = document.createElement("li");
        item.append(
          span(labels[index], "tok"),
          span(formatValue(value), "value"),
          span(`${isRow ? "k" : "q"}=${positions[index]}`, "pos"),
        );
        return item;
      }),
    );
  }

  const onFocusPick = () => {
    const value = focus.token.value;
    setPinned(value === "" ? null : { axis: focus.axis.value === "col" ? "col" : "row", index: Number(value) });
  };
  focus.token.addEventListener("change", onFocusPick);
  focus.axis.addEventListener("change", onFocusPick);
  cleanups.push(() => {
    focus.token.removeEventListener("change", onFocusPick);
    focus.axis.removeEventListener("change", onFocusPick);
  });

  // ---- pointer: hover, click, drag, wheel -----------------------------------------------------------------

  function onPointer(event) {
    pointer = { clientX: event.clientX, clientY: event.clientY };
    if (drag) return;
    const hit = hitTest(event);
    wrap.classList.toggle("over-label", Boolean(hit && hit.kind === "label"));
    if (!hit || hit.kind !== "cell") {
      clearHover();
      return;
    }
    if (!hovered || hovered.row !== hit.row || hovered.col !== hit.col) {
      hovered = { row: hit.row, col: hit.col };
      drawOverlay(overlay, shown.layout, view, shown.labels, hovered, pinned);
      showFocus();
    }
    const { matrix, n, labels, positions } = shown;
    const value = matrix[hit.row * n + hit.col];
    const tip = ctx.tooltip.element;
    tip.dataset.q = String(hit.row);
    tip.dataset.k = String(hit.col);
    tip.dataset.qTokens = positions[hit.row];
    tip.dataset.kTokens = positions[hit.col];
    tip.dataset.value = String(value);
    ctx.tooltip.show(
      [
        line(span(labels[hit.row], "tok"), span(" → ", "arrow"), span(labels[hit.col], "tok")),
        line(span(formatValue(value), "value")),
        line(span(`q=${positions[hit.row]} k=${positions[hit.col]}`, "pos")),
      ],
      event.clientX,
      event.clientY,
    );
  }

  function clearHover() {
    const had = hovered;
    hovered = null;
    if (had && shown) {
      drawOverlay(overlay, shown.layout, view, shown.labels, null, pinned);
      showFocus();
    }
    ctx.tooltip.hide();
  }

  function onLeave() {
    pointer = null;
    if (!drag) clearHover();
  }

  function onDown(event) {
    if (event.button !== 0 || !shown) return;
    drag = { x: event.clientX, y: event.clientY, x0: view.x0, y0: view.y0, moved: false, hit: hitTest(event) };
    wrap.setPointerCapture(event.pointerId);
  }

  function onMove(event) {
    if (!drag) return onPointer(event);
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < DRAG_SLOP) return;
    if (view.zoom <= 1.0001) return; // nothing to pan
    if (!drag.moved) {
      drag.moved = true;
      wrap.classList.add("dragging");
      hovered = null;
      ctx.tooltip.hide();
    }
    const frame = frameOf(shown.layout, view);
    view = clampView({ zoom: view.zoom, x0: drag.x0 - dx / frame.cell, y0: drag.y0 - dy / frame.cell }, shown.n);
    scheduleRedraw();
  }

  function onUp(event) {
    if (!drag) return;
    const { moved, hit } = drag;
    drag = null;
    wrap.classList.remove("dragging");
    if (wrap.hasPointerCapture(event.pointerId)) wrap.releasePointerCapture(event.pointerId);
    if (!moved && hit) {
      const next = hit.kind === "label" ? { axis: hit.axis, index: hit.index } : { axis: "row", index: hit.row };
      const same = pinned && pinned.axis === next.axis && pinned.index === next.index;
      setPinned(same ? null : next);
    }
    onPointer(event);
  }

  /** Zoom by `factor` keeping the matrix point under (px, py) (CSS px from the grid's corner) in place. */
  function zoomBy(factor, px, py) {
    if (!shown || !shown.layout) return;
    const before = frameOf(shown.layout, view);
    const cx = view.x0 + px / before.cell;
    const cy = view.y0 + py / before.cell;
    const zoom = clamp(view.zoom * factor, 1, shown.layout.maxZoom);
    const cell = (shown.layout.grid * zoom) / shown.n;
    view = clampView({ zoom, x0: cx - px / cell, y0: cy - py / cell }, shown.n);
    hovered = null;
    ctx.tooltip.hide();
    scheduleRedraw();
  }

  /** Zoom about the pinned token when there is one, else about the centre of what is shown. */
  function zoomButton(factor) {
    if (!shown || !shown.layout) return;
    const frame = frameOf(shown.layout, view);
    const half = shown.layout.grid / 2;
    let px = half;
    let py = half;
    if (pinned) {
      const along = clamp((pinned.index + 0.5 - (pinned.axis === "row" ? view.y0 : view.x0)) * frame.cell, 0, shown.layout.grid);
      if (pinned.axis === "row") py = along;
      else px = along;
    }
    zoomBy(factor, px, py);
  }

  function onWheel(event) {
    const hit = shown && hitTest(event);
    if (!hit || hit.kind !== "cell") return; // let the page scroll
    event.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const scale = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
    const factor = Math.exp((-event.deltaY * scale) / 400);
    zoomBy(factor, event.clientX - rect.left - shown.layout.left, event.clientY - rect.top - shown.layout.top);
  }

  function resetZoom() {
    view = { zoom: 1, x0: 0, y0: 0 };
    scheduleRedraw();
  }

  function onKey(event) {
    if (event.key !== "Escape" || !pinned) return;
    const target = event.target;
    if (target && target.closest && target.closest("input, textarea, [contenteditable='true']")) return;
    setPinned(null);
  }

  const onZoomIn = () => zoomButton(ZOOM_STEP);
  const onZoomOut = () => zoomButton(1 / ZOOM_STEP);
  zoomButtons.in.addEventListener("click", onZoomIn);
  zoomButtons.out.addEventListener("click", onZoomOut);
  zoomButtons.reset.addEventListener("click", resetZoom);
  document.addEventListener("keydown", onKey);

  const resize = new ResizeObserver(() => {
    if (shown && panel.clientWidth !== lastWidth) requestAnimationFrame(render);
  });
  resize.observe(panel);
  wrap.addEventListener("pointermove", onMove);
  wrap.addEventListener("pointerdown", onDown);
  wrap.addEventListener("pointerup", onUp);
  wrap.addEventListener("pointercancel", onUp);
  wrap.addEventListener("pointerleave", onLeave);
  wrap.addEventListener("wheel", onWheel, { passive: false });
  wrap.addEventListener("dblclick", onDoubleClick);

  return {
    update,
    unmount() {
      request++;
      resize.disconnect();
      for (const fn of cleanups) fn();
      zoomButtons.in.removeEventListener("click", onZoomIn);
      zoomButtons.out.removeEventListener("click", onZoomOut);
      zoomButtons.reset.removeEventListener("click", resetZoom);
      document.removeEventListener("keydown", onKey);
      wrap.removeEventListener("pointermove", onMove);
      wrap.removeEventListener("pointerdown", onDown);
      wrap.removeEventListener("pointerup", onUp);
      wrap.removeEventListener("pointercancel", onUp);
      wrap.removeEventListener("pointerleave", onLeave);
      wrap.removeEventListener("wheel", onWheel);
      wrap.removeEventListener("dblclick", onDoubleClick);
      onLeave();
    },
  };
}
