// Heatmap view, drawing: the canvas layout of the grid and its labels, tiles painted through the colour scale,
// the axes, the overlay (selection, matches, focus, hover, outlined rows) and the minimap. Functions of their
// arguments only; js/views/heatmap.js calls them once per frame.

import { FONT_FAMILY, fitText, setupCanvas } from "../lib/canvas.js";
import { paintValues } from "../lib/color.js";
import { axisStep, labelFont } from "../lib/heatmap_math.js";
import { cellSize, maxZoomFor, minimapBox, viewRect } from "../lib/viewport.js";

const MAX_GRID = 1000; // CSS px
const MAX_CELL = 48; // CSS px: zooming stops when a cell is this big…
const MIN_VISIBLE = 4; // …or this few tokens are visible
const MAX_LABEL_WIDTH = 140;
export const LABEL_GAP = 6;
const MAX_FONT = 13;
export const MINIMAP = 132; // CSS px
export const COLORS = {
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

/** Margins for the labels, the grid's size and the zoom range for `labels` in `width` CSS px. */
export function computeLayout(ctx, labels, width, height) {
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
export function paintTile(tile, colorScale) {
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
export function drawTile(c, layout, view, tile) {
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

/** Whether the axes name tokens (rows tall enough, every few labelled) rather than positions. */
export function axisWords(view, layout) {
  return axisStep(cellSize(view, layout.grid, layout.n)) <= 10;
}

/**
 * Labels along both axes: every token's label once rows are tall enough to read (thinned to a nice step
 * while they are a few px), else position numbers at a nice step.
 */
export function drawAxes(c, layout, view, axis) {
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
export function paintOverlay(canvas, layout, view, marks) {
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
export function paintMinimap(canvas, view, n, tiles, colorScale) {
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
