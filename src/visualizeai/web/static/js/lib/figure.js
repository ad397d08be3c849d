// Figures of one attention matrix for papers: SVG (vector) and PNG, drawn from one plan so both look the same.
//
// SVG: token labels are <text> (built with createElementNS + textContent, so a token is never parsed as
// markup), cells are <rect>s in one group per row, with runs of equal colour in a row merged into one rect;
// the colour bar is a gradient with tick labels. PNG: the same plan painted on a canvas at twice the size.

import { fitText } from "./canvas.js";
import { barTicks, colorIndex as indexOf, lutColor } from "./color.js";

const NS = "http://www.w3.org/2000/svg";
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
const LUT_LAST = 255;
const COLORS = { text: "#1e293b", muted: "#64748b", special: "#94a3b8", frame: "#94a3b8" };
const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500];
const MAX_LABEL_WIDTH = 220;
const LABEL_GAP = 5;
const BAR_WIDTH = 14;
const GRADIENT_STOPS = 17;
export const PNG_SCALE = 2;

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

let measureCtx = null;
function measure(text, font) {
  measureCtx ??= document.createElement("canvas").getContext("2d");
  measureCtx.font = `${font}px ${FONT}`;
  return measureCtx.measureText(text).width;
}

/** The colour-table index of a cell, as the heatmap paints it. */
const colorIndex = (value, colorScale) => indexOf(colorScale, value);

/**
 * Sizes and positions of a figure of `labels.length` tokens. SVG labels every token (zoom in to read);
 * PNG keeps the matrix near 900 px and labels every `step`-th token when labels would overlap.
 */
export function figurePlan({ labels, special, title, subtitle, colorScale }, { format }) {
  const n = labels.length;
  const svg = format === "svg";
  const cell = svg ? clamp(720 / n, 12, 28) : clamp(900 / n, 1, 28);
  const font = clamp(Math.floor(cell * 0.62), 8, 13);
  const step = svg ? 1 : NICE_STEPS.find((s) => s >= Math.ceil((font + 2) / cell)) ?? Math.ceil(n / 20);
  let widest = 0;
  for (let i = 0; i < n; i += step) widest = Math.max(widest, measure(labels[i], font));
  const margin = Math.ceil(Math.min(widest, MAX_LABEL_WIDTH)) + LABEL_GAP + 4;
  const head = subtitle ? 48 : 30;
  const left = margin + 8;
  const top = head + margin;
  const grid = cell * n;
  const barHeight = Math.min(grid, 320);
  const barX = left + grid + 22;
  const ticks = barTicks(colorScale);
  const tickWidth = Math.max(20, ...ticks.map((t) => measure(t.label, 11)));
  const heading = Math.max(measure(title, 15) * 1.08, subtitle ? measure(subtitle, 11) : 0) + 20; // title is bold
  const width = Math.ceil(Math.max(barX + BAR_WIDTH + 8 + tickWidth + 10, heading));
  return {
    n, cell, font, step, left, top, grid, margin, barX, barHeight, ticks,
    width, height: Math.ceil(top + grid + 14), labels, special, title, subtitle, colorScale,
  };
}

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const r2 = (v) => Math.round(v * 100) / 100;

/**
 * The figure as an <svg> element: title, every token label as <text>, the cells as rects (one <g> per row,
 * equal neighbours merged, the commonest colour as one background rect), a frame and a colour bar.
 */
export function buildSvg(matrix, plan) {
  const { n, cell, font, left, top, grid, labels, special, colorScale } = plan;
  const svg = el("svg", {
    width: plan.width, height: plan.height, viewBox: `0 0 ${plan.width} ${plan.height}`,
    "font-family": FONT, "font-size": font,
  });
  svg.append(el("title", {}, plan.title));
  svg.append(el("rect", { width: plan.width, height: plan.height, fill: "#ffffff" }));
  svg.append(el("text", { x: 8, y: 20, "font-size": 15, "font-weight": 600, fill: COLORS.text }, plan.title));
  if (plan.subtitle) svg.append(el("text", { x: 8, y: 38, "font-size": 11, fill: COLORS.muted }, plan.subtitle));

  // Cells: the commonest colour fills the grid; each row adds one rect per run of another colour.
  const index = new Uint8Array(n * n);
  const counts = new Uint32Array(LUT_LAST + 1);
  for (let i = 0; i < index.length; i++) counts[(index[i] = colorIndex(matrix[i], colorScale))]++;
  let background = 0;
  for (let c = 1; c <= LUT_LAST; c++) if (counts[c] > counts[background]) background = c;
  const cells = el("g", { "shape-rendering": "crispEdges", "data-role": "cells" });
  cells.append(el("rect", { x: left, y: top, width: r2(grid), height: r2(grid), fill: lutColor(colorScale.lut, background) }));
  for (let row = 0; row < n; row++) {
    const g = el("g", { "data-row": row });
    for (let col = 0; col < n; ) {
      const c = index[row * n + col];
      let end = col + 1;
      while (end < n && index[row * n + end] === c) end++;
      if (c !== background) {
        g.append(el("rect", {
          x: r2(left + col * cell), y: r2(top + row * cell), width: r2((end - col) * cell), height: r2(cell),
          fill: lutColor(colorScale.lut, c),
        }));
      }
      col = end;
    }
    if (g.childNodes.length) cells.append(g);
  }
  svg.append(cells);
  svg.append(el("rect", {
    x: left - 0.5, y: top - 0.5, width: r2(grid + 1), height: r2(grid + 1), fill: "none", stroke: COLORS.frame,
  }));

  const rows = el("g", { "text-anchor": "end", "dominant-baseline": "central", "data-role": "row-labels" });
  const cols = el("g", { "text-anchor": "start", "dominant-baseline": "central", "data-role": "col-labels" });
  for (let i = 0; i < n; i += plan.step) {
    const fill = special[i] ? COLORS.special : COLORS.text;
    const y = r2(top + (i + 0.5) * cell);
    const x = r2(left + (i + 0.5) * cell);
    rows.append(el("text", { x: left - LABEL_GAP, y, fill }, labels[i]));
    cols.append(el("text", { x, y: top - LABEL_GAP, fill, transform: `rotate(-90 ${x} ${top - LABEL_GAP})` }, labels[i]));
  }
  svg.append(rows, cols);

  // Colour bar: a vertical gradient, 0 at the bottom, with the scale's ticks.
  const gradient = el("linearGradient", { id: "visualizeai-colorbar", x1: 0, y1: 1, x2: 0, y2: 0 });
  for (let s = 0; s < GRADIENT_STOPS; s++) {
    const t = s / (GRADIENT_STOPS - 1);
    gradient.append(el("stop", { offset: r2(t), "stop-color": lutColor(colorScale.lut, Math.round(t * LUT_LAST)) }));
  }
  const defs = el("defs");
  defs.append(gradient);
  svg.append(defs);
  const bottom = top + plan.barHeight;
  svg.append(el("rect", {
    x: plan.barX, y: top, width: BAR_WIDTH, height: r2(plan.barHeight), fill: "url(#visualizeai-colorbar)",
    stroke: COLORS.frame, "stroke-width": 0.5,
  }));
  const ticks = el("g", { "font-size": 11, fill: COLORS.muted, "dominant-baseline": "central" });
  for (const t of plan.ticks) {
    const y = r2(bottom - t.at * plan.barHeight);
    ticks.append(el("line", { x1: plan.barX + BAR_WIDTH, x2: plan.barX + BAR_WIDTH + 4, y1: y, y2: y, stroke: COLORS.muted }));
    ticks.append(el("text", { x: plan.barX + BAR_WIDTH + 7, y }, t.label));
  }
  svg.append(ticks);
  return svg;
}

