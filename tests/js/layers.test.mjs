// Unit tests for matching the layers of two models of different depth (lib/layers.js): `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { choosableLayers, matchLayer } from "../../src/visualizeai/web/static/js/lib/layers.js";

test("by index a layer meets the same layer, and only the layers both models have", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => matchLayer(i, 6, 12)), [0, 1, 2, 3, 4, 5]);
  assert.equal(choosableLayers(6, 12), 6);
  assert.equal(choosableLayers(12, 6), 6);
  assert.throws(() => matchLayer(7, 12, 6), RangeError);
});

test("by relative depth 6 layers spread over 12: first meets first, last meets last", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => matchLayer(i, 6, 12, "depth")), [0, 2, 4, 7, 9, 11]);
  assert.equal(choosableLayers(6, 12, "depth"), 6);
});

test("by relative depth 12 layers fold onto 6 (halves round up)", () => {
  const got = Array.from({ length: 12 }, (_, i) => matchLayer(i, 12, 6, "depth"));
  assert.deepEqual(got, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
  assert.equal(choosableLayers(12, 6, "depth"), 12);
});

test("equal depths match by depth as by index; edge cases", () => {
  for (let i = 0; i < 6; i++) assert.equal(matchLayer(i, 6, 6, "depth"), i);
  assert.equal(matchLayer(0, 1, 12, "depth"), 0);
  assert.equal(matchLayer(1, 2, 6, "depth"), 5);
  assert.throws(() => matchLayer(6, 6, 12, "depth"), RangeError);
  assert.throws(() => matchLayer(-1, 6, 12, "depth"), RangeError);
});
