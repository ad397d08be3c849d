// Colour scales for attention weights and the legend that explains them.
// d3 is loaded as a classic script (/static/vendor/d3.min.js) and used through window.d3.

const d3 = window.d3;
const LUT_SIZE = 256;

/** The ways values can map onto the colour bar, with their labels for the UI. */
export const COLOR_MODES = {
  linear: { label: "linear" },
  sqrt: { label: "square root" },
  log: { label: "log (3 decades)" },
  power: { label: "power (γ)" },
};
export const DEFAULT_GAMMA = 0.5;
const LOG_DECADES = 3;

/**
 * A sequential colour scale over [0, max] plus a 256-entry RGBA lookup table, so painting a 512×512
 * matrix costs one table read per cell instead of one d3 colour parse per cell. `mode` is a key of
 * COLOR_MODES: "sqrt" and "log" stretch the low end, where most of the attention of long inputs lives.
 */
export function makeColorScale(max, { mode = "linear", gamma = DEFAULT_GAMMA, interpolator = d3.interpolateBlues } = {}) {
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  const g = Number.isFinite(gamma) && gamma > 0 ? gamma : DEFAULT_GAMMA; // "power": v ↦ (v / max)^γ
  const lut = new Uint8ClampedArray(LUT_SIZE * 4);
  for (let i = 0; i < LUT_SIZE; i++) {
    const c = d3.rgb(interpolator(i / (LUT_SIZE - 1)));
    lut[4 * i] = c.r;
    lut[4 * i + 1] = c.g;
    lut[4 * i + 2] = c.b;
    lut[4 * i + 3] = 255;
  }
  // axis: value → [0, 1] position on the colour bar (also used for ticks of the legend).
  let axis;
  if (mode === "sqrt") axis = d3.scaleSqrt().domain([0, top]);
  else if (mode === "log") axis = d3.scaleLog().domain([top / 10 ** LOG_DECADES, top]);
  else if (mode === "power") axis = d3.scalePow().exponent(g).domain([0, top]);
  else axis = d3.scaleLinear().domain([0, top]);
  axis.range([0, 1]).clamp(true);
  // The same mapping as `axis`, written out: it runs once per matrix cell.
  let unit = (v) => v / top;
  if (mode === "sqrt") unit = (v) => Math.sqrt(v / top);
  else if (mode === "log") unit = (v) => Math.max(0, Math.log10(v / top) / LOG_DECADES + 1);
  else if (mode === "power") unit = (v) => (v / top) ** g;
  return { mode: COLOR_MODES[mode] ? mode : "linear", max: top, gamma: g, lut, axis, unit, interpolator };
}

/** Write `values` (length w*h) into `imageData` (w×h) through the scale's lookup table. */
export function paintValues(imageData, values, colorScale) {
  const { lut, unit } = colorScale;
  const out = imageData.data;
  const last = LUT_SIZE - 1;
  for (let p = 0, q = 0; p < values.length; p++, q += 4) {
    const v = values[p];
    // NaN and negatives fall to the bottom of the scale, values above max to the top.
    let idx = v > 0 ? (unit(v) * last + 0.5) | 0 : 0;
    if (idx > last) idx = last;
    const o = idx << 2;
    out[q] = lut[o];
    out[q + 1] = lut[o + 1];
    out[q + 2] = lut[o + 2];
    out[q + 3] = 255;
  }
}

/**
 * Size and clear a canvas for its CSS box at `dpr` device pixels per CSS pixel (by default the device pixel
 * ratio); returns a 2D context in CSS pixels.
 */
export function setupCanvas(canvas, cssWidth, cssHeight, dpr = window.devicePixelRatio || 1) {
  const width = Math.max(1, Math.round(cssWidth * dpr));
  const height = Math.max(1, Math.round(cssHeight * dpr));
  // Reallocating the backing store is the slow part of a redraw: only do it when the size changes.
  if (canvas.width !== width || canvas.height !== height) {
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${cssHeight}px`;
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, dpr };
}

/** Draw a horizontal colour bar with tick marks and labels for `colorScale` on `canvas`. */
export function drawLegend(canvas, colorScale, { width = 280, height = 34 } = {}) {
  const { ctx } = setupCanvas(canvas, width, height);
  const pad = 12;
  const barTop = 2;
  const barHeight = 12;
  const barWidth = width - 2 * pad;

  for (let x = 0; x < barWidth; x++) {
    ctx.fillStyle = colorScale.interpolator(x / (barWidth - 1));
    ctx.fillRect(pad + x, barTop, 1.5, barHeight);
  }
  ctx.strokeStyle = "rgba(15, 23, 42, 0.25)";
  ctx.lineWidth = 1;
  ctx.strokeRect(pad + 0.5, barTop + 0.5, barWidth - 1, barHeight - 1);

  const { axis, max } = colorScale;
  let ticks;
  let format;
  if (colorScale.mode === "log") {
    const [lo] = axis.domain();
    ticks = [];
    for (let p = Math.ceil(Math.log10(lo)); 10 ** p <= max; p++) ticks.push(10 ** p);
    format = d3.format("~g");
  } else {
    ticks = axis.ticks(colorScale.mode === "linear" ? 5 : 4);
    format = axis.tickFormat(5);
  }
  ctx.fillStyle = "#475569";
  ctx.strokeStyle = "#64748b";
  ctx.font = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  let lastRight = -Infinity;
  for (const t of ticks) {
    const x = Math.round(pad + axis(t) * (barWidth - 1)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, barTop + barHeight);
    ctx.lineTo(x, barTop + barHeight + 4);
    ctx.stroke();
    const label = format(t);
    const w = ctx.measureText(label).width;
    const cx = Math.min(Math.max(x, w / 2 + 1), width - w / 2 - 1);
    if (cx - w / 2 < lastRight + 4) continue; // no overlapping labels
    ctx.fillText(label, cx, barTop + barHeight + 6);
    lastRight = cx + w / 2;
  }
  canvas.dataset.max = String(max);
  canvas.dataset.mode = colorScale.mode;
}
