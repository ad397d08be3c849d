// Figures for papers: SVG (vector) and PNG, drawn from one plan so both look the same. Two kinds: one attention
// matrix (figurePlan, buildSvg, drawFigureCanvas), and a scene of shapes a view lays out itself (scenePlan,
// buildSceneSvg, drawSceneCanvas: rects, lines, circles, text, raster images such as thumbnails). Both start with a
// header whose title and subtitle wrap onto as many lines as they need, so a title is never cut.
//
// SVG: token labels are <text> (built with createElementNS + textContent, so a token is never parsed as
// markup), cells are <rect>s in one group per row, with runs of equal colour in a row merged into one rect;
// the colour bar is a gradient with tick labels. PNG: the same plan painted on a canvas at twice the size.

import { fitText, fitTextBy } from "./canvas.js";
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

const MIN_WIDTH = 420; // CSS px: the narrowest figure, so a header has room to wrap
const WRAP_SLACK = 0.92; // wrap a little early: an SVG viewer's font may run wider than the browser's
const HEADER = {
  title: { size: 15, weight: 600, lineHeight: 19, fill: COLORS.text },
  subtitle: { size: 11, weight: 400, lineHeight: 14, fill: COLORS.muted },
};

let measureCtx = null;
function measure(text, font, weight = 400) {
  measureCtx ??= document.createElement("canvas").getContext("2d");
  measureCtx.font = `${weight === 400 ? "" : `${weight} `}${font}px ${FONT}`;
  return measureCtx.measureText(text).width;
}

/** `text` broken into lines no wider than `width` at `size` px (words kept whole unless one alone is too wide). */
export function wrapText(text, width, size, weight = 400) {
  const fits = (t) => measure(t, size, weight) <= width;
  const lines = [];
  let current = "";
  // a separator ("·", "–") stays at the end of its line rather than starting the next
  const words = String(text).split(/\s+/).filter(Boolean).reduce((out, w) => {
    if (out.length && /^[·–—|:;,]$/.test(w)) out[out.length - 1] += ` ${w}`;
    else out.push(w);
    return out;
  }, []);
  for (const word of words) {
    const joined = current ? `${current} ${word}` : word;
    if (fits(joined)) {
      current = joined;
      continue;
    }
    if (current) lines.push(current);
    current = "";
    let rest = word; // a word wider than the line: break it between characters
    while (!fits(rest)) {
      const chars = Array.from(rest);
      let take = 1;
      while (take < chars.length && fits(chars.slice(0, take + 1).join(""))) take++;
      lines.push(chars.slice(0, take).join(""));
      rest = chars.slice(take).join("");
    }
    current = rest;
  }
  if (current || !lines.length) lines.push(current);
  return lines;
}

/**
 * The header of a figure `width` px wide: {lines: [{text, x, y, size, weight, fill, role}], height}. The title
 * and subtitle wrap to the width; joining a role's lines with spaces gives back its text.
 */
export function headerPlan(title, subtitle, width) {
  const room = (width - 16) * WRAP_SLACK;
  const lines = [];
  let y = 6;
  for (const [role, text] of [["title", title], ["subtitle", subtitle]]) {
    if (!text) continue;
    const style = HEADER[role];
    if (role === "subtitle") y += 3;
    for (const part of wrapText(text, room, style.size, style.weight)) {
      y += style.lineHeight;
      lines.push({ text: part, x: 8, y: y - 4, size: style.size, weight: style.weight, fill: style.fill, role });
    }
  }
  return { lines, height: y + 10 };
}

function headerSvg(header) {
  const g = el("g", { "data-role": "header" });
  for (const l of header.lines) {
    const attrs = { x: l.x, y: l.y, "font-size": l.size, fill: l.fill, "data-role": l.role };
    if (l.weight !== 400) attrs["font-weight"] = l.weight;
    g.append(el("text", attrs, l.text));
  }
  return g;
}

