// Tile grid of a level-of-detail attention map, as an online map has: pure functions, no DOM.
//
// A tile holds `S × S` samples (S = tileSamples(...), at most the tiles API's 1,024). Level 0 tiles span S
// cells per side, so their samples are the exact weights; a tile of level ℓ spans S·2^ℓ cells and is pooled
// by the server (2^ℓ × 2^ℓ cells per sample). The top level covers the whole n × n matrix with one tile.
// The level drawn is the one whose samples best match the screen's device pixels.

export const MIN_SAMPLES = 256;
export const MAX_SAMPLES = 1024; // the tiles API's largest `size`

/** Samples per tile side for a matrix drawn on `gridDevicePx` device px: a power of two near the grid's size,
 * so that the whole matrix is one tile when it fits the screen. */
export function tileSamples(gridDevicePx) {
  const p = 2 ** Math.round(Math.log2(Math.max(1, gridDevicePx)));
  return Math.min(MAX_SAMPLES, Math.max(MIN_SAMPLES, p));
}

/** The coarsest level: its one tile spans the whole matrix. */
export function topLevel(n, samples) {
  return Math.max(0, Math.ceil(Math.log2(n / samples) - 1e-12));
}

/** Cells one tile of `level` spans per side. */
export function tileSpan(level, samples) {
  return samples * 2 ** level;
}

/** Tiles per side at `level`. */
export function tilesPerSide(level, n, samples) {
  return Math.ceil(n / tileSpan(level, samples));
}

/**
 * The level to draw when one cell is `cellDevicePx` device px: samples per device pixel nearest 1 (between
 * about 0.71 and 1.41), and level 0 (exact weights) once a cell is at least about 0.71 device px.
 */
export function levelFor(cellDevicePx, n, samples) {
  const top = topLevel(n, samples);
  if (!(cellDevicePx > 0)) return top;
  const ideal = Math.log2(1 / cellDevicePx);
  return Math.min(top, Math.max(0, Math.floor(ideal + 0.5)));
}

/** The cell ranges of tile (level, i, j): {rows: [a, b], cols: [c, d]} (b, d exclusive). */
export function tileRange(level, i, j, n, samples) {
  const span = tileSpan(level, samples);
  return {
    rows: [i * span, Math.min(n, (i + 1) * span)],
    cols: [j * span, Math.min(n, (j + 1) * span)],
  };
}

/** Whether a tile of these ranges holds exact weights when asked for at `samples` per side. */
export function isExact(range, samples) {
  return range.rows[1] - range.rows[0] <= samples && range.cols[1] - range.cols[0] <= samples;
}

/**
 * The tiles of `level` that a rectangle of cells {x0, y0, x1, y1} (x = columns, y = rows, x1/y1 exclusive)
 * touches, as [{level, i, j}] (i = row of tiles, j = column), nearest to the rectangle's centre first: the
 * order in which to fetch them.
 */
export function visibleTiles(rect, level, n, samples) {
  const span = tileSpan(level, samples);
  const count = tilesPerSide(level, n, samples);
  const i0 = Math.max(0, Math.floor(rect.y0 / span));
  const i1 = Math.min(count - 1, Math.ceil(rect.y1 / span) - 1);
  const j0 = Math.max(0, Math.floor(rect.x0 / span));
  const j1 = Math.min(count - 1, Math.ceil(rect.x1 / span) - 1);
  const cy = (rect.y0 + rect.y1) / 2;
  const cx = (rect.x0 + rect.x1) / 2;
  const out = [];
  for (let i = i0; i <= i1; i++) {
    for (let j = j0; j <= j1; j++) {
      const r = tileRange(level, i, j, n, samples);
      const dy = (r.rows[0] + r.rows[1]) / 2 - cy;
      const dx = (r.cols[0] + r.cols[1]) / 2 - cx;
      out.push({ level, i, j, distance: dx * dx + dy * dy });
    }
  }
  out.sort((a, b) => a.distance - b.distance || a.i - b.i || a.j - b.j);
  return out.map(({ level: l, i, j }) => ({ level: l, i, j }));
}

/**
 * Levels in the order to draw them for a frame whose best level is `target`: the coarsest first, then the
 * finer ones below the target, the target last (on top). Cached tiles of any level fill in while the
 * target's tiles load, so a frame is never blank once anything of the matrix was fetched.
 */
