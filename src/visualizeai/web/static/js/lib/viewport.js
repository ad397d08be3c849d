// Zoom and pan of a square n×n matrix drawn in a square of `grid` CSS px: pure functions on a view state.
//
// A view is {zoom, x0, y0}: zoom 1 shows every row and column; x0/y0 are the first visible column/row
// (fractional cell units), so `n / zoom` cells are visible along each axis and one cell is `grid·zoom/n` px.
// Screen points are CSS px from the grid's top-left corner.

export const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** The whole matrix. */
export const FULL_VIEW = Object.freeze({ zoom: 1, x0: 0, y0: 0 });

/** CSS px of one cell at `view`. */
export function cellSize(view, grid, n) {
  return (grid * view.zoom) / n;
}

/** Cells visible along each axis at `view`. */
export function visibleCells(view, n) {
  return n / view.zoom;
}

/**
 * The largest zoom: until a cell is `maxCell` CSS px or only `minVisible` cells are visible, whichever comes
 * first (never below 1).
 */
export function maxZoomFor(n, grid, { maxCell = 48, minVisible = 4 } = {}) {
  return Math.max(1, Math.min(n / minVisible, (maxCell * n) / grid));
}

/** `view` with its zoom in [1, maxZoom] and the window inside the matrix. */
export function clampView(view, n, maxZoom) {
  const zoom = clamp(Number.isFinite(view.zoom) ? view.zoom : 1, 1, Math.max(1, maxZoom));
  const visible = n / zoom;
  return {
    zoom,
    x0: clamp(Number.isFinite(view.x0) ? view.x0 : 0, 0, n - visible),
    y0: clamp(Number.isFinite(view.y0) ? view.y0 : 0, 0, n - visible),
  };
}

/** The cell coordinates (fractional {row, col}) under screen point (px, py). */
export function screenToCell(view, px, py, grid, n) {
  const cell = cellSize(view, grid, n);
  return { row: view.y0 + py / cell, col: view.x0 + px / cell };
}

/** The screen point of cell coordinates (row, col) (fractional; +0.5 for a cell's centre). */
export function cellToScreen(view, row, col, grid, n) {
  const cell = cellSize(view, grid, n);
  return { x: (col - view.x0) * cell, y: (row - view.y0) * cell };
}

/** The integer cell {row, col} under (px, py), or null outside the matrix. */
export function cellAt(view, px, py, grid, n) {
  if (px < 0 || py < 0 || px >= grid || py >= grid) return null;
  const { row, col } = screenToCell(view, px, py, grid, n);
  const r = Math.floor(row);
  const c = Math.floor(col);
  return r >= 0 && c >= 0 && r < n && c < n ? { row: r, col: c } : null;
}

/** Multiply the zoom by `factor` keeping the matrix point under screen point (px, py) in place (as far as
 * the clamping allows). */
export function zoomAbout(view, factor, px, py, grid, n, maxZoom) {
  const at = screenToCell(view, px, py, grid, n);
  const zoom = clamp(view.zoom * factor, 1, Math.max(1, maxZoom));
  const cell = (grid * zoom) / n;
  return clampView({ zoom, x0: at.col - px / cell, y0: at.row - py / cell }, n, maxZoom);
}

/** Move the window by (dx, dy) screen px: the content follows the pointer. */
export function panBy(view, dx, dy, grid, n, maxZoom) {
  const cell = cellSize(view, grid, n);
  return clampView({ zoom: view.zoom, x0: view.x0 - dx / cell, y0: view.y0 - dy / cell }, n, maxZoom);
}

/** The visible rectangle in cells: {x0, y0, x1, y1} (fractional, x1/y1 exclusive). */
export function viewRect(view, n) {
  const visible = n / view.zoom;
  return { x0: view.x0, y0: view.y0, x1: view.x0 + visible, y1: view.y0 + visible };
}

/** The integer rows/columns at least partly visible: {rows: [a, b], cols: [c, d]} (b, d exclusive). */
export function visibleRange(view, n) {
  const r = viewRect(view, n);
  return {
    rows: [Math.max(0, Math.floor(r.y0)), Math.min(n, Math.ceil(r.y1 - 1e-9))],
    cols: [Math.max(0, Math.floor(r.x0)), Math.min(n, Math.ceil(r.x1 - 1e-9))],
  };
}

/** A view at `zoom` whose centre is cell (row, col) (clamped to the matrix). */
export function centerOn(row, col, zoom, n, maxZoom) {
  const z = clamp(zoom, 1, Math.max(1, maxZoom));
  const visible = n / z;
  return clampView({ zoom: z, x0: col + 0.5 - visible / 2, y0: row + 0.5 - visible / 2 }, n, maxZoom);
}

/** The view showing at least rows/columns [a, b) (a square window, so the other axis shows as many). */
export function fitRange(a, b, n, maxZoom, along = "both") {
  const span = Math.max(1, b - a);
  const zoom = clamp(n / span, 1, Math.max(1, maxZoom));
  const visible = n / zoom;
  const start = (a + b) / 2 - visible / 2;
  const v = { zoom, x0: along === "row" ? 0 : start, y0: along === "col" ? 0 : start };
  return clampView(v, n, maxZoom);
}

/** The zoom factor of a wheel event's deltaY (pixels, lines or pages as `deltaMode` says). */
export function wheelFactor(deltaY, deltaMode = 0) {
  const scale = deltaMode === 1 ? 16 : deltaMode === 2 ? 400 : 1;
  return Math.exp((-deltaY * scale) / 400);
}

/** Whether two views are the same to within a thousandth of a cell. */
export function sameView(a, b) {
  return (
    Math.abs(a.zoom - b.zoom) < 1e-6 && Math.abs(a.x0 - b.x0) < 1e-3 && Math.abs(a.y0 - b.y0) < 1e-3
  );
}

/** The minimap's viewport box: the visible rectangle scaled into a `size`-px square. */
export function minimapBox(view, n, size) {
  const r = viewRect(view, n);
  const s = size / n;
  return { x: r.x0 * s, y: r.y0 * s, w: (r.x1 - r.x0) * s, h: (r.y1 - r.y0) * s };
}

/** The view centred on the minimap point (mx, my) of a `size`-px minimap, at the same zoom. */
export function viewFromMinimap(view, mx, my, size, n, maxZoom) {
  const row = (my / size) * n;
  const col = (mx / size) * n;
  const visible = n / view.zoom;
  return clampView({ zoom: view.zoom, x0: col - visible / 2, y0: row - visible / 2 }, n, maxZoom);
}
