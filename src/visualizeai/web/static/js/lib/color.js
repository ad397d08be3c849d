// Colour scales for attention weights and the legend that explains them: the one place colours are mapped.
// d3 comes from the page (the classic script /static/vendor/d3.min.js sets globalThis.d3; the bundles set it
// from the npm package); it is looked up when a scale is made, so importing this module has no side effects.

const LUT_SIZE = 256;
const LOG_DECADES = 3;

/** The ways values can map onto the colour bar, with their labels for the UI. */
export const COLOR_MODES = {
  linear: { label: "linear" },
  sqrt: { label: "square root" },
  log: { label: "log (3 decades)" },
  power: { label: "power (γ)" },
};
export const DEFAULT_GAMMA = 0.5;
/** The colour scale every tab starts with: the low end of attention, where most of it lives, stays visible. */
export const DEFAULT_MODE = "sqrt";

/**
 * What the top of the colour bar stands for. "matrix": each matrix its own maximum (the shape of each head,
 * not comparable across heads); "layer": the largest weight of the layer's heads (heads of a layer compare);
 * "absolute": 1 (every figure compares).
 */
export const NORMALISATIONS = {
  matrix: { label: "per matrix", legend: "each matrix scaled to its own maximum" },
  layer: { label: "per layer", legend: "heads of a layer share its maximum" },
  absolute: { label: "absolute 0–1", legend: "absolute: 1 at the top" },
};
export const DEFAULT_NORM = "matrix";

/**
 * The value at the top of the colour bar for normalisation `norm`: `matrixMax` (the matrix's own maximum),
 * `layerMax` (the largest of its layer's heads; the matrix's own when not known yet) or 1.
 */
export function scaleTop(norm, matrixMax, layerMax) {
  const own = Number.isFinite(matrixMax) && matrixMax > 0 ? matrixMax : 1;
  if (norm === "absolute") return 1;
  if (norm === "layer") return Number.isFinite(layerMax) && layerMax > 0 ? Math.max(layerMax, own) : own;
  return own;
}

/** The legend's words for a scale: "square root · heads of a layer share its maximum". */
export function scaleCaption(mode, norm, gamma = DEFAULT_GAMMA) {
  const how = mode === "power" ? `power (γ = ${gamma.toFixed(2)})` : (COLOR_MODES[mode] || COLOR_MODES.linear).label;
  return `${how} · ${(NORMALISATIONS[norm] || NORMALISATIONS[DEFAULT_NORM]).legend}`;
}

/**
 * RGBA for each quantised value q = 0…255 of a picture quantised to its own maximum `ownMax` (q = 255 is
 * ownMax), under `colorScale` (whose max is the top the normalisation chose): the table a thumbnail is painted
 * through.
 */
export function quantisedTable(colorScale, ownMax = colorScale.max) {
  const table = new Uint8ClampedArray(256 * 4);
  const last = colorScale.lut.length / 4 - 1;
  for (let q = 0; q < 256; q++) {
    const v = (q / 255) * ownMax;
    let idx = q > 0 ? (colorScale.unit(v) * last + 0.5) | 0 : 0;
    if (idx > last) idx = last;
    if (idx < 0) idx = 0;
    table.set(colorScale.lut.subarray(idx * 4, idx * 4 + 4), q * 4);
  }
  return table;
}

/** The d3 library the page provides. */
export function d3lib() {
  const d3 = globalThis.d3;
  if (!d3) throw new Error("d3 is not loaded: the page must load /static/vendor/d3.min.js first.");
  return d3;
}

/** Named colour ramps t ∈ [0, 1] → CSS colour: "blues" (attention), "viridis" (statistics), "rdbu" (differences). */
export function interpolator(name = "blues") {
  const d3 = d3lib();
  const ramps = { blues: d3.interpolateBlues, viridis: d3.interpolateViridis, rdbu: d3.interpolateRdBu };
  const ramp = ramps[name];
  if (!ramp) throw new Error(`Unknown colour ramp "${name}".`);
  return ramp;
}

/** A d3 number formatter for `specifier` ("~g", ".3f", …). */
export function numberFormat(specifier) {
  return d3lib().format(specifier);
}

/** How a value is written for people: four significant digits. */
export function formatValue(value) {
  return Number.isFinite(value) ? value.toPrecision(4) : String(value);
}

/** The position of `v` on the colour bar, [0, 1], for a scale of `mode` up to `top` (the per-cell mapping). */
export function unitMapping(mode, top, gamma = DEFAULT_GAMMA) {
  if (mode === "sqrt") return (v) => Math.sqrt(v / top);
  if (mode === "log") return (v) => Math.max(0, Math.log10(v / top) / LOG_DECADES + 1);
  if (mode === "power") return (v) => (v / top) ** gamma;
  return (v) => v / top;
}

