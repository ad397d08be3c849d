// Unit tests for the head grid helpers (lib/headgrid.js: formatting, colour domains, sorting) and colorOf:
// `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import * as d3 from "d3";

globalThis.d3 = d3; // the page provides d3 as a global (classic script or bundle)

const { formatStat, sortedHeads, statDomain, STAT_LABELS } = await import("../../src/visualizeai/web/static/js/lib/headgrid.js");
const { colorOf, makeColorScale } = await import("../../src/visualizeai/web/static/js/lib/color.js");

test("shares are written with two decimals, other statistics with three significant digits", () => {
  assert.equal(formatStat("previous_share", 0.98765), "0.99");
  assert.equal(formatStat("sink_share", 1), "1.00");
  assert.equal(formatStat("entropy", 0.0016912), "0.00169");
  assert.equal(formatStat("mean_distance", 6.2133), "6.21");
  assert.equal(formatStat("mean_distance", 123.4), "123");
  assert.equal(formatStat("entropy", Number.NaN), "NaN");
});

test("colour domains: entropy up to ln n (uniform), the others up to their maximum", () => {
  const values = [
    [0.5, 2.5],
    [7, 1],
  ];
  assert.equal(statDomain("self_share", [[0.03, 0.17]], 10), 0.17);
  assert.equal(statDomain("entropy", values, 10), Math.log(10));
  assert.equal(statDomain("mean_distance", values, 10), 7);
  assert.equal(statDomain("mean_distance", [[0, 0]], 10), 1); // never an empty domain
});

test("colorOf reads the scale's lookup table: bottom, top and clamped values", () => {
  const scale = makeColorScale(1, { interpolator: d3.interpolateViridis });
  const rgb = (c) => d3.rgb(d3.interpolateViridis(c));
  const same = (got, want) => assert.deepEqual(got, [want.r, want.g, want.b]);
  same(colorOf(scale, 0), rgb(0));
  same(colorOf(scale, 1), rgb(1));
  same(colorOf(scale, 5), rgb(1)); // above the domain: the top colour
  same(colorOf(scale, -1), rgb(0));
});

test("every statistic of head_stats.STAT_NAMES has a short and a long label", () => {
  const names = [
    "entropy",
    "mean_distance",
    "special_share",
    "punctuation_share",
    "self_share",
    "previous_share",
    "next_share",
    "sink_share",
  ];
  assert.deepEqual(Object.keys(STAT_LABELS), names);
  for (const [short, long] of Object.values(STAT_LABELS)) assert.ok(short.length <= 8 && long.length > 0);
});

test("sortedHeads orders by value, ties in layer, head order", () => {
  const values = [
    [0.5, 0.1],
    [0.5, 0.9],
  ];
  const value = (l, h) => values[l][h];
  assert.deepEqual(sortedHeads(2, 2, true, value), [[1, 1], [0, 0], [1, 0], [0, 1]]);
  assert.deepEqual(sortedHeads(2, 2, false, value), [[0, 1], [0, 0], [1, 0], [1, 1]]);
});