function headerCanvas(ctx, header) {
  ctx.textBaseline = "alphabetic";
  ctx.textAlign = "left";
  for (const l of header.lines) {
    ctx.fillStyle = l.fill;
    ctx.font = `${l.weight === 400 ? "" : `${l.weight} `}${l.size}px ${FONT}`;
    ctx.fillText(l.text, l.x, l.y);
  }
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
  const left = margin + 8;
  const grid = cell * n;
  const barHeight = Math.min(grid, 320);
  const barX = left + grid + 22;
  const ticks = barTicks(colorScale);
  const tickWidth = Math.max(20, ...ticks.map((t) => measure(t.label, 11)));
  const width = Math.ceil(Math.max(barX + BAR_WIDTH + 8 + tickWidth + 10, MIN_WIDTH));
  const header = headerPlan(title, subtitle, width);
  const top = header.height + margin;
  return {
    n, cell, font, step, left, top, grid, margin, barX, barHeight, ticks, header,
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
  svg.append(headerSvg(plan.header));

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

/** A new canvas at PNG_SCALE × the plan's CSS size, white, with the plan's header drawn: {canvas, ctx}. */
function figureCanvas(plan) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.ceil(plan.width * PNG_SCALE);
  canvas.height = Math.ceil(plan.height * PNG_SCALE);
  const ctx = canvas.getContext("2d");
  ctx.scale(PNG_SCALE, PNG_SCALE);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, plan.width, plan.height);
  headerCanvas(ctx, plan.header);
  return { canvas, ctx };
}

