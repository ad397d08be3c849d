// Heatmap view: one head's [n, n] attention matrix on a canvas.
// Rows are query tokens (left axis), columns key tokens (top axis). Cells are pixels of an n×n image scaled up
// without smoothing, never one DOM element per cell, so 512 tokens draw as fast as 10.

import { drawLegend, makeColorScale, paintValues, setupCanvas } from "./colorscale.js";
import { span } from "./tooltip.js";

/** Which shared controls this view uses (main.js hides the others). */
export const controls = ["layer", "head"];

const FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const MAX_CELL = 44; // CSS px: a 10-token matrix stays a compact square
const MAX_GRID = 1000; // CSS px
const MIN_LABEL_FONT = 9;
const MAX_LABEL_FONT = 13;
const MAX_LABEL_WIDTH = 150; // CSS px; longer token labels are cut with an ellipsis
const LABEL_GAP = 6;
const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500];

const COLORS = {
  text: "#1e293b",
  special: "#94a3b8",
  frame: "rgba(15, 23, 42, 0.28)",
  tick: "rgba(15, 23, 42, 0.35)",
  highlight: "#ea580c",
  highlightFill: "rgba(234, 88, 12, 0.10)",
  labelBackground: "#ffffff",
};

/** A token's label text: its display form, with blank tokens made visible. */
export function tokenLabel(token) {
  const text = token && typeof token.display === "string" ? token.display : "";
  return text.trim() === "" ? (text.length ? "␣".repeat(Math.min(text.length, 3)) : "∅") : text;
}

function niceStep(minimum) {
  return NICE_STEPS.find((s) => s >= minimum) ?? Math.ceil(minimum / 1000) * 1000;
}

function matrixMax(matrix) {
  let max = 0;
  for (let i = 0; i < matrix.length; i++) if (matrix[i] > max) max = matrix[i];
  return max;
}

/** Cut `text` to at most `maxWidth` CSS px in the context's current font, ending with an ellipsis. */
function fitText(ctx, text, maxWidth) {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}

/**
 * Work out cell size, label font, label thinning and margins for `n` tokens in `width` CSS px.
 * Cells are whole device pixels once they are big enough to see, so every cell has the same size.
 */
function computeLayout(ctx, labels, width, dpr) {
  const n = labels.length;
  const plan = (margin) => {
    const room = Math.max(40, Math.min(width - margin - 12, MAX_GRID));
    let cell = Math.min(room / n, MAX_CELL);
    const cellDevice = cell * dpr;
    if (cellDevice >= 3) cell = Math.floor(cellDevice) / dpr;
    const font = Math.max(MIN_LABEL_FONT, Math.min(MAX_LABEL_FONT, Math.floor(cell * 0.62)));
    const step = niceStep(Math.ceil((font + 3) / cell));
    return { cell, font, step };
  };

  // Two passes: the margin depends on the label font, which depends on the cell size.
  let margin = 90;
  let layout = null;
  for (let pass = 0; pass < 2; pass++) {
    layout = plan(margin);
    ctx.font = `${layout.font}px ${FONT_FAMILY}`;
    let widest = 0;
    for (let i = 0; i < n; i += layout.step) widest = Math.max(widest, ctx.measureText(labels[i]).width);
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
    width: Math.max(width, Math.ceil(left + grid + 8)),
    height: Math.ceil(top + grid + 8),
  };
}

function drawAxisLabels(ctx, layout, labels, special, { only = null, emphasis = false } = {}) {
  const { n, cell, left, top, step, font, labelWidth } = layout;
  ctx.font = `${emphasis ? "600 " : ""}${font}px ${FONT_FAMILY}`;
  ctx.textBaseline = "middle";
  const indices = only ?? Array.from({ length: Math.ceil(n / step) }, (_, k) => k * step);
  for (const axis of ["row", "col"]) {
    const list = only ? [axis === "row" ? only[0] : only[1]] : indices;
    for (const i of list) {
      if (i === null || i === undefined) continue;
      const text = fitText(ctx, labels[i], labelWidth);
      const center = (i + 0.5) * cell;
      ctx.save();
      if (axis === "row") {
        ctx.translate(left - LABEL_GAP, top + center);
      } else {
        ctx.translate(left + center, top - LABEL_GAP);
        ctx.rotate(-Math.PI / 2);
      }
      ctx.textAlign = axis === "row" ? "right" : "left";
      if (emphasis) {
        const w = ctx.measureText(text).width;
        const x = axis === "row" ? -w - 3 : -3;
        ctx.fillStyle = COLORS.labelBackground;
        ctx.fillRect(x, -font * 0.75, w + 6, font * 1.5);
        ctx.fillStyle = COLORS.highlight;
      } else {
        ctx.fillStyle = special[i] ? COLORS.special : COLORS.text;
      }
      ctx.fillText(text, 0, 0);
      ctx.restore();
    }
  }
  if (!emphasis && step > 1) {
    // Small ticks mark which rows/columns the thinned-out labels belong to.
    ctx.strokeStyle = COLORS.tick;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const i of indices) {
      const c = Math.round((i + 0.5) * cell * 2) / 2;
      ctx.moveTo(left - 3, top + c);
      ctx.lineTo(left, top + c);
      ctx.moveTo(left + c, top - 3);
      ctx.lineTo(left + c, top);
    }
    ctx.stroke();
  }
}