export function drawOrder(target, top) {
  const out = [];
  for (let l = top; l > target; l--) out.push(l);
  for (let l = target - 1; l >= 0; l--) out.push(l);
  out.push(target);
  return out;
}

/**
 * The cache key of a tile: `matrix` names what is shown (layer, head, aggregate), then the tile; pooled tiles
 * also carry their pooling, exact tiles do not (they are the same whatever the pooling).
 */
export function tileKey(matrix, level, i, j, exact, pool) {
  return `${matrix}|${level}:${i}:${j}|${exact ? "exact" : pool}`;
}

/** Start of bin `i` of `length` items split into `bins` (the tiles API's rule: ⌊i·length/bins⌋). */
export function binStart(i, length, bins) {
  return Math.floor((i * length) / bins);
}

/** The bin that item `offset` (0 ≤ offset < length) falls in. */
export function binOf(offset, length, bins) {
  return Math.floor((offset * bins + bins - 1) / length);
}

/**
 * The sample of a loaded tile that holds cell (row, col): {index, rows: [a, b], cols: [c, d]} with the
 * cells that sample pools, or null when the cell is outside the tile. `tile` is {rows, cols, shape: [h, w]}.
 */
export function sampleAt(tile, row, col) {
  const [a, b] = tile.rows;
  const [c, d] = tile.cols;
  if (row < a || row >= b || col < c || col >= d) return null;
  const [h, w] = tile.shape;
  const i = binOf(row - a, b - a, h);
  const j = binOf(col - c, d - c, w);
  return {
    index: i * w + j,
    rows: [a + binStart(i, b - a, h), a + binStart(i + 1, b - a, h)],
    cols: [c + binStart(j, d - c, w), c + binStart(j + 1, d - c, w)],
  };
}

/**
 * Pool rows [a, b) × columns [c, d) of a dense row-major `matrix` (n × n) to at most `size` per side by the
 * tiles API's bins and rule (exact copy where a side fits): {rows, cols, shape: [h, w], pooled, pool, values}.
 * The same answer `source.tile` gives, for views that hold a whole matrix (short inputs, transformed views).
 */
export function poolBlock(matrix, n, rows, cols, size, pool = "mean") {
  const [a, b] = rows;
  const [c, d] = cols;
  const h = Math.min(size, b - a);
  const w = Math.min(size, d - c);
  const values = new Float32Array(h * w);
  const max = pool === "max";
  for (let i = 0; i < h; i++) {
    const r0 = a + binStart(i, b - a, h);
    const r1 = a + binStart(i + 1, b - a, h);
    for (let j = 0; j < w; j++) {
      const c0 = c + binStart(j, d - c, w);
      const c1 = c + binStart(j + 1, d - c, w);
      let acc = max ? -Infinity : 0;
      for (let r = r0; r < r1; r++) {
        const base = r * n;
        for (let k = c0; k < c1; k++) {
          const v = matrix[base + k];
          if (max) {
            if (v > acc) acc = v;
          } else acc += v;
        }
      }
      values[i * w + j] = max ? acc : acc / ((r1 - r0) * (c1 - c0));
    }
  }
  return { rows: [a, b], cols: [c, d], shape: [h, w], pooled: h < b - a || w < d - c, pool, values };
}

/** Human words for what one sample of `level` stands for, e.g. "max-pooled 64×64 → 1 px" or "exact". */
export function poolingLabel(level, pool, samplesPerPx = 1) {
  if (level === 0) return "exact";
  const k = 2 ** level;
  const px = samplesPerPx >= 1.2 ? "< 1 px" : "1 px";
  return `${pool}-pooled ${k}×${k} → ${px}`;
}

/**
 * A least-recently-used store bounded by bytes: `set(key, value, bytes)`, `get(key)` (marks it used),
 * `peek(key)`, `has(key)`, `delete(key)`. Entries past the bound go oldest first; `onEvict(key, value)` is
 * told of each.
 */
export class TileCache {
  constructor(maxBytes, onEvict = null) {
    this.maxBytes = maxBytes;
    this.bytes = 0;
    this.map = new Map(); // key → {value, bytes}, oldest first
    this.onEvict = onEvict;
  }

  get size() {
    return this.map.size;
  }

  has(key) {
    return this.map.has(key);
  }

  peek(key) {
    const entry = this.map.get(key);
    return entry ? entry.value : undefined;
  }

