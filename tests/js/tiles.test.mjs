// Unit tests for the tile grid of the deep-zoom heatmap: `node --test tests/js/tiles.test.mjs`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  TileCache,
  createTileLoader,
  binOf,
  binStart,
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
  tilesPerSide,
  topLevel,
  visibleTiles,
} from "../../src/visualizeai/web/static/js/lib/tiles.js";

test("tile samples are a power of two near the grid, within the API's bounds", () => {
  assert.equal(tileSamples(760), 1024);
  assert.equal(tileSamples(600), 512);
  assert.equal(tileSamples(100), 256);
  assert.equal(tileSamples(3000), 1024);
});

test("levels: the top tile spans the matrix, level 0 is exact", () => {
  assert.equal(topLevel(16384, 1024), 4);
  assert.equal(topLevel(16000, 1024), 4);
  assert.equal(topLevel(1025, 1024), 1);
  assert.equal(topLevel(1024, 1024), 0);
  assert.equal(topLevel(10, 512), 0);
  assert.equal(tileSpan(4, 1024), 16384);
  assert.equal(tilesPerSide(4, 16384, 1024), 1);
  assert.equal(tilesPerSide(0, 16000, 1024), 16);
  assert.deepEqual(tileRange(0, 15, 2, 16000, 1024), { rows: [15360, 16000], cols: [2048, 3072] });
  assert.ok(isExact(tileRange(0, 3, 3, 16000, 1024), 1024));
  assert.ok(!isExact(tileRange(1, 0, 0, 16000, 1024), 1024));
});

test("the level drawn puts between 0.7 and 1.42 samples on a device pixel", () => {
  const n = 16384;
  const S = 1024;
  assert.equal(levelFor(760 / n, n, S), 4); // 1,024 samples on 760 px: the one top tile
  assert.equal(levelFor(1520 / n, n, S), 3); // device pixel ratio 2: 2 × 2 tiles, 1.35 samples per px
  assert.equal(levelFor(1, n, S), 0);
  assert.equal(levelFor(0.72, n, S), 0); // exact weights from about 0.71 px per cell
  assert.equal(levelFor(0.7, n, S), 1);
  assert.equal(levelFor(40, n, S), 0);
  assert.equal(levelFor(0, n, S), 4);
  for (let px = 0.001; px < 4; px *= 1.07) {
    const level = levelFor(px, n, S);
    const perPx = 1 / (2 ** level * px); // samples per device pixel
    if (level > 0 && level < 4) assert.ok(perPx > 0.7 && perPx < 1.42, `${px}: level ${level}, ${perPx}`);
  }
});

test("visible tiles: only those the rectangle touches, the nearest to its centre first", () => {
  const n = 4096;
  const S = 512;
  const tiles = visibleTiles({ x0: 600, y0: 1000, x1: 1700, y1: 1600 }, 0, n, S);
  assert.deepEqual(
    tiles.map((t) => `${t.i},${t.j}`).sort(),
    ["1,1", "1,2", "1,3", "2,1", "2,2", "2,3", "3,1", "3,2", "3,3"].sort(),
  );
  // centre (1150, 1300) lies in tile row 2, column 2
  assert.deepEqual(tiles[0], { level: 0, i: 2, j: 2 });
  const d = (t) => {
    const r = tileRange(0, t.i, t.j, n, S);
    return ((r.rows[0] + r.rows[1]) / 2 - 1300) ** 2 + ((r.cols[0] + r.cols[1]) / 2 - 1150) ** 2;
  };
  for (let k = 1; k < tiles.length; k++) assert.ok(d(tiles[k - 1]) <= d(tiles[k]));
  // a rectangle ending exactly on a tile edge does not touch the next tile; the matrix edge clamps
  assert.deepEqual(visibleTiles({ x0: 0, y0: 0, x1: 512, y1: 512 }, 0, n, S), [{ level: 0, i: 0, j: 0 }]);
  assert.equal(visibleTiles({ x0: 0, y0: 0, x1: n, y1: n }, 3, n, S).length, 1);
  assert.equal(visibleTiles({ x0: 3900, y0: 3900, x1: 5000, y1: 5000 }, 0, n, S).length, 1);
});

test("draw order: coarse first, then finer than the target, the target on top", () => {
  assert.deepEqual(drawOrder(2, 4), [4, 3, 1, 0, 2]);
  assert.deepEqual(drawOrder(0, 3), [3, 2, 1, 0]);
  assert.deepEqual(drawOrder(3, 3), [2, 1, 0, 3]);
});

