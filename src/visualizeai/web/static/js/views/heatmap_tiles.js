// Heatmap view, data: the tiles of what is shown at the view's level of detail (js/lib/tiles.js), fetched from
// the source or cut from a whole matrix held here, cached and cancelled by one loader; the neighbouring heads
// fetched ahead, one at a time, most likely first; exact strips (a row or a column) for the focus list.
//
// `get()` tells what the view shows now: {shown, view, layout, samples, pool} (shown: {info, sel, key, n, dense}).

import { maxOf } from "../lib/color.js";
import { neighbourHeads } from "../lib/heatmap_math.js";
import {
  createTileLoader,
  drawOrder,
  isExact,
  levelFor,
  poolBlock,
  sampleAt,
  tileKey,
  tileRange,
  tileSpan,
  topLevel,
  visibleTiles,
} from "../lib/tiles.js";
import { cellSize, viewRect } from "../lib/viewport.js";

const MAX_IN_FLIGHT = 4;
const TILE_CACHE_BYTES = 192 * 2 ** 20;
const PREFETCH_MAX_N = 2048; // neighbouring heads' tiles are fetched ahead up to here
const WHOLE = (n) => ({ x0: 0, y0: 0, x1: n, y1: n });

/** An exact strip of the matrix (one row or one column) from tiles of at most 1,024 cells. */
export async function exactStrip(source, sel, axis, index, n, signal) {
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
 * The tiles of the view. `onSettled()` is told when any request ends (the tile may be one the view shows).
 * Returns {loader, targetLevel(), fetchVisible(), visibleMax(), drawable(target), minimapTiles(), valueAt(row,
 * col), prefetchNeighbours()}.
 */
export function createHeatmapTiles({ source, get, signal, onSettled }) {
  /** A request for tile (level, i, j) of `matrix` (layer, head): everything its loading needs. */
  function jobOf(level, i, j, matrix, layer, head) {
    const { shown, samples, pool } = get();
    const range = tileRange(level, i, j, shown.n, samples);
    const key = tileKey(`${matrix ?? shown.key}|${samples}`, level, i, j, isExact(range, samples), pool);
    const causal = Boolean(shown.info.model && shown.info.model.kind === "causal-lm");
    layer = layer === undefined ? shown.sel.layer : layer;
    head = head === undefined ? shown.sel.head : head;
    return { key, level, range, layer, head, size: samples, pool, dense: shown.dense, n: shown.n, causal };
  }

  /** Load a job's tile: from the source, or cut from the whole matrix held here, or zeros. */
  function loadTile(job, abort) {
    const { range, size } = job;
    if (!job.dense && job.causal && range.cols[0] >= range.rows[1]) {
      // every key after every query: a causal model's weights there are exactly 0, nothing to ask for
      const h = Math.min(size, range.rows[1] - range.rows[0]);
      const w = Math.min(size, range.cols[1] - range.cols[0]);
      return { ...range, shape: [h, w], pooled: !isExact(range, size), pool: job.pool, values: new Float32Array(h * w) };
    }
    if (job.dense) return poolBlock(job.dense.data, job.n, range.rows, range.cols, size, job.pool);
    const { layer, head } = job;
    return source.tile({ layer, head, rows: range.rows, cols: range.cols, size, pool: job.pool }, abort);
  }

  const loader = createTileLoader({
    load: loadTile,
    maxInFlight: MAX_IN_FLIGHT,
    maxBytes: TILE_CACHE_BYTES,
    onSettled: () => onSettled(),
  });

  /** A cached tile (level, i, j) of what is shown: of the pooling in use, else (while it loads) the other. */
  function cachedTile(level, i, j) {
    const job = jobOf(level, i, j);
    const other = job.key.replace(/\|(max|mean)$/, get().pool === "max" ? "|mean" : "|max");
    return loader.peek(job.key) || loader.peek(other);
  }

  /** The level to draw now. */
  function targetLevel() {
    const { shown, view, layout, samples } = get();
    const dpr = globalThis.devicePixelRatio || 1;
    return levelFor(cellSize(view, layout.grid, shown.n) * dpr, shown.n, samples);
  }

  function visible(level = targetLevel()) {
    const { shown, view, samples } = get();
    return visibleTiles(viewRect(view, shown.n), level, shown.n, samples);
  }

  /** Ask for the visible tiles that are missing, nearest the centre first (cancelling those not needed):
   * {complete: every one is cached, failed: the error of one that failed, or undefined}. */
  function fetchVisible() {
    const jobs = visible().map((t) => jobOf(t.level, t.i, t.j));
    const complete = loader.want(jobs);
    const failed = jobs.map((j) => loader.failure(j.key)).find(Boolean);
    return { complete, failed };
  }

  /** The largest sample of the visible tiles at the target level, or null while one is missing. */
  function visibleMax() {
    const tiles = visible().map((t) => loader.peek(jobOf(t.level, t.i, t.j).key));
    return tiles.some((t) => !t) ? null : Math.max(...tiles.map((t) => maxOf(t.values)));
  }

  /** Cached tiles intersecting the view, in draw order (coarse first, the target level on top). */
  function drawable(target) {
    const { shown, view, samples } = get();
    const out = [];
    const rect = viewRect(view, shown.n);
    for (const level of drawOrder(target, topLevel(shown.n, samples))) {
      // finer levels than the target could be many tiles; they only fill in while the target loads
      if (level < target - 2) continue;
      for (const t of visibleTiles(rect, level, shown.n, samples)) {
        const tile = cachedTile(t.level, t.i, t.j);
        if (tile) out.push(tile);
      }
    }
    return out;
  }

  /** The coarsest cached picture of the whole matrix (down to two levels below the top), for the minimap. */
  function minimapTiles() {
    const { shown, samples } = get();
    const top = topLevel(shown.n, samples);
    let found = [];
    for (let level = top; level >= Math.max(0, top - 2) && !found.length; level--) {
      const tiles = visibleTiles(WHOLE(shown.n), level, shown.n, samples);
      found = tiles.map((t) => cachedTile(t.level, t.i, t.j)).filter(Boolean);
    }
    return found;
  }

  /** The finest cached sample holding displayed cell (row, col): {value, exact, rows, cols, pool} or null. */
  function valueAt(row, col) {
    const { shown, samples, pool } = get();
    if (!shown) return null;
    const top = topLevel(shown.n, samples);
    for (let level = 0; level <= top; level++) {
      const span = tileSpan(level, samples);
      const tile = loader.peek(jobOf(level, Math.floor(row / span), Math.floor(col / span)).key);
      if (!tile) continue;
      const at = sampleAt(tile, row, col);
      if (!at) continue;
      const exact = at.rows[1] - at.rows[0] === 1 && at.cols[1] - at.cols[0] === 1;
      return { value: tile.values[at.index], exact, rows: at.rows, cols: at.cols, pool };
    }
    return null;
  }

  /**
   * Once a view is drawn, fetch the same tiles of the neighbouring heads and layers (what the arrow keys open
   * next), one head after the other, most likely first, for inputs short enough that this costs little.
   */
  async function prefetchNeighbours() {
    const { shown } = get();
    if (!shown || shown.dense || shown.sel.agg !== "none" || shown.n > PREFETCH_MAX_N) return;
    const { info } = shown;
    const wanted = visible();
    for (const [l, h] of neighbourHeads(shown.sel, info.layers, info.heads)) {
      if (signal.aborted || get().shown !== shown) return; // the view moved on: its own neighbours follow
      const jobs = wanted.map((t) => jobOf(t.level, t.i, t.j, `${info.key}|${l}|${h}|`, l, h));
      await Promise.all(jobs.map((job) => loader.prefetch(job, signal)));
    }
  }

  return { loader, targetLevel, fetchVisible, visibleMax, drawable, minimapTiles, valueAt, prefetchNeighbours };
}
