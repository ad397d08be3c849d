// Unit tests for the standalone page's in-memory data source (standalone/source_dense.js): `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createDenseSource } from "../../src/visualizeai/web/static/js/standalone/source_dense.js";

const N = 4;
const HEADS = 2;
// float16 bit patterns of a few exact values
const HALF = { 0: 0x0000, 0.125: 0x3000, 0.25: 0x3400, 0.5: 0x3800, 1: 0x3c00 };

/** Two included layers (1 and 3) × 2 heads of 4 × 4, as little-endian float16 bytes; value(l, h, q, k). */
function data(value) {
  const halves = new Uint16Array(2 * HEADS * N * N);
  let i = 0;
  for (const l of [1, 3]) for (let h = 0; h < HEADS; h++) for (let q = 0; q < N; q++) for (let k = 0; k < N; k++) halves[i++] = HALF[value(l, h, q, k)];
  return new Uint8Array(halves.buffer);
}

const info = { key: "x", n: N, heads: HEADS, layers: 4, included_layers: [1, 3], tokens: [] };
// layer 3 head 1: q attends to key 0 with 0.5 and to itself with 0.5 (key 0 itself: 1)
const value = (l, h, q, k) => (l === 3 && h === 1 ? (q === 0 ? (k === 0 ? 1 : 0) : k === 0 || k === q ? 0.5 : 0) : 0.25);
const source = createDenseSource(info, data(value));

test("an exact tile is the stored block; a pooled one follows the tiles API's bins", async () => {
  const exact = await source.tile({ layer: 3, head: 1, rows: [1, 3], cols: [0, 2], size: 8 });
  assert.deepEqual([exact.shape, exact.pooled, Array.from(exact.values)], [[2, 2], false, [0.5, 0.5, 0.5, 0]]);
  const max = await source.tile({ layer: 3, head: 1, rows: [0, 4], cols: [0, 4], size: 2, pool: "max" });
  assert.deepEqual([max.shape, max.pooled, Array.from(max.values)], [[2, 2], true, [1, 0, 0.5, 0.5]]);
  const mean = await source.tile({ layer: 3, head: 1, rows: [0, 4], cols: [0, 4], size: 2, pool: "mean" });
  assert.deepEqual(Array.from(mean.values), [0.5, 0, 0.25, 0.25]);
});

test("a missing head is the mean of the layer's heads; rows and top keys", async () => {
  const avg = await source.tile({ layer: 3, head: null, rows: [2, 3], cols: [0, 4], size: 8 });
  assert.deepEqual(Array.from(avg.values), [0.375, 0.125, 0.375, 0.125]);
  assert.deepEqual(Array.from(await source.row({ layer: 3, head: 1, row: 2 })), [0.5, 0, 0.5, 0]);
  const top = await source.topKeys({ layer: 3, head: 1, rows: [1, 4], k: 2 });
  assert.deepEqual(top, [{ index: 0, weight: 0.5 }, { index: 1, weight: 0.5 / 3 }]);
});

test("thumbnails are each head pooled and scaled to its own maximum", async () => {
  const got = await source.thumbnails({ layer: 3, size: 2, pool: "max" });
  assert.deepEqual([got.heads, got.size], [2, 2]);
  assert.deepEqual(Array.from(got.pixels), [255, 255, 255, 255, 255, 0, 128, 128]);
  assert.deepEqual(Array.from(got.maxima), [0.25, 1]); // what 255 stands for in each head
});

test("a layer the file does not hold is a rejected request, not a throw", async () => {
  const pending = source.tile({ layer: 2, head: 0, rows: [0, 4], cols: [0, 4] });
  await assert.rejects(pending, /Layer 2 is not in this file \(it holds layers 1, 3\)/);
});
