// A whole n × n matrix (row = query, column = key) drawn once on a canvas with its token labels, for the views
// that show a matrix without zooming (rollout, comparison). Pure layout math is exported for tests.

import { FONT_FAMILY, fitText, setupCanvas } from "./canvas.js";
import { paintValues } from "./color.js";

const MAX_CELL = 44; // CSS px: a 10-token matrix stays a compact square
const MAX_GRID = 1000; // CSS px; also kept within the window height
const MIN_LABEL_FONT = 9;
const MAX_LABEL_FONT = 13;
const MAX_LABEL_WIDTH = 140; // CSS px; longer token labels are cut with an ellipsis
const LABEL_GAP = 6;
const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500];
const COLORS = { text: "#1e293b", special: "#94a3b8", frame: "rgba(15, 23, 42, 0.28)", tick: "rgba(15, 23, 42, 0.35)" };
export const MARK_COLOR = "#7c3aed";

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** The smallest "nice" label step (1, 2, 4, 5, 10, …) that is at least `minimum`. */
export function niceStep(minimum) {
  return NICE_STEPS.find((s) => s >= minimum) ?? Math.ceil(minimum / 1000) * 1000;
}

/** The label font size (CSS px) for cells of `cell` CSS px. */
export function labelFont(cell) {
  return clamp(Math.floor(cell * 0.62), MIN_LABEL_FONT, MAX_LABEL_FONT);
}

/**
 * Cell size and margins for `n` tokens in `width` CSS px (at most `tall` high), with labels `widest` px wide at
 * their font: cells are whole device pixels once they are big enough to see.
 */
export function matrixLayout(n, width, { dpr = 1, tall = 800, widest = 90 } = {}) {
  const margin = Math.ceil(Math.min(widest, MAX_LABEL_WIDTH)) + LABEL_GAP + 4;
  const room = Math.max(40, Math.min(width - margin - 12, MAX_GRID, tall));
  let cell = Math.min(room / n, MAX_CELL);
  if (cell * dpr >= 3) cell = Math.floor(cell * dpr) / dpr;
  const snap = (v) => Math.round(v * dpr) / dpr;
  const left = snap(margin);
  const top = snap(margin);
  const grid = cell * n;
  const font = labelFont(cell);
  return {
    n, cell, left, top, grid, font,
    step: niceStep(Math.ceil((font + 3) / cell)),
    labelWidth: margin - LABEL_GAP - 4,
    width: Math.ceil(left + grid + 8),
    height: Math.ceil(top + grid + 8),
  };
}

function drawLabels(ctx, layout, labels, special, marks) {
  const { n, left, top, cell, step, font, labelWidth } = layout;
  ctx.font = `${font}px ${FONT_FAMILY}`;
  ctx.textBaseline = "middle";
  const marked = new Set(marks);
  const write = (axis, i, color) => {
    const c = (i + 0.5) * cell;
    ctx.save();
    if (axis === "row") ctx.translate(left - LABEL_GAP, top + c);
    else {
      ctx.translate(left + c, top - LABEL_GAP);
      ctx.rotate(-Math.PI / 2);
    }
    ctx.textAlign = axis === "row" ? "right" : "left";
    ctx.fillStyle = color;
    ctx.fillText(fitText(ctx, labels[i], labelWidth), 0, 0);
    ctx.restore();
  };
  for (const axis of ["row", "col"]) {
    for (let i = 0; i < n; i += step) {
      if (axis === "row" && marked.has(i)) continue;
      write(axis, i, special[i] ? COLORS.special : COLORS.text);
    }
    if (step > 1) {
      ctx.strokeStyle = COLORS.tick;
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let i = 0; i < n; i += step) {
        const c = Math.round((i + 0.5) * cell * 2) / 2;
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
  }
  for (const row of marks) {
    const y = top + row * cell;
    ctx.strokeStyle = MARK_COLOR;
    ctx.fillStyle = MARK_COLOR;
    ctx.lineWidth = 2;
    if (cell >= 4) {
      ctx.setLineDash(cell >= 8 ? [5, 3] : []);
      ctx.strokeRect(left - 1, y - 1, layout.grid + 2, cell + 2);
      ctx.setLineDash([]);
    } else ctx.fillRect(left - 5, y, 4, Math.max(cell, 1));
    ctx.font = `700 ${font}px ${FONT_FAMILY}`;
    write("row", row, MARK_COLOR);
    ctx.font = `${font}px ${FONT_FAMILY}`;
  }
}

/**
 * Draw a whole n×n `matrix` (row = query) with its token labels on `canvas`. Cells go through `colorScale`
 * (color.js makeColorScale); `marks` outlines rows (e.g. the source token of a rollout row). `width` is the CSS
 * width the drawing may use. Returns {layout, cellAt(clientX, clientY) → {row, col} | null}.
 */
export function drawMatrix(canvas, { matrix, labels, special, width, colorScale, marks = [] }) {
  const n = labels.length;
  const flags = special || labels.map(() => false);
  const measure = canvas.getContext("2d");
  measure.font = `600 ${MAX_LABEL_FONT}px ${FONT_FAMILY}`;
  let widest = 0;
  for (const label of labels) widest = Math.max(widest, measure.measureText(label).width);
  const dpr = globalThis.devicePixelRatio || 1;
  const layout = matrixLayout(n, width, { dpr, tall: Math.max(480, globalThis.innerHeight - 140), widest });
  const cells = document.createElement("canvas");
  cells.width = n;
  cells.height = n;
  const cellsCtx = cells.getContext("2d");
  const image = cellsCtx.createImageData(n, n);
  paintValues(image, matrix, colorScale);
  cellsCtx.putImageData(image, 0, 0);
  const { ctx } = setupCanvas(canvas, layout.width, layout.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cells, layout.left, layout.top, layout.grid, layout.grid);
  ctx.strokeStyle = COLORS.frame;
  ctx.lineWidth = 1;
  ctx.strokeRect(layout.left - 0.5, layout.top - 0.5, layout.grid + 1, layout.grid + 1);
  drawLabels(ctx, layout, labels, flags, marks);
  const cellAt = (clientX, clientY) => {
    const rect = canvas.getBoundingClientRect();
    const col = Math.floor((clientX - rect.left - layout.left) / layout.cell);
    const row = Math.floor((clientY - rect.top - layout.top) / layout.cell);
    return row >= 0 && col >= 0 && row < n && col < n ? { row, col } : null;
  };
  return { layout, cellAt };
}
