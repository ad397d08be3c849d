// Heatmap view: one head's [n, n] attention matrix on a canvas.
// Rows are query tokens (left axis), columns key tokens (top axis). Cells are pixels of an n×n image scaled up
// without smoothing, never one DOM element per cell, so 512 tokens draw as fast as 10.

import { COLOR_MODES, drawLegend, makeColorScale, paintValues, setupCanvas } from "./colorscale.js";
import { span } from "./tooltip.js";

/** Which shared controls this view uses (main.js hides the others). */
export const controls = ["layer", "head"];

const FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const MAX_CELL = 44; // CSS px: a 10-token matrix stays a compact square
const MAX_GRID = 1000; // CSS px; also kept within the window height so the whole matrix fits on screen
const MIN_LABEL_FONT = 9;
const MAX_LABEL_FONT = 13;
const MAX_LABEL_WIDTH = 140; // CSS px; longer token labels are cut with an ellipsis
const LABEL_GAP = 6;
const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500];
const TOP_KEYS = 5;

const COLORS = {
  text: "#1e293b",
  special: "#94a3b8",
  frame: "rgba(15, 23, 42, 0.28)",
  tick: "rgba(15, 23, 42, 0.35)",
  highlight: "#ea580c",
  labelBackground: "#ffffff",
};

/** A token's label text: its display form, with blank tokens made visible. */
export function tokenLabel(token) {
  const text = token && typeof token.display === "string" ? token.display : "";
  if (text.trim() !== "") return text;
  return text.length ? "␣".repeat(Math.min(text.length, 3)) : "∅";
}

/** How a value is written for people: four significant digits. */
export function formatValue(value) {
  return Number.isFinite(value) ? value.toPrecision(4) : String(value);
}

function niceStep(minimum) {
  return NICE_STEPS.find((s) => s >= minimum) ?? Math.ceil(minimum / 1000) * 1000;
}

function matrixMax(matrix) {
  let max = 0;
  for (let i = 0; i < matrix.length; i++) if (matrix[i] > max) max = matrix[i];
  return max;
}

/** The `k` largest entries of row `row` as [{col, value}], largest first. */
function topKeys(matrix, n, row, k) {
  const best = [];
  const base = row * n;
  for (let col = 0; col < n; col++) {
    const value = matrix[base + col];
    if (best.length === k && !(value > best[k - 1].value)) continue;
    let at = best.length;
    while (at > 0 && value > best[at - 1].value) at--;
    best.splice(at, 0, { col, value });
    if (best.length > k) best.pop();
  }
  return best;
}

