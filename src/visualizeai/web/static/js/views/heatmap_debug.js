// Heatmap view, outward: the figure a PNG/SVG export draws (the visible window's exact weights) and the debug
// handle the page exposes as window.visualizeai.view (what the browser tests read: meta, layer, head, n,
// groups, labels, agg, matrix, stats, cellBox, labelBox, valueAt, setView, showCell).

import { cellCentre, labelAlong } from "../lib/heatmap_math.js";
import { visibleRange } from "../lib/viewport.js";
import { LABEL_GAP } from "./heatmap_draw.js";

/**
 * What is shown, for a figure (PNG/SVG): the visible window's exact weights when it is at most 1,024 cells a
 * side and drawn at level 0, else null. {matrix, labels, special, colorScale, caption, rows, cols}.
 */
export function figureOf({ shown, layout, view }, valueAt, caption) {
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
    caption,
    rows,
    cols,
  };
}

/**
 * The debug handle. `get()` → {shown, layout, view}; `wrap` is #heatmap (its data-layer/-head and its box);
 * `tiles` the view's tiles (heatmap_tiles.js); `setView`, `showCell` move the view.
 */
export function createDebug({ get, wrap, source, tiles, setView, showCell }) {
  /** Viewport coordinates of the centre of displayed cell (q, k), or null outside the view. */
  function cellBox(q, k) {
    const { shown, layout, view } = get();
    if (!shown || !layout) return null;
    const at = cellCentre(view, layout.grid, shown.n, q, k);
    if (!at) return null;
    const rect = wrap.getBoundingClientRect();
    return { x: rect.left + layout.left + at.x, y: rect.top + layout.top + at.y };
  }

  /** Viewport coordinates of the label of displayed row (axis "row") or column `i`, or null if not visible. */
  function labelBox(axis, i) {
    const { shown, layout, view } = get();
    if (!shown || !layout) return null;
    const along = labelAlong(view, layout.grid, shown.n, axis, i);
    if (along === null) return null;
    const rect = wrap.getBoundingClientRect();
    if (axis === "row") return { x: rect.left + layout.left - LABEL_GAP - 3, y: rect.top + layout.top + along };
    return { x: rect.left + layout.left + along, y: rect.top + layout.top - LABEL_GAP - 3 };
  }

  const shown = () => get().shown;
  return {
    view: "heatmap",
    get meta() {
      return shown() ? shown().info : source.info;
    },
    get layer() {
      return shown() ? Number(wrap.dataset.layer) : null;
    },
    get head() {
      return shown() ? Number(wrap.dataset.head) : null;
    },
    get n() {
      return shown() ? shown().n : 0;
    },
    get groups() {
      return shown() ? shown().axis.groups : [];
    },
    get labels() {
      return shown() ? shown().axis.labels : [];
    },
    get agg() {
      return shown() ? shown().sel.agg : "none";
    },
    /** The whole displayed matrix when it is held here (short transformed views), else null. */
    get matrix() {
      return shown() && shown().dense ? shown().dense.data : null;
    },
    get stats() {
      const { loader } = tiles;
      return { ...loader.stats, cachedTiles: loader.cache.size, cachedBytes: loader.cache.bytes };
    },
    cellBox,
    labelBox,
    valueAt: (row, col) => tiles.valueAt(row, col),
    setView: (v) => setView(v),
    showCell,
  };
}