test("tile keys: exact tiles are shared by both poolings", () => {
  assert.equal(tileKey("0:1", 0, 2, 3, true, "max"), tileKey("0:1", 0, 2, 3, true, "mean"));
  assert.notEqual(tileKey("0:1", 1, 2, 3, false, "max"), tileKey("0:1", 1, 2, 3, false, "mean"));
  assert.notEqual(tileKey("0:1", 1, 2, 3, false, "max"), tileKey("0:2", 1, 2, 3, false, "max"));
});

test("bins follow the API's rule; binOf inverts binStart", () => {
  for (const [length, bins] of [[17, 5], [15, 5], [7, 7], [1000, 3], [16000, 1024], [5, 1]]) {
    for (let offset = 0; offset < length; offset++) {
      const i = binOf(offset, length, bins);
      assert.ok(binStart(i, length, bins) <= offset && offset < binStart(i + 1, length, bins), `${length} ${bins} ${offset}`);
    }
  }
  // the example of docs/wire-format.md: rows 1:16 into 5 bins of 3; cols 3:10 into bins 3, 4, 5–6, 7, 8–9
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => 3 + binStart(i, 7, 5)), [3, 4, 5, 7, 8, 10]);
});

test("sampleAt finds the sample holding a cell and the cells it pools", () => {
  const tile = { rows: [1, 16], cols: [3, 10], shape: [5, 5] };
  assert.deepEqual(sampleAt(tile, 1, 3), { index: 0, rows: [1, 4], cols: [3, 4] });
  assert.deepEqual(sampleAt(tile, 15, 6), { index: 4 * 5 + 2, rows: [13, 16], cols: [5, 7] });
  assert.equal(sampleAt(tile, 16, 3), null);
  assert.equal(sampleAt(tile, 5, 2), null);
  const exact = { rows: [10, 20], cols: [0, 4], shape: [10, 4] };
  assert.deepEqual(sampleAt(exact, 12, 3), { index: 2 * 4 + 3, rows: [12, 13], cols: [3, 4] });
});

test("poolBlock: exact copies, means and maxima over the API's bins", () => {
  const n = 6;
  const m = Float32Array.from({ length: n * n }, (_, k) => k);
  const exact = poolBlock(m, n, [1, 3], [2, 5], 8, "max");
  assert.deepEqual(exact.shape, [2, 3]);
  assert.equal(exact.pooled, false);
  assert.deepEqual(Array.from(exact.values), [8, 9, 10, 14, 15, 16]);
  const mean = poolBlock(m, n, [0, 6], [0, 6], 2, "mean");
  assert.deepEqual(mean.shape, [2, 2]);
  assert.equal(mean.pooled, true);
  // top-left bin rows 0–2 × cols 0–2: mean of 0,1,2,6,7,8,12,13,14
  assert.deepEqual(Array.from(mean.values), [7, 10, 25, 28]);
  const max = poolBlock(m, n, [0, 5], [1, 6], 2, "max"); // bins of 5 into 2: 0–1, 2–4
  assert.deepEqual(Array.from(max.values), [8, 11, 26, 29]);
  const oneAxis = poolBlock(m, n, [0, 2], [0, 6], 3, "mean");
  assert.deepEqual(oneAxis.shape, [2, 3]);
  assert.deepEqual(Array.from(oneAxis.values), [0.5, 2.5, 4.5, 6.5, 8.5, 10.5]);
});

test("pooling label says what a pixel stands for", () => {
  assert.equal(poolingLabel(0, "max"), "exact");
  assert.equal(poolingLabel(6, "max"), "max-pooled 64×64 → 1 px");
  assert.equal(poolingLabel(2, "mean"), "mean-pooled 4×4 → 1 px");
});

test("TileCache keeps the most recently used entries within its bytes", () => {
  const evicted = [];
  const cache = new TileCache(100, (key) => evicted.push(key));
  cache.set("a", 1, 40);
  cache.set("b", 2, 40);
  assert.equal(cache.get("a"), 1); // a is now the newest
  cache.set("c", 3, 40); // over 100: the oldest, b, goes
  assert.deepEqual(evicted, ["b"]);
  assert.deepEqual(cache.keys(), ["a", "c"]);
  assert.equal(cache.bytes, 80);
  cache.set("a", 9, 10); // replacing counts the new size only
  assert.equal(cache.bytes, 50);
  assert.equal(cache.peek("a"), 9);
  cache.set("huge", 4, 500); // a lone entry larger than the bound is kept until the next one
  assert.deepEqual(cache.keys(), ["huge"]);
  assert.ok(cache.delete("huge") && cache.size === 0 && cache.bytes === 0);
});