/**
 * A sequential colour scale over [0, max] plus a 256-entry RGBA lookup table, so painting a matrix costs one
 * table read per cell. `mode` is a key of COLOR_MODES: "sqrt" and "log" stretch the low end, where most of the
 * attention of long inputs lives. `interpolator`: a ramp t → colour (default blues).
 */
export function makeColorScale(max, { mode = "linear", gamma = DEFAULT_GAMMA, interpolator: ramp } = {}) {
  const d3 = d3lib();
  const interp = ramp || d3.interpolateBlues;
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  const g = Number.isFinite(gamma) && gamma > 0 ? gamma : DEFAULT_GAMMA; // "power": v ↦ (v / max)^γ
  const known = COLOR_MODES[mode] ? mode : "linear";
  const lut = new Uint8ClampedArray(LUT_SIZE * 4);
  for (let i = 0; i < LUT_SIZE; i++) {
    const c = d3.rgb(interp(i / (LUT_SIZE - 1)));
    lut[4 * i] = c.r;
    lut[4 * i + 1] = c.g;
    lut[4 * i + 2] = c.b;
    lut[4 * i + 3] = 255;
  }
  // axis: value → [0, 1] position on the colour bar (also used for ticks of the legend).
  let axis;
  if (known === "sqrt") axis = d3.scaleSqrt().domain([0, top]);
  else if (known === "log") axis = d3.scaleLog().domain([top / 10 ** LOG_DECADES, top]);
  else if (known === "power") axis = d3.scalePow().exponent(g).domain([0, top]);
  else axis = d3.scaleLinear().domain([0, top]);
  axis.range([0, 1]).clamp(true);
  return { mode: known, max: top, gamma: g, lut, axis, unit: unitMapping(known, top, g), interpolator: interp };
}

/** The colour-table index (0 … 255) of `value`: NaN and negatives at the bottom, values above max at the top. */
export function colorIndex(colorScale, value) {
  const last = colorScale.lut.length / 4 - 1;
  let idx = value > 0 ? (colorScale.unit(value) * last + 0.5) | 0 : 0;
  if (idx > last) idx = last;
  return idx;
}

/** [r, g, b] of `value` under `colorScale`, read from its lookup table. */
export function colorOf(colorScale, value) {
  const o = colorIndex(colorScale, value) << 2;
  return [colorScale.lut[o], colorScale.lut[o + 1], colorScale.lut[o + 2]];
}

/** "#rrggbb" of entry `index` of a lookup table. */
export function lutColor(lut, index) {
  const o = index << 2;
  return `#${[lut[o], lut[o + 1], lut[o + 2]].map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

/** Write `values` (length w*h) into `imageData` (w×h, or any RGBA array) through the scale's lookup table. */
export function paintValues(imageData, values, colorScale) {
  const { lut, unit } = colorScale;
  const out = imageData.data || imageData;
  const last = LUT_SIZE - 1;
  for (let p = 0, q = 0; p < values.length; p++, q += 4) {
    const v = values[p];
    let idx = v > 0 ? (unit(v) * last + 0.5) | 0 : 0;
    if (idx > last) idx = last;
    const o = idx << 2;
    out[q] = lut[o];
    out[q + 1] = lut[o + 1];
    out[q + 2] = lut[o + 2];
    out[q + 3] = 255;
  }
}

/** Ticks of the colour bar: [{value, label, at}] with `at` in [0, 1] along the bar. */
export function barTicks(colorScale, count) {
  const { axis, max } = colorScale;
  let ticks;
  let format;
  if (colorScale.mode === "log") {
    const [lo] = axis.domain();
    ticks = [];
    for (let p = Math.ceil(Math.log10(lo)); 10 ** p <= max * (1 + 1e-9); p++) ticks.push(10 ** p);
    format = numberFormat("~g");
  } else {
    ticks = axis.ticks(count ?? (colorScale.mode === "linear" ? 5 : 4));
    format = axis.tickFormat(5);
  }
  return ticks.map((value) => ({ value, label: format(value), at: axis(value) }));
}

/** The largest value of `values` (0 when all are ≤ 0 or there are none). */
export function maxOf(values) {
  let max = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  return max;
}

/**
 * A diverging scale for a difference in [−bound, bound] (red below 0, blue above): cells are painted with the
 * values mapped by (v + bound) / (2 bound) (see divergingValues), the legend's axis runs from −bound to bound.
 */
export function makeDivergingScale(bound) {
  const rdbu = interpolator("rdbu");
  const scale = makeColorScale(1, { interpolator: (t) => rdbu(1 - t) });
  const axis = d3lib().scaleLinear().domain([-bound, bound]).range([0, 1]).clamp(true);
  return { ...scale, axis, max: bound };
}
