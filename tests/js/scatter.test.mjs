import assert from "node:assert/strict";
import { test } from "node:test";

import { bounds, fitBox, nearest, screenPoints } from "../../src/visualizeai/web/static/js/lib/scatter.js";

test("bounds cover every array and widen a degenerate axis", () => {
  assert.deepEqual(bounds([[0, 1], [2, -3]], [[5, 0]]), { x0: 0, x1: 5, y0: -3, y1: 1 });
  assert.deepEqual(bounds([[1, 1]]), { x0: 0, x1: 2, y0: 0, y1: 2 });
  assert.deepEqual(bounds([]), { x0: -1, x1: 1, y0: -1, y1: 1 });
});

test("fitBox keeps one scale on both axes, centres the data and puts y upwards", () => {
  const box = { x0: 0, x1: 10, y0: 0, y1: 2 };
  const { toScreen, scale } = fitBox(box, 220, 220, 10);
  assert.equal(scale, 20); // limited by x: 200 px over 10 units
  assert.deepEqual(toScreen([5, 1]), [110, 110]);
  assert.deepEqual(toScreen([0, 0]), [10, 130]);
  assert.deepEqual(toScreen([10, 2]), [210, 90]);
});

test("nearest finds the closest point within the radius", () => {
  const screen = new Float32Array([0, 0, 10, 0, 10, 10]);
  assert.equal(nearest(screen, 9, 1, 5), 1);
  assert.equal(nearest(screen, 9, 9, 5), 2);
  assert.equal(nearest(screen, 50, 50, 5), -1);
  assert.equal(nearest(screen, 5, 0, 5), 0); // a tie keeps the first
});

test("screen points lay queries then keys in one fitted box, the array nearest searches", () => {
  const screen = screenPoints([[0, 0], [2, 0]], [[1, 1], [1, -1]], 120, 120);
  assert.equal(screen.length, 8);
  const fit = fitBox(bounds([[0, 0], [2, 0]], [[1, 1], [1, -1]]), 120, 120);
  assert.deepEqual(Array.from(screen.subarray(4, 6)), fit.toScreen([1, 1])); // key 0 after both queries
  assert.equal(nearest(screen, ...fit.toScreen([2, 0]), 3), 1);
});