/** The figure painted on a new canvas at PNG_SCALE × its CSS size. */
export function drawFigureCanvas(matrix, plan) {
  const { n, cell, font, left, top, grid, labels, special, colorScale } = plan;
  const { canvas, ctx } = figureCanvas(plan);

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

// ---- scenes: figures a view lays out itself ------------------------------------------------------------------
//
// A scene is {title, subtitle, width, height, items} in CSS px (the body below the header), items being
//   {type: "rect", x, y, w, h, fill, stroke?, opacity?}
//   {type: "line", x1, y1, x2, y2, stroke, width?, opacity?, dash?}
//   {type: "circle", x, y, r, fill?, stroke?, width?}
//   {type: "text", x, y, text, size?, fill?, anchor? ("start" | "middle" | "end"), weight?, rotate?, maxWidth?}
//     (y is the text's middle; a text wider than maxWidth ends with "…", the same in SVG and PNG)
//   {type: "image", x, y, w, h, canvas} (a raster, e.g. a thumbnail: an <image> in the SVG)
//   {type: "group", role, items} (a <g data-role=role> in the SVG, so its parts can be counted)

const PAD = 8;

/** Lay out a scene: its header (wrapped to the figure's width), the body's offset, labels fitted once. */
export function scenePlan(scene) {
  const width = Math.ceil(Math.max(scene.width + 2 * PAD, MIN_WIDTH));
  const header = headerPlan(scene.title, scene.subtitle, width);
  const fit = (items) =>
    items.map((item) => {
      if (item.type === "group") return { ...item, items: fit(item.items) };
      if (item.type !== "text" || !item.maxWidth) return item;
      const size = item.size || 12;
      return { ...item, text: fitTextBy((t) => measure(t, size, item.weight || 400), item.text, item.maxWidth) };
    });
  return {
    width,
    height: Math.ceil(header.height + scene.height + PAD),
    header,
    dx: PAD,
    dy: header.height,
    items: fit(scene.items),
    title: scene.title,
  };
}

function itemSvg(item) {
  switch (item.type) {
    case "group": {
      const g = el("g", { "data-role": item.role });
      for (const child of item.items) g.append(itemSvg(child));
      return g;
    }
    case "rect": {
      const attrs = { x: r2(item.x), y: r2(item.y), width: r2(item.w), height: r2(item.h), fill: item.fill || "none" };
      if (item.stroke) attrs.stroke = item.stroke;
      if (item.opacity !== undefined) attrs.opacity = r2(item.opacity);
      return el("rect", attrs);
    }
    case "line": {
      const attrs = {
        x1: r2(item.x1), y1: r2(item.y1), x2: r2(item.x2), y2: r2(item.y2),
        stroke: item.stroke, "stroke-width": item.width || 1,
      };
      if (item.opacity !== undefined) attrs["stroke-opacity"] = r2(item.opacity);
      if (item.dash) attrs["stroke-dasharray"] = item.dash.join(" ");
      return el("line", attrs);
    }
    case "circle": {
      const attrs = { cx: r2(item.x), cy: r2(item.y), r: r2(item.r), fill: item.fill || "none" };
      if (item.stroke) Object.assign(attrs, { stroke: item.stroke, "stroke-width": item.width || 1 });
      return el("circle", attrs);
    }
    case "text": {
      const anchor = item.anchor || "start";
      const attrs = {
        x: r2(item.x), y: r2(item.y), "font-size": item.size || 12, fill: item.fill || COLORS.text,
        "dominant-baseline": "central",
      };
      if (anchor !== "start") attrs["text-anchor"] = anchor;
      if (item.weight) attrs["font-weight"] = item.weight;
      if (item.rotate) attrs.transform = `rotate(${item.rotate} ${r2(item.x)} ${r2(item.y)})`;
      return el("text", attrs, item.text);
    }
    case "image":
      return el("image", {
        x: r2(item.x), y: r2(item.y), width: r2(item.w), height: r2(item.h), href: item.canvas.toDataURL("image/png"),
        preserveAspectRatio: "none", "image-rendering": "optimizeSpeed",
      });
    default:
      throw new Error(`Unknown figure item "${item.type}".`);
  }
}

/** The scene as an <svg> element: every shape a DOM node, every label a <text> (text content, never markup). */
export function buildSceneSvg(plan) {
  const svg = el("svg", {
    width: plan.width, height: plan.height, viewBox: `0 0 ${plan.width} ${plan.height}`, "font-family": FONT,
  });
  svg.append(el("title", {}, plan.title));
  svg.append(el("rect", { width: plan.width, height: plan.height, fill: "#ffffff" }));
  svg.append(headerSvg(plan.header));
  const body = el("g", { transform: `translate(${plan.dx} ${r2(plan.dy)})`, "data-role": "body" });
  for (const item of plan.items) body.append(itemSvg(item));
  svg.append(body);
  return svg;
}

function paintItem(ctx, item) {
  switch (item.type) {
    case "group":
      for (const child of item.items) paintItem(ctx, child);
      return;
    case "rect":
      ctx.globalAlpha = item.opacity ?? 1;
      if (item.fill && item.fill !== "none") {
        ctx.fillStyle = item.fill;
        ctx.fillRect(item.x, item.y, item.w, item.h);
      }
      if (item.stroke) {
        ctx.strokeStyle = item.stroke;
        ctx.lineWidth = 1;
        ctx.strokeRect(item.x, item.y, item.w, item.h);
      }
      ctx.globalAlpha = 1;
      return;
    case "line":
      ctx.globalAlpha = item.opacity ?? 1;
      ctx.strokeStyle = item.stroke;
      ctx.lineWidth = item.width || 1;
      ctx.setLineDash(item.dash || []);
      ctx.beginPath();
      ctx.moveTo(item.x1, item.y1);
      ctx.lineTo(item.x2, item.y2);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
      return;
    case "circle":
      ctx.beginPath();
      ctx.arc(item.x, item.y, item.r, 0, 2 * Math.PI);
      if (item.fill && item.fill !== "none") {
        ctx.fillStyle = item.fill;
        ctx.fill();
      }
      if (item.stroke) {
        ctx.strokeStyle = item.stroke;
        ctx.lineWidth = item.width || 1;
        ctx.stroke();
      }
      return;
    case "text":
      ctx.save();
      ctx.font = `${item.weight ? `${item.weight} ` : ""}${item.size || 12}px ${FONT}`;
      ctx.fillStyle = item.fill || COLORS.text;
      ctx.textBaseline = "middle";
      ctx.textAlign = { start: "left", middle: "center", end: "right" }[item.anchor || "start"];
      ctx.translate(item.x, item.y);
      if (item.rotate) ctx.rotate((item.rotate * Math.PI) / 180);
      ctx.fillText(item.text, 0, 0);
      ctx.restore();
      return;
    case "image":
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(item.canvas, item.x, item.y, item.w, item.h);
      return;
    default:
      throw new Error(`Unknown figure item "${item.type}".`);
  }
}

/** The scene painted on a new canvas at PNG_SCALE × its CSS size: the same plan as the SVG. */
export function drawSceneCanvas(plan) {
  const { canvas, ctx } = figureCanvas(plan);
  ctx.translate(plan.dx, plan.dy);
  for (const item of plan.items) paintItem(ctx, item);
  return canvas;
}

/**
 * A horizontal colour bar for a scene at (x, y), `width` wide: the scale's ramp as thin rects and its ticks.
 * Returns the items (a group "colorbar").
 */
export function colorBarItems(colorScale, x, y, width, { title = "" } = {}) {
  const items = [];
  const steps = 64;
  for (let s = 0; s < steps; s++) {
    items.push({
      type: "rect", x: x + (s * width) / steps, y, w: width / steps + 0.3, h: 10,
      fill: lutColor(colorScale.lut, Math.round((s / (steps - 1)) * LUT_LAST)),
    });
  }
  items.push({ type: "rect", x, y, w: width, h: 10, fill: "none", stroke: COLORS.frame });
  for (const t of barTicks(colorScale)) {
    const tx = x + t.at * width;
    items.push({ type: "line", x1: tx, y1: y + 10, x2: tx, y2: y + 14, stroke: COLORS.muted });
    items.push({ type: "text", x: tx, y: y + 21, text: t.label, size: 10, fill: COLORS.muted, anchor: "middle" });
  }
  if (title) items.push({ type: "text", x: x + width + 10, y: y + 5, text: title, size: 11, fill: COLORS.muted });
  return [{ type: "group", role: "colorbar", items }];
}

/**
 * A layers × heads grid of raster thumbnails (the All heads view) as a scene: `canvases[row][head]` drawn
 * `thumb` px square, labelled by `layers[row]` and head number, with the colour bar of `colorScale` below.
 */
export function thumbnailScene({ layers, heads, canvases, colorScale, thumb = 56, barTitle = "" }) {
  const gap = 4;
  const left = 58;
  const top = 18;
  const thumbs = [];
  const labels = [];
  for (let h = 0; h < heads; h++) {
    labels.push({ type: "text", x: left + h * (thumb + gap) + thumb / 2, y: 8, text: `H${h}`, size: 11, fill: COLORS.muted, anchor: "middle" });
  }
  layers.forEach((layer, row) => {
    const y = top + row * (thumb + gap);
    labels.push({ type: "text", x: left - 8, y: y + thumb / 2, text: `Layer ${layer}`, size: 11, fill: COLORS.muted, anchor: "end" });
    for (let h = 0; h < heads; h++) {
      const x = left + h * (thumb + gap);
      thumbs.push({ type: "image", x, y, w: thumb, h: thumb, canvas: canvases[row][h] });
      thumbs.push({ type: "rect", x: x - 0.5, y: y - 0.5, w: thumb + 1, h: thumb + 1, fill: "none", stroke: COLORS.frame });
    }
  });
  const gridHeight = top + layers.length * (thumb + gap);
  const gridWidth = left + heads * (thumb + gap);
  const barWidth = Math.min(240, Math.max(120, gridWidth - left - 160));
  return {
    width: Math.max(gridWidth, left + barWidth + 200),
    height: gridHeight + 34,
    items: [
      { type: "group", role: "labels", items: labels },
      { type: "group", role: "thumbnails", items: thumbs },
      ...colorBarItems(colorScale, left, gridHeight + 6, barWidth, { title: barTitle }),
    ],
  };
}
