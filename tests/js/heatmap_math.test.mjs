// Unit tests for the deep-zoom heatmap's pure rules (lib/heatmap_math.js): `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

const JS = "../../src/visualizeai/web/static/js";
const m = await import(`${JS}/lib/heatmap_math.js`);

test("selection: layer and head of the tiles API, null where averaged", () => {
  assert.deepEqual(m.selectionOf({ layer: 2, head: 3 }), { agg: "none", layer: 2, head: 3 });
  assert.deepEqual(m.selectionOf({ layer: 2, head: 3, meanHeads: true }), { agg: "mean_heads", layer: 2, head: null });
  assert.deepEqual(m.selectionOf({ layer: 2, head: 3, meanLayers: true }), { agg: "mean_layers", layer: null, head: 3 });
  assert.deepEqual(m.selectionOf({ layer: 2, head: 3, meanHeads: true, meanLayers: true }), {
    agg: "mean_all",
    layer: null,
    head: null,
  });
});

test("caption names what is shown", () => {
  const info = { layers: 2, heads: 14 };
  assert.equal(m.caption({ agg: "none", layer: 1, head: 3 }, info, 16384, null), "Layer 1 · head 3 · 16,384 tokens");
  assert.equal(m.caption({ agg: "mean_all" }, info, 9, { mergeWords: true }), "Mean of all 28 heads · 9 words");
  assert.equal(
    m.caption({ agg: "mean_heads", layer: 0 }, info, 5, { hideSpecial: true }),
    "Layer 0 · mean of 14 heads · 5 tokens · special tokens hidden, rows renormalised",
  );
});

test("axis labels: every row once rows are tall, a nice step of positions otherwise", () => {
  assert.equal(m.axisStep(20), 1);
  assert.equal(m.niceStep(3), 4);
  assert.equal(m.niceStep(2100), 2500);
  assert.equal(m.niceStep(12345), 20000);
  assert.equal(m.axisStep(0.01), 2000); // 12 px of a 9 px label over 0.01 px cells: 1,200 rows
});

test("top keys: largest first, ties to the lower index, of a strip or of dense rows", () => {
  assert.deepEqual(m.topOf(new Float32Array([0.1, 0.5, 0.5, 0.2]), 2), [
    { index: 1, weight: 0.5 },
    { index: 2, weight: 0.5 },
  ]);
  const dense = new Float32Array([1, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.5]); // 3 × 3
  assert.deepEqual(Array.from(m.denseStrip(dense, 3, { axis: "col", index: 0 })), [1, 0.5, 0.25]);
  const groups = [[0], [1, 2], [3]];
  const top = m.denseTopKeys(dense, 3, [1, 3], 2, groups);
  assert.deepEqual(top.map((t) => t.index), [0, 1]); // the mean of rows 1–2: [0.375, 0.375, 0.25]
  assert.ok(Math.abs(top[0].weight - 0.375) < 1e-7);
});

test("displayed rows of token positions follow the groups", () => {
  assert.deepEqual(m.displayedRange(null, [4, 7]), [4, 7]);
  const groups = [[0], [1, 2], [3], [4, 5]];
  assert.deepEqual(m.displayedRange(groups, [2, 4]), [1, 3]);
  assert.deepEqual(m.displayedRange(groups, [9, 10]), [0, 1]); // nothing holds it
});

test("neighbouring heads: next and previous head, then the next and previous layer, inside the model", () => {
  assert.deepEqual(m.neighbourHeads({ layer: 0, head: 0 }, 2, 3), [
    [0, 1],
    [1, 0],
  ]);
  assert.deepEqual(m.neighbourHeads({ layer: 1, head: 1 }, 3, 3), [
    [1, 2],
    [1, 0],
    [2, 1],
    [0, 1],
  ]);
});

test("a cell's centre and a label's place on the grid, null outside the view", () => {
  const view = { zoom: 2, x0: 10, y0: 20 }; // 40 tokens on 400 px: 20 px a cell, cells 10–29 and 20–39 shown
  assert.deepEqual(m.cellCentre(view, 400, 40, 20, 10), { x: 10, y: 10 });
  assert.equal(m.cellCentre(view, 400, 40, 5, 10), null);
  assert.equal(m.labelAlong(view, 400, 40, "col", 12), 50);
  assert.equal(m.labelAlong(view, 400, 40, "row", 2), null);
});