/**
 * Draw `matrix` (Float32Array, n*n, row = query) with token labels on `canvas`, `width` CSS px wide.
 * Returns the layout used, for hit-testing pointer positions.
 */
export function drawHeatmap(canvas, { matrix, labels, special, colorScale, width }) {
  const n = labels.length;
  if (matrix.length !== n * n) throw new Error(`matrix has ${matrix.length} values, expected ${n}×${n}`);
  const dpr = window.devicePixelRatio || 1;
  const probe = canvas.getContext("2d");
  const layout = computeLayout(probe, labels, width, dpr);
  const { ctx } = setupCanvas(canvas, layout.width, layout.height);
  ctx.clearRect(0, 0, layout.width, layout.height);

  // One pixel per cell in an offscreen canvas, then one scaled, unsmoothed drawImage.
  const cells = document.createElement("canvas");
  cells.width = n;
  cells.height = n;
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

/** Draw the hover marks for cell (row, col) on the transparent overlay canvas; null clears it. */
function drawHover(overlay, layout, labels, special, cell) {
  const { ctx } = setupCanvas(overlay, layout.width, layout.height);
  ctx.clearRect(0, 0, layout.width, layout.height);
  if (!cell) return;
  const { row, col } = cell;
  const { left, top, grid } = layout;
  const size = layout.cell;
  ctx.fillStyle = COLORS.highlightFill;
  ctx.fillRect(left, top + row * size, grid, size);
  ctx.fillRect(left + col * size, top, size, grid);
  ctx.strokeStyle = COLORS.highlight;
  ctx.lineWidth = size >= 6 ? 2 : 1.5;
  const pad = Math.max(size, 4);
  const cx = left + col * size + size / 2;
  const cy = top + row * size + size / 2;
  ctx.strokeRect(cx - pad / 2, cy - pad / 2, pad, pad);
  drawAxisLabels(ctx, layout, labels, special, { only: [row, col], emphasis: true });
}

/**
 * Mount the view into `panel`. `ctx` provides loadHead(layer, head) → Promise<Float32Array> and a tooltip.
 * Returns {update(state) → Promise, unmount()}.
 */
export function mount(panel, ctx) {
  const canvas = panel.querySelector("#heatmap");
  const overlay = panel.querySelector("#heatmap-overlay");
  const legend = panel.querySelector("#legend");
  const wrap = panel.querySelector("#heatmap-wrap");

  let shown = null; // {meta, layer, head, matrix, labels, special, colorScale, layout}
  let request = 0;
  let lastWidth = 0;
  let hovered = null; // {row, col} under the pointer
  let pointer = null; // last pointer position over the view, to refresh the tooltip after a redraw

  function render() {
    if (!shown) return;
    lastWidth = wrap.clientWidth;
    shown.layout = drawHeatmap(canvas, { ...shown, width: lastWidth });
    drawHover(overlay, shown.layout, shown.labels, shown.special, null);
    hovered = null;
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
    const colorScale = makeColorScale(matrixMax(matrix));
    shown = { meta, layer, head, matrix, labels, special, colorScale, layout: null };
    render();
    drawLegend(legend, colorScale);
    canvas.setAttribute(
      "aria-label",
      `Attention heatmap, layer ${layer}, head ${head}: ${meta.n} query tokens by ${meta.n} key tokens`,
    );
    canvas.dataset.layer = String(layer);
    canvas.dataset.head = String(head);
    canvas.dataset.n = String(meta.n);
    canvas.dataset.state = "ready";
    window.__viz = { view: "heatmap", meta, layer, head, matrix };
    if (pointer) onPointer(pointer);
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

  function onPointer(event) {
    pointer = { clientX: event.clientX, clientY: event.clientY };
    const cell = cellAt(event);
    if (!cell) {
      clearHover();
      return;
    }
    if (!hovered || hovered.row !== cell.row || hovered.col !== cell.col) {
      hovered = cell;
      drawHover(overlay, shown.layout, shown.labels, shown.special, cell);
    }
    const { meta, matrix } = shown;
    const value = matrix[cell.row * meta.n + cell.col];
    const query = meta.tokens[cell.row];
    const key = meta.tokens[cell.col];
    ctx.tooltip.element.dataset.q = String(cell.row);
    ctx.tooltip.element.dataset.k = String(cell.col);
    ctx.tooltip.element.dataset.value = String(value);
    ctx.tooltip.show(
      [
        lineOf(
          span(query.display, "tok"),
          span(" → ", "arrow"),
          span(key.display, "tok"),
        ),
        lineOf(span(value.toPrecision(4), "value")),
        lineOf(span(`q=${cell.row} k=${cell.col}`, "pos")),
      ],
      event.clientX,
      event.clientY,
    );
  }

  function clearHover() {
    if (hovered && shown) drawHover(overlay, shown.layout, shown.labels, shown.special, null);
    hovered = null;
    ctx.tooltip.hide();
  }

  function onLeave() {
    pointer = null;
    clearHover();
  }

  const resize = new ResizeObserver(() => {
    if (shown && wrap.clientWidth !== lastWidth) requestAnimationFrame(render);
  });
  resize.observe(wrap);
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

function lineOf(...children) {
  const div = document.createElement("div");
  div.append(...children);
  return div;
}
