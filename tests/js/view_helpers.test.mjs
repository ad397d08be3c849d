// Unit tests for the pure helpers of the views and of lib/matrix.js and lib/options.js: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

const JS = "../../src/visualizeai/web/static/js";
const { labelFont, matrixLayout, niceStep } = await import(`${JS}/lib/matrix.js`);
const { aggregateOf, isPlain, optionsChanged } = await import(`${JS}/lib/options.js`);
const { columnMax } = await import(`${JS}/views/generate.js`);
const { layersOf, thumbnailPool } = await import(`${JS}/views/overview.js`);
const { selectLines } = await import(`${JS}/views/headview.js`);

test("a whole matrix: whole device pixels per cell, labels thinned to a nice step", () => {
  const small = matrixLayout(10, 800, { dpr: 1, tall: 800, widest: 40 });
  assert.equal(small.cell, 44); // capped: a short input stays a compact square
  assert.equal(small.step, 1);
  const mid = matrixLayout(100, 800, { dpr: 2, tall: 800, widest: 60 });
  assert.equal((mid.cell * 2) % 1, 0); // cells of 3 device px or more are whole device pixels
  const big = matrixLayout(512, 800, { dpr: 2, tall: 800, widest: 300 });
  assert.equal(big.labelWidth, 140); // long labels are cut
  assert.equal(big.cell, (800 - big.left - 12) / 512); // below 3 device px: the room shared exactly
  assert.equal(big.step, niceStep(Math.ceil((labelFont(big.cell) + 3) / big.cell)));
  assert.deepEqual([niceStep(3), niceStep(6), niceStep(501), labelFont(1), labelFont(40)], [4, 10, 1000, 9, 13]);
});

test("view options: the server's agg and the plain fast path", () => {
  assert.deepEqual(
    [{}, { meanHeads: true }, { meanLayers: true }, { meanHeads: true, meanLayers: true }].map(aggregateOf),
    ["none", "mean_heads", "mean_layers", "mean_all"],
  );
  assert.equal(isPlain({}), true);
  assert.equal(isPlain({ hideSpecial: true }), false);
  assert.equal(isPlain({ meanHeads: true }, { aggregate: false }), true);
  assert.equal(optionsChanged({ mergeWords: true }, {}), true);
  assert.equal(optionsChanged({ mergeWords: false }, {}), false);
});

test("the generation strip's pixel columns keep the largest weight of their positions", () => {
  const values = new Float32Array(10);
  values[7] = 0.9;
  values[2] = 0.1;
  // bins as the tiles API's: positions 0–1, 2–4, 5–6, 7–9
  assert.deepEqual(Array.from(columnMax(values, 4)), Array.from(new Float32Array([0, 0.1, 0, 0.9])));
  assert.equal(columnMax(values, 20).length, 10); // never more columns than positions
});

test("thumbnails are max-pooled from 1,024 tokens; a file's layers are its included ones", () => {
  assert.deepEqual([thumbnailPool(1023), thumbnailPool(1024)], ["mean", "max"]);
  assert.deepEqual(layersOf({ layers: 3 }), [0, 1, 2]);
  assert.deepEqual(layersOf({ layers: 6, included_layers: [1, 4] }), [1, 4]);
});

test("head-view lines: each query's strongest keys above the threshold, queries × keys need not be square", () => {
  // 1 head, 2 queries × 3 keys
  const matrix = new Float32Array([0.1, 0.6, 0.3, 0.5, 0.02, 0.48]);
  const lines = selectLines(matrix, 1, 2, 3, [0], 2, 0.05);
  const got = Array.from({ length: lines.count }, (_, i) => [lines.q[i], lines.k[i], Math.round(lines.w[i] * 100)]);
  assert.deepEqual(got, [[0, 1, 60], [0, 2, 30], [1, 0, 50], [1, 2, 48]]);
});
