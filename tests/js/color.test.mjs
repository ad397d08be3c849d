// Unit tests for the colour scales (lib/color.js) and text fitting (lib/canvas.js): `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import * as d3 from "d3";

globalThis.d3 = d3; // the page provides d3 as a global (classic script or bundle)

const color = await import("../../src/visualizeai/web/static/js/lib/color.js");
const { fitTextBy } = await import("../../src/visualizeai/web/static/js/lib/canvas.js");
const { colorIndex, colorOf, formatValue, lutColor, makeColorScale, maxOf, paintValues, barTicks } = color;

test("every mode maps 0 to the bottom and max to the top of the lookup table", () => {
  for (const mode of ["linear", "sqrt", "log", "power"]) {
    const scale = makeColorScale(0.5, { mode });
    assert.equal(scale.mode, mode);
    assert.equal(colorIndex(scale, 0), 0);
    assert.equal(colorIndex(scale, 0.5), 255);
    assert.equal(colorIndex(scale, 7), 255); // above max: the top
    assert.equal(colorIndex(scale, -1), 0);
    assert.equal(colorIndex(scale, Number.NaN), 0);
  }
  assert.equal(makeColorScale(1, { mode: "nonsense" }).mode, "linear");
  assert.equal(makeColorScale(0).max, 1); // an all-zero matrix still gets a domain
});

test("the per-cell mapping equals the legend's d3 axis", () => {
  for (const mode of ["linear", "sqrt", "log", "power"]) {
    const scale = makeColorScale(0.8, { mode, gamma: 0.35 });
    for (const v of [0.002, 0.01, 0.1, 0.4, 0.8]) assert.ok(Math.abs(scale.unit(v) - scale.axis(v)) < 1e-9, `${mode} ${v}`);
  }
});

test("sqrt stretches the low end: 1% of max is a tenth of the way up", () => {
  const scale = makeColorScale(1, { mode: "sqrt" });
  assert.equal(colorIndex(scale, 0.01), Math.round(0.1 * 255));
});

test("colours come from the interpolator and the table is painted exactly", () => {
  const scale = makeColorScale(1, { interpolator: d3.interpolateViridis });
  const top = d3.rgb(d3.interpolateViridis(1));
  assert.deepEqual(colorOf(scale, 1), [top.r, top.g, top.b]);
  assert.equal(lutColor(scale.lut, 255), top.formatHex());
  const out = new Uint8ClampedArray(8);
  paintValues(out, [0, 1], scale);
  const bottom = d3.rgb(d3.interpolateViridis(0));
  assert.deepEqual(Array.from(out), [bottom.r, bottom.g, bottom.b, 255, top.r, top.g, top.b, 255]);
});

test("ticks lie on the bar, log ticks are decades", () => {
  const log = barTicks(makeColorScale(1, { mode: "log" }));
  assert.deepEqual(log.map((t) => t.value), [0.001, 0.01, 0.1, 1]);
  [0, 1 / 3, 2 / 3, 1].forEach((at, i) => assert.ok(Math.abs(log[i].at - at) < 1e-9));
  for (const t of barTicks(makeColorScale(0.37))) assert.ok(t.at >= 0 && t.at <= 1);
});

test("formatValue and maxOf", () => {
  assert.equal(formatValue(0.123456), "0.1235");
  assert.equal(formatValue(Number.NaN), "NaN");
  assert.equal(maxOf(new Float32Array([-1, 0.25, 0.5])), 0.5);
  assert.equal(maxOf([]), 0);
});

test("fitTextBy cuts at code points and ends with an ellipsis", () => {
  const width = (text) => Array.from(text).length * 10; // 10 px per character
  assert.equal(fitTextBy(width, "short", 50), "short");
  assert.equal(fitTextBy(width, "attention", 50), "atte…");
  assert.equal(fitTextBy(width, "😀😀😀😀😀😀", 30), "😀😀…");
  assert.equal(fitTextBy(width, "abc", 5), "…");
});

test("the top of the colour bar follows the normalisation", () => {
  const { scaleTop, NORMALISATIONS, DEFAULT_NORM, DEFAULT_MODE } = color;
  assert.deepEqual(Object.keys(NORMALISATIONS), ["matrix", "layer", "absolute"]);
  assert.equal(DEFAULT_NORM, "matrix");
  assert.equal(DEFAULT_MODE, "sqrt");
  assert.equal(scaleTop("matrix", 0.25, 0.8), 0.25);
  assert.equal(scaleTop("layer", 0.25, 0.8), 0.8);
  assert.equal(scaleTop("layer", 0.25, undefined), 0.25); // the layer's maximum not known yet
  assert.equal(scaleTop("absolute", 0.25, 0.8), 1);
  assert.equal(scaleTop("matrix", 0, 0.8), 1); // an all-zero matrix
});

test("the legend names the scale and the normalisation", () => {
  assert.equal(color.scaleCaption("sqrt", "layer"), "square root · heads of a layer share its maximum");
  assert.equal(color.scaleCaption("power", "absolute", 0.3), "power (γ = 0.30) · absolute: 1 at the top");
  assert.equal(color.scaleCaption("linear", "matrix"), "linear · each matrix scaled to its own maximum");
});

test("a quantised picture is painted on a shared scale: a head at half the top reaches half the bar", () => {
  const scale = makeColorScale(0.8, { mode: "linear" });
  const own = color.quantisedTable(scale, 0.8);
  const half = color.quantisedTable(scale, 0.4);
  assert.deepEqual([...own.subarray(255 * 4, 256 * 4)], [...colorOf(scale, 0.8), 255]);
  assert.deepEqual([...half.subarray(255 * 4, 256 * 4)], [...colorOf(scale, 0.4), 255]);
  assert.deepEqual([...half.subarray(0, 4)], [...colorOf(scale, 0), 255]);
  assert.notDeepEqual([...half.subarray(255 * 4, 256 * 4)], [...own.subarray(255 * 4, 256 * 4)]);
});