/** A load function whose requests stay pending until the test settles them. */
function pendingLoads() {
  const calls = [];
  const load = (job, signal) =>
    new Promise((resolve, reject) => {
      const call = { key: job.key, signal, resolve: () => resolve({ values: new Float32Array(4) }), reject };
      signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      calls.push(call);
    });
  return { calls, load };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

test("tile loader: the most visible first, a bounded number at once, cached once loaded", async () => {
  const { calls, load } = pendingLoads();
  const settled = [];
  const loader = createTileLoader({ load, maxInFlight: 2, onSettled: (key, err) => settled.push([key, err && err.name]) });
  const jobs = ["c", "n", "e", "s"].map((key) => ({ key }));
  assert.equal(loader.want(jobs), false);
  await tick();
  assert.deepEqual(calls.map((c) => c.key), ["c", "n"]); // two at once, in the order given
  calls[0].resolve();
  await tick();
  assert.deepEqual(settled, [["c", null]]);
  assert.ok(loader.has("c"));
  assert.equal(loader.want(jobs), false); // room again: the next one starts
  await tick();
  assert.deepEqual(calls.map((c) => c.key), ["c", "n", "e"]);
  assert.equal(loader.stats.requested, 3);
});

test("tile loader: requests the view no longer wants are cancelled; a prefetch is never fetched twice", async () => {
  const { calls, load } = pendingLoads();
  const settled = [];
  const loader = createTileLoader({ load, maxInFlight: 4, onSettled: (key, err) => settled.push([key, err && err.name]) });
  loader.want([{ key: "a" }, { key: "b" }]);
  loader.prefetch({ key: "p" }, new AbortController().signal);
  await tick();
  loader.want([{ key: "b" }, { key: "c" }, { key: "p" }]); // moved on: "a" is stale, "p" is on its way
  await tick();
  assert.ok(calls.find((c) => c.key === "a").signal.aborted);
  assert.ok(!calls.find((c) => c.key === "b").signal.aborted);
  assert.deepEqual(calls.map((c) => c.key).sort(), ["a", "b", "c", "p"]); // "p" once
  assert.deepEqual(settled, [["a", "AbortError"]]);
  assert.equal(loader.stats.cancelled, 1);
  assert.ok(!loader.has("a"));
  calls.find((c) => c.key === "p").resolve();
  await tick();
  assert.ok(loader.has("p"));
  loader.cancelAll();
  await tick();
  assert.ok(calls.find((c) => c.key === "c").signal.aborted && calls.find((c) => c.key === "b").signal.aborted);
});

test("tile loader: tiles computed here (no request) are cached the same way", async () => {
  const loader = createTileLoader({ load: () => ({ values: new Float32Array(8) }) });
  assert.equal(loader.want([{ key: "z" }]), false);
  await tick();
  assert.equal(loader.want([{ key: "z" }]), true);
  assert.equal(loader.cache.bytes, 64); // values and their painted copy
});

test("tile loader: a tile whose request failed is not asked for again until the failures are forgotten", async () => {
  let calls = 0;
  const refusal = new Error("over the work budget");
  const loader = createTileLoader({
    load: () => {
      calls++;
      return Promise.reject(refusal);
    },
  });
  loader.want([{ key: "x" }]);
  await tick();
  assert.equal(loader.failure("x"), refusal);
  assert.equal(loader.want([{ key: "x" }]), false);
  await tick();
  assert.equal(calls, 1); // every frame asks, the server is asked once
  loader.forgetFailures();
  loader.want([{ key: "x" }]);
  await tick();
  assert.equal(calls, 2);
});

test("tile loader: a failed prefetch does not stop the tile being asked for when the view wants it", async () => {
  let calls = 0;
  const loader = createTileLoader({
    load: () => {
      calls++;
      return calls === 1 ? Promise.reject(new Error("blocked")) : Promise.resolve({ values: new Float32Array(1) });
    },
  });
  loader.prefetch({ key: "h" }, new AbortController().signal);
  await tick();
  assert.equal(loader.failure("h"), undefined);
  loader.want([{ key: "h" }]);
  await tick();
  assert.equal(calls, 2);
  assert.ok(loader.has("h"));
});
