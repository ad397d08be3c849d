// Canvas helpers: HiDPI setup, text cut to fit, and the colour legend drawn on a canvas.

import { barTicks } from "./color.js";

export const FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

/**
 * Size and clear a canvas for its CSS box at `dpr` device pixels per CSS pixel (by default the device pixel
 * ratio); returns {ctx, dpr} with a 2D context in CSS pixels.
 */
export function setupCanvas(canvas, cssWidth, cssHeight, dpr = globalThis.devicePixelRatio || 1) {
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

/**
 * Cut `text` to at most `maxWidth` px as measured by `measure(text)` (e.g. a canvas context's measureText
 * width), ending with an ellipsis; code points are never split.
 */
export function fitTextBy(measure, text, maxWidth) {
  if (measure(text) <= maxWidth) return text;
  const chars = Array.from(text);
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (measure(`${chars.slice(0, mid).join("")}…`) <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return `${chars.slice(0, lo).join("")}…`;
}

/** Cut `text` to at most `maxWidth` CSS px in the context's current font, ending with an ellipsis. */
export function fitText(ctx, text, maxWidth) {
  return fitTextBy((t) => ctx.measureText(t).width, text, maxWidth);
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

  ctx.fillStyle = "#475569";
  ctx.strokeStyle = "#64748b";
  ctx.font = `11px ${FONT_FAMILY}`;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  let lastRight = -Infinity;
  for (const t of barTicks(colorScale)) {
    const x = Math.round(pad + t.at * (barWidth - 1)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, barTop + barHeight);
    ctx.lineTo(x, barTop + barHeight + 4);
    ctx.stroke();
    const w = ctx.measureText(t.label).width;
    const cx = Math.min(Math.max(x, w / 2 + 1), width - w / 2 - 1);
    if (cx - w / 2 < lastRight + 4) continue; // no overlapping labels
    ctx.fillText(t.label, cx, barTop + barHeight + 6);
    lastRight = cx + w / 2;
  }
  canvas.dataset.max = String(colorScale.max);
  canvas.dataset.mode = colorScale.mode;
}