  get(key) {
    const entry = this.map.get(key);
    if (!entry) return undefined;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  set(key, value, bytes) {
    this.delete(key);
    this.map.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [k, entry] of this.map) {
      if (this.bytes <= this.maxBytes || this.map.size <= 1) break;
      this.map.delete(k);
      this.bytes -= entry.bytes;
      if (this.onEvict) this.onEvict(k, entry.value);
    }
  }

  delete(key) {
    const entry = this.map.get(key);
    if (!entry) return false;
    this.map.delete(key);
    this.bytes -= entry.bytes;
    return true;
  }

  keys() {
    return [...this.map.keys()];
  }

  clear() {
    this.map.clear();
    this.bytes = 0;
  }
}

/**
 * Fetching tiles for a view: a bounded cache, at most `maxInFlight` requests at once, and cancelling of those
 * the view no longer wants. `load(job, signal) → Promise<tile>` fetches one job ({key, …} of the caller's
 * choosing); `onSettled(key, error)` is told when a request ends (error null when the tile was cached, an
 * AbortError when it was cancelled). A tile's cost in the cache is `bytesOf(tile)`.
 *
 *   want(jobs)         cancel requests not among `jobs`, start the missing ones in the order given (the most
 *                      visible first) while there is room; returns true when every job's tile is cached.
 *                      A tile whose request failed is not asked for again until forgetFailures()
 *   failure(key)       the error of a tile whose request failed, or undefined
 *   prefetch(job)      fetch a tile ahead (never cancelled by `want`, not fetched twice); resolves when settled
 *   peek(key)          the cached tile, or undefined
 *   cancelAll(), clear()
 *   stats              {requested, cancelled, loaded}
 */
export function createTileLoader({ load, maxInFlight = 4, maxBytes = 192 * 2 ** 20, bytesOf, onSettled = () => {} }) {
  const cost = bytesOf || ((tile) => tile.values.byteLength * 2);
  const cache = new TileCache(maxBytes, (key, tile) => {
    tile.canvas = null; // a painted copy goes with it
  });
  const inFlight = new Map(); // key → AbortController
  const ahead = new Set(); // keys being prefetched
  const failed = new Map(); // key → error of a request that failed (not cancelled)
  const stats = { requested: 0, cancelled: 0, loaded: 0 };

  function start(job, signal, onDone, remember = true) {
    stats.requested++;
    let failure = null;
    return Promise.resolve()
      .then(() => load(job, signal))
      .then((tile) => {
        if (signal && signal.aborted) throw new DOMException("The request was aborted.", "AbortError");
        cache.set(job.key, tile, cost(tile));
        stats.loaded++;
      })
      .catch((err) => {
        failure = err;
        if (remember && err && err.name !== "AbortError") failed.set(job.key, err);
      })
      .finally(() => {
        onDone();
        onSettled(job.key, failure);
      });
  }

  return {
    cache,
    stats,
    want(jobs) {
      const keys = new Set(jobs.map((j) => j.key));
      for (const [key, controller] of inFlight) {
        if (keys.has(key)) continue;
        controller.abort();
        inFlight.delete(key);
        stats.cancelled++;
      }
      for (const job of jobs) {
        if (inFlight.size >= maxInFlight) break;
        if (cache.has(job.key) || inFlight.has(job.key) || ahead.has(job.key) || failed.has(job.key)) continue;
        const controller = new AbortController();
        inFlight.set(job.key, controller);
        start(job, controller.signal, () => {
          if (inFlight.get(job.key) === controller) inFlight.delete(job.key);
        });
      }
      return jobs.every((j) => cache.has(j.key));
    },
    prefetch(job, signal) {
      if (cache.has(job.key) || inFlight.has(job.key) || ahead.has(job.key) || failed.has(job.key)) {
        return Promise.resolve();
      }
      ahead.add(job.key);
      return start(job, signal, () => ahead.delete(job.key), false); // a failed guess is asked again when wanted
    },
    peek: (key) => cache.peek(key),
    failure: (key) => failed.get(key),
    forgetFailures: () => failed.clear(),
    has: (key) => cache.has(key),
    get pending() {
      return inFlight.size + ahead.size;
    },
    cancelAll() {
      for (const controller of inFlight.values()) controller.abort();
      stats.cancelled += inFlight.size;
      inFlight.clear();
    },
    clear() {
      this.cancelAll();
      cache.clear();
      failed.clear();
    },
  };
}