/** The SVG document as text (XML-escaped by the serializer). */
export function svgText(svg) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(svg)}\n`;
}

/** The figure painted on a new canvas at PNG_SCALE × its CSS size. */
export function drawFigureCanvas(matrix, plan) {
  const { n, cell, font, left, top, grid, labels, special, colorScale } = plan;
  const canvas = document.createElement("canvas");
  canvas.width = Math.ceil(plan.width * PNG_SCALE);
  canvas.height = Math.ceil(plan.height * PNG_SCALE);
  const ctx = canvas.getContext("2d");
  ctx.scale(PNG_SCALE, PNG_SCALE);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, plan.width, plan.height);
  ctx.textBaseline = "alphabetic";
  ctx.fillStyle = COLORS.text;
  ctx.font = `600 15px ${FONT}`;
  ctx.fillText(plan.title, 8, 20);
  if (plan.subtitle) {
    ctx.fillStyle = COLORS.muted;
    ctx.font = `11px ${FONT}`;
    ctx.fillText(plan.subtitle, 8, 38);
  }

  const cells = document.createElement("canvas");
  cells.width = n;
  cells.height = n;
  const cctx = cells.getContext("2d");
  const image = cctx.createImageData(n, n);
  const { lut } = colorScale;
  for (let i = 0, q = 0; i < matrix.length; i++, q += 4) {
    const o = colorIndex(matrix[i], colorScale) << 2;
    image.data[q] = lut[o];
    image.data[q + 1] = lut[o + 1];
    image.data[q + 2] = lut[o + 2];
    image.data[q + 3] = 255;
  }
  cctx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cells, left, top, grid, grid);
  ctx.strokeStyle = COLORS.frame;
  ctx.lineWidth = 1;
  ctx.strokeRect(left - 0.5, top - 0.5, grid + 1, grid + 1);

  ctx.font = `${font}px ${FONT}`;
  ctx.textBaseline = "middle";
  const room = plan.margin - LABEL_GAP - 4;
  for (let i = 0; i < n; i += plan.step) {
    ctx.fillStyle = special[i] ? COLORS.special : COLORS.text;
    const text = fitText(ctx, labels[i], room);
    const c = (i + 0.5) * cell;
    ctx.textAlign = "right";
    ctx.fillText(text, left - LABEL_GAP, top + c);
    ctx.save();
    ctx.translate(left + c, top - LABEL_GAP);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "left";
    ctx.fillText(text, 0, 0);
    ctx.restore();
  }

  const bottom = top + plan.barHeight;
  for (let y = 0; y < plan.barHeight; y++) {
    ctx.fillStyle = lutColor(lut, Math.round((y / Math.max(1, plan.barHeight - 1)) * LUT_LAST));
    ctx.fillRect(plan.barX, bottom - y - 1, BAR_WIDTH, 1.5);
  }
  ctx.strokeRect(plan.barX + 0.25, top + 0.25, BAR_WIDTH - 0.5, plan.barHeight - 0.5);
  ctx.font = `11px ${FONT}`;
  ctx.textAlign = "left";
  ctx.fillStyle = COLORS.muted;
  ctx.strokeStyle = COLORS.muted;
  for (const t of plan.ticks) {
    const y = Math.round(bottom - t.at * plan.barHeight) + 0.5;
    ctx.beginPath();
    ctx.moveTo(plan.barX + BAR_WIDTH, y);
    ctx.lineTo(plan.barX + BAR_WIDTH + 4, y);
    ctx.stroke();
    ctx.fillText(t.label, plan.barX + BAR_WIDTH + 7, y);
  }
  return canvas;
}