/** Cut `text` to at most `maxWidth` CSS px in the context's current font, ending with an ellipsis. */
function fitText(ctx, text, maxWidth) {
  if (ctx.measureText(text).width <= maxWidth) return text;
  const chars = Array.from(text); // code points: never split a surrogate pair
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${chars.slice(0, mid).join("")}…`).width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return `${chars.slice(0, lo).join("")}…`;
}

/**
 * Work out cell size, label font, label thinning and margins for `n` tokens in `width` CSS px.
 * Cells are whole device pixels once they are big enough to see, so every cell has the same size.
 */
function computeLayout(ctx, labels, width, dpr) {
  const n = labels.length;
  const tall = Math.max(480, window.innerHeight - 140);
  const plan = (margin) => {
    const room = Math.max(40, Math.min(width - margin - 12, MAX_GRID, tall));
    let cell = Math.min(room / n, MAX_CELL);
    const cellDevice = cell * dpr;
    if (cellDevice >= 3) cell = Math.floor(cellDevice) / dpr;
    const font = Math.max(MIN_LABEL_FONT, Math.min(MAX_LABEL_FONT, Math.floor(cell * 0.62)));
    const step = niceStep(Math.ceil((font + 3) / cell));
    return { cell, font, step };
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
    cell: layout.cell,
    font: layout.font,
    step: layout.step,
    left,
    top,
    grid,
    labelWidth: margin - LABEL_GAP - 4,
    width: Math.ceil(left + grid + 8),
    height: Math.ceil(top + grid + 8),
  };
}

/** Draw one row label (axis "row") or column label (axis "col") for position `i`. */
function drawLabel(ctx, layout, axis, i, text, color, emphasis) {
  const { cell, left, top, font, labelWidth } = layout;
  const center = (i + 0.5) * cell;
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

function drawAxisLabels(ctx, layout, labels, special) {
  const { n, cell, left, top, step, font } = layout;
  ctx.font = `${font}px ${FONT_FAMILY}`;
  for (let i = 0; i < n; i += step) {
    const color = special[i] ? COLORS.special : COLORS.text;
    drawLabel(ctx, layout, "row", i, labels[i], color, false);
    drawLabel(ctx, layout, "col", i, labels[i], color, false);
  }
  if (step > 1) {
    // Small ticks mark which rows/columns the thinned-out labels belong to.
    ctx.strokeStyle = COLORS.tick;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let i = 0; i < n; i += step) {
      const c = Math.round((i + 0.5) * cell * 2) / 2;
      ctx.moveTo(left - 3, top + c);
      ctx.lineTo(left, top + c);
      ctx.moveTo(left + c, top - 3);
      ctx.lineTo(left + c, top);
    }
    ctx.stroke();
  }
}

let cellsCanvas = null;

/** A reusable n×n offscreen canvas. */
function cellCanvas(n) {
  if (!cellsCanvas) cellsCanvas = document.createElement("canvas");
  if (cellsCanvas.width !== n || cellsCanvas.height !== n) {
    cellsCanvas.width = n;
    cellsCanvas.height = n;
  }
  return cellsCanvas;
}

/**
 * Draw `matrix` (Float32Array, n*n, row = query) with token labels on `canvas`, at most `width` CSS px wide.
 * Returns the layout used, for hit-testing pointer positions.
 */
export function drawHeatmap(canvas, { matrix, labels, special, colorScale, width }) {
  const n = labels.length;
  if (matrix.length !== n * n) throw new Error(`matrix has ${matrix.length} values, expected ${n}×${n}`);
  const dpr = window.devicePixelRatio || 1;
  const layout = computeLayout(canvas.getContext("2d"), labels, width, dpr);
  const { ctx } = setupCanvas(canvas, layout.width, layout.height);

  // One pixel per cell in an offscreen canvas, then one scaled, unsmoothed drawImage.
  const cells = cellCanvas(n);
  const cellsCtx = cells.getContext("2d");
  const image = cellsCtx.createImageData(n, n);
  paintValues(image, matrix, colorScale);
  cellsCtx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cells, layout.left, layout.top, layout.grid, layout.grid);

  ctx.strokeStyle = COLORS.frame;
  ctx.lineWidth = 1;
  ctx.strokeRect(layout.left - 0.5, layout.top - 0.5, layout.grid + 1, layout.grid + 1);
  drawAxisLabels(ctx, layout, labels, special);
  return layout;
}

/** Draw the hover marks for cell {row, col} on the transparent overlay canvas; null clears it. */
function drawHover(overlay, layout, labels, cell) {
  const { ctx } = setupCanvas(overlay, layout.width, layout.height);
  if (!cell) return;
  const { row, col } = cell;
  const { left, top, grid, font } = layout;
  const size = layout.cell;
  // Row and column bands: a tint on big cells, thin guide lines on small ones.
  ctx.fillStyle = size >= 6 ? "rgba(234, 88, 12, 0.10)" : "rgba(234, 88, 12, 0.35)";
  if (size >= 6) {
    ctx.fillRect(left, top + row * size, grid, size);
    ctx.fillRect(left + col * size, top, size, grid);
  } else {
    ctx.fillRect(left, top + (row + 0.5) * size - 0.5, grid, 1);
    ctx.fillRect(left + (col + 0.5) * size - 0.5, top, 1, grid);
  }
  ctx.strokeStyle = COLORS.highlight;
  ctx.lineWidth = 2;
  const box = Math.max(size, 6);
  const cx = left + (col + 0.5) * size;
  const cy = top + (row + 0.5) * size;
  ctx.strokeRect(cx - box / 2, cy - box / 2, box, box);
  ctx.font = `600 ${font}px ${FONT_FAMILY}`;
  drawLabel(ctx, layout, "row", row, labels[row], COLORS.highlight, true);
  drawLabel(ctx, layout, "col", col, labels[col], COLORS.highlight, true);
}

function line(...children) {
  const div = document.createElement("div");
  div.append(...children);
  return div;
}

/**
 * Mount the view into `panel`. `ctx` provides loadHead(layer, head) → Promise<Float32Array>, prefetch(layer,
 * head) and a tooltip.
 * Returns {update(state) → Promise, unmount()}.
 */
export function mount(panel, ctx) {
  const canvas = panel.querySelector("#heatmap");
  const overlay = panel.querySelector("#heatmap-overlay");
  const wrap = panel.querySelector("#heatmap-wrap");
  const side = panel.querySelector("#heatmap-side");
  const legend = panel.querySelector("#legend");
  const modeSelect = panel.querySelector("#color-mode");
  const focus = {
    hint: panel.querySelector("#focus-hint"),
    query: panel.querySelector("#focus-query"),
    list: panel.querySelector("#focus-list"),
  };

  let shown = null; // {meta, layer, head, matrix, labels, special, colorScale, layout}
  let mode = "linear";
  let request = 0;
  let lastWidth = 0;
  let hovered = null; // {row, col} under the pointer
  let pointer = null; // last pointer position over the matrix, to refresh the tooltip after a redraw

  /** Width the matrix may use: the panel, less the side column when it sits beside the matrix. */
  function availableWidth() {
    const beside = side && getComputedStyle(panel).flexDirection === "row";
    const gap = Number.parseFloat(getComputedStyle(panel).columnGap) || 0;
    return Math.max(200, panel.clientWidth - (beside ? side.offsetWidth + gap : 0));
  }

  function render() {
    if (!shown) return;
    lastWidth = panel.clientWidth;
    shown.layout = drawHeatmap(canvas, { ...shown, width: availableWidth() });
    drawHover(overlay, shown.layout, shown.labels, null);
    hovered = null;
  }

  function setMode(value) {
    mode = value in COLOR_MODES ? value : "linear";
    if (!shown) return;
    shown.colorScale = makeColorScale(shown.colorScale.max, { mode });
    render();
    drawLegend(legend, shown.colorScale, { width: 260 });
  }

  if (modeSelect) {
    modeSelect.replaceChildren(
      ...Object.entries(COLOR_MODES).map(([value, { label }]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = label;
        return option;
      }),
    );
    modeSelect.value = mode;
    modeSelect.addEventListener("change", () => setMode(modeSelect.value));
  }

  async function update(state) {
    const { meta, layer, head } = state;
    if (!meta) return;
    const mine = ++request;
    canvas.dataset.state = "loading";
    const matrix = await ctx.loadHead(layer, head);
    if (mine !== request) return; // a newer layer/head was asked for meanwhile
    const labels = meta.tokens.map(tokenLabel);
    const special = meta.tokens.map((t) => Boolean(t.special));
    const colorScale = makeColorScale(matrixMax(matrix), { mode });
    shown = { meta, layer, head, matrix, labels, special, colorScale, layout: null };
    render();
    drawLegend(legend, colorScale, { width: 260 });
    canvas.setAttribute(
      "aria-label",
      `Attention heatmap, layer ${layer}, head ${head}: ${meta.n} query tokens by ${meta.n} key tokens`,
    );
    canvas.dataset.layer = String(layer);
    canvas.dataset.head = String(head);
    canvas.dataset.n = String(meta.n);
    canvas.dataset.state = "ready";
    window.__viz = { view: "heatmap", meta, layer, head, matrix, cellBox };
    if (pointer) onPointer(pointer);
    else showFocus(null);
    // Arrow keys step to a neighbouring head or layer: have those ready.
    for (const [l, h] of [[layer, head + 1], [layer, head - 1], [layer + 1, head], [layer - 1, head]]) {
      if (l >= 0 && h >= 0 && l < meta.layers && h < meta.heads) ctx.prefetch(l, h);
    }
  }

  /** Viewport coordinates of the centre of cell (row q, column k): lets tests hover a known cell. */
  function cellBox(q, k) {
    if (!shown || !shown.layout) return null;
    const rect = canvas.getBoundingClientRect();
    const { left, top, cell } = shown.layout;
    return { x: rect.left + left + (k + 0.5) * cell, y: rect.top + top + (q + 0.5) * cell };
  }

  function cellAt(event) {
    if (!shown || !shown.layout) return null;
    const rect = canvas.getBoundingClientRect();
    const { left, top, cell, n } = shown.layout;
    const col = Math.floor((event.clientX - rect.left - left) / cell);
    const row = Math.floor((event.clientY - rect.top - top) / cell);
    if (row < 0 || col < 0 || row >= n || col >= n) return null;
    return { row, col };
  }

  /** List the keys the query in `row` attends to most, in the side panel. */
  function showFocus(row) {
    if (row === null || !shown) {
      focus.hint.hidden = false;
      focus.query.hidden = true;
      focus.list.replaceChildren();
      focus.row = null;
      return;
    }
    if (focus.row === row && focus.matrix === shown.matrix) return;
    focus.row = row;
    focus.matrix = shown.matrix;
    const { meta, matrix } = shown;
    focus.hint.hidden = true;
    focus.query.hidden = false;
    focus.query.replaceChildren(span("Query "), span(meta.tokens[row].display, "tok"), span(` q=${row}`, "pos"));
    focus.list.replaceChildren(
      ...topKeys(matrix, meta.n, row, Math.min(TOP_KEYS, meta.n)).map(({ col, value }) => {
        const item = document.createElement("li");
        item.append(span(meta.tokens[col].display, "tok"), span(formatValue(value), "value"), span(`k=${col}`, "pos"));
        return item;
      }),
    );
  }

  function onPointer(event) {
    pointer = { clientX: event.clientX, clientY: event.clientY };
    const cell = cellAt(event);
    if (!cell) {
      clearHover();
      return;
    }
    if (!hovered || hovered.row !== cell.row || hovered.col !== cell.col) {
      hovered = cell;
      drawHover(overlay, shown.layout, shown.labels, cell);
      showFocus(cell.row);
    }
    const { meta, matrix } = shown;
    const value = matrix[cell.row * meta.n + cell.col];
    const tip = ctx.tooltip.element;
    tip.dataset.q = String(cell.row);
    tip.dataset.k = String(cell.col);
    tip.dataset.value = String(value);
    ctx.tooltip.show(
      [
        line(span(meta.tokens[cell.row].display, "tok"), span(" → ", "arrow"), span(meta.tokens[cell.col].display, "tok")),
        line(span(formatValue(value), "value")),
        line(span(`q=${cell.row} k=${cell.col}`, "pos")),
      ],
      event.clientX,
      event.clientY,
    );
  }

  function clearHover() {
    if (hovered && shown) drawHover(overlay, shown.layout, shown.labels, null);
    hovered = null;
    ctx.tooltip.hide();
  }

  function onLeave() {
    pointer = null;
    clearHover();
  }

  const resize = new ResizeObserver(() => {
    if (shown && panel.clientWidth !== lastWidth) requestAnimationFrame(render);
  });
  resize.observe(panel);
  wrap.addEventListener("pointermove", onPointer);
  wrap.addEventListener("pointerleave", onLeave);

  return {
    update,
    unmount() {
      request++;
      resize.disconnect();
      wrap.removeEventListener("pointermove", onPointer);
      wrap.removeEventListener("pointerleave", onLeave);
      onLeave();
    },
  };
}
