// The widget's heatmap of one head (or an average): the whole matrix, or a dragged rectangle of it, drawn from one
// tile read at the canvas' device resolution (exact weights when the block fits, pooled otherwise), with token
// labels when cells are wide enough and a tooltip naming the query and key tokens and the exact weight.
// Same contract as the page's views: mount(panel, ctx) -> {update(state), unmount()}, data only via ctx.source.

import { fitText, FONT_FAMILY, setupCanvas } from "../lib/canvas.js";
import { formatValue, makeColorScale, maxOf, paintValues } from "../lib/color.js";
import { el, span } from "../lib/dom.js";
import { tokenLabel } from "../lib/tokens.js";

const SIDE = 520; // CSS px of the matrix
const LABELS = 96; // CSS px kept for token labels along each axis when they are shown
const MIN_LABEL_CELL = 11; // CSS px a cell needs for its token label
const MAX_TILE = 1024; // the tile request's largest size

/** The token range [a, b) and its cell under a CSS offset `x` along an axis of `side` px showing `range`. */
export function cellAt(range, side, x) {
  const [a, b] = range;
  const i = a + Math.floor(((b - a) * x) / side);
  return Math.min(b - 1, Math.max(a, i));
}

/** The bin of token `t` in a tile axis of `bins` over `range` (the tile endpoint's rule, edges ⌊i·len/bins⌋),
 * with the tokens [start, end) it covers. */
export function binRange(range, bins, t) {
  const len = range[1] - range[0];
  const bin = Math.floor(((t - range[0]) * bins + bins - 1) / len);
  const edge = (i) => range[0] + Math.floor((i * len) / bins);
  return { bin, start: edge(bin), end: edge(bin + 1) };
}

export function mount(panel, ctx) {
  const { source } = ctx;
  const info = source.info;
  const controller = new AbortController();
  const { signal } = controller;
  const canvas = el("canvas", { className: "vai-canvas", attrs: { role: "img" } });
  const status = el("div", { className: "vai-status", attrs: { "aria-live": "polite" } });
  const reset = el("button", { text: "Whole matrix", attrs: { type: "button" }, hidden: true });
  const tooltip = el("div", { className: "vai-tooltip", hidden: true });
  panel.append(el("div", { className: "vai-heatmap-bar" }, reset, status), canvas, tooltip);

  let state = null;
  let view = { rows: [0, info.n], cols: [0, info.n] };
  let drawn = null; // {rows, cols, tile, grid: {x, y, side}}
  let request = null; // AbortController of the tile being read
  const rowCache = new Map(); // "layer/head/row" -> Float32Array (exact values for the tooltip)

  function geometry() {
    const span = Math.max(view.rows[1] - view.rows[0], view.cols[1] - view.cols[0]);
    const labels = SIDE / span >= MIN_LABEL_CELL;
    const offset = labels ? LABELS : 0;
    return { x: offset, y: offset, side: SIDE, labels, width: SIDE + offset, height: SIDE + offset };
  }

  async function draw() {
    if (!state) return;
    if (request) request.abort();
    request = new AbortController();
    const mine = request;
    const grid = geometry();
    const dpr = globalThis.devicePixelRatio || 1;
    const size = Math.min(MAX_TILE, Math.max(1, Math.ceil(grid.side * dpr)));
    panel.dataset.state = "loading";
    status.textContent = "Reading attention…";
    let tile;
    try {
      tile = await source.tile(
        { layer: state.layer, head: state.head, rows: view.rows, cols: view.cols, size, pool: state.pool },
        mine.signal,
      );
    } catch (err) {
      if (err.name === "AbortError") return;
      panel.dataset.state = "error";
      status.textContent = err.message;
      return;
    }
    if (mine.signal.aborted || signal.aborted) return;
    paint(tile, grid);
    drawn = { rows: tile.rows, cols: tile.cols, tile, grid };
    const [h, w] = tile.shape;
    status.textContent =
      `${selectionName(state)} · queries ${tile.rows[0]}–${tile.rows[1] - 1}, keys ${tile.cols[0]}–${tile.cols[1] - 1}` +
      (tile.pooled ? ` · ${tile.pool}-pooled to ${h}×${w}` : " · exact");
    Object.assign(panel.dataset, {
      state: "drawn",
      layer: state.layer ?? "mean",
      head: state.head ?? "mean",
      pooled: String(tile.pooled),
      rows: tile.rows.join(":"),
      cols: tile.cols.join(":"),
    });
  }

  function paint(tile, grid) {
    const { ctx: g } = setupCanvas(canvas, grid.width, grid.height);
    const [h, w] = tile.shape;
    const scale = makeColorScale(maxOf(tile.values));
    const image = new ImageData(w, h);
    paintValues(image, tile.values, scale);
    const bitmap = document.createElement("canvas");
    bitmap.width = w;
    bitmap.height = h;
    bitmap.getContext("2d").putImageData(image, 0, 0);
    g.imageSmoothingEnabled = false;
    const rowsSpan = tile.rows[1] - tile.rows[0];
    const colsSpan = tile.cols[1] - tile.cols[0];
    const cell = grid.side / Math.max(rowsSpan, colsSpan);
    g.drawImage(bitmap, grid.x, grid.y, cell * colsSpan, cell * rowsSpan);
    canvas.setAttribute("aria-label", `Attention heatmap, ${selectionName(state)}`);
    canvas.dataset.grid = `${grid.x},${grid.y},${cell}`; // matrix origin and CSS px per token
    if (!grid.labels) return;
    g.font = `${Math.min(12, cell - 2)}px ${FONT_FAMILY}`;
    g.fillStyle = "#1f2933";
    g.textBaseline = "middle";
    g.textAlign = "right";
    for (let i = tile.rows[0]; i < tile.rows[1]; i++) {
      const y = grid.y + (i - tile.rows[0] + 0.5) * cell;
      g.fillText(fitText(g, tokenLabel(info.tokens[i]), LABELS - 6), grid.x - 4, y);
    }
    g.textAlign = "left";
    for (let j = tile.cols[0]; j < tile.cols[1]; j++) {
      g.save();
      g.translate(grid.x + (j - tile.cols[0] + 0.5) * cell, grid.y - 4);
      g.rotate(-Math.PI / 2);
      g.fillText(fitText(g, tokenLabel(info.tokens[j]), LABELS - 6), 0, 0);
      g.restore();
    }
  }

  /** The cell under a pointer event, or null outside the drawn matrix. */
  function cellOf(event) {
    if (!drawn) return null;
    const box = canvas.getBoundingClientRect();
    const { grid, rows, cols } = drawn;
    const cell = grid.side / Math.max(rows[1] - rows[0], cols[1] - cols[0]);
    const x = event.clientX - box.left - grid.x;
    const y = event.clientY - box.top - grid.y;
    if (x < 0 || y < 0 || x >= cell * (cols[1] - cols[0]) || y >= cell * (rows[1] - rows[0])) return null;
    const col = cellAt(cols, cell * (cols[1] - cols[0]), x);
    const row = cellAt(rows, cell * (rows[1] - rows[0]), y);
    return { row, col, x, y };
  }

  async function exactRow(row) {
    const key = `${state.layer}/${state.head}/${row}`;
    if (!rowCache.has(key)) {
      if (rowCache.size > 64) rowCache.delete(rowCache.keys().next().value);
      const values = source.row({ layer: state.layer, head: state.head, row }, signal);
      values.catch(() => rowCache.delete(key));
      rowCache.set(key, values);
    }
    return rowCache.get(key);
  }

  let hoverSeq = 0;
  async function hover(event) {
    const at = cellOf(event);
    if (!at) {
      tooltip.hidden = true;
      return;
    }
    const seq = ++hoverSeq;
    const q = info.tokens[at.row];
    const k = info.tokens[at.col];
    const place = () => {
      const box = panel.getBoundingClientRect();
      tooltip.style.left = `${event.clientX - box.left + 14}px`;
      tooltip.style.top = `${event.clientY - box.top + 14}px`;
      tooltip.hidden = false;
    };
    let value;
    let valueLabel = "weight";
    let rowsText = `#${at.row} `;
    let colsText = `#${at.col} `;
    if (drawn.tile.pooled) {
      // a pooled cell: its tile value, over the token ranges of its bins
      const [h, w] = drawn.tile.shape;
      const rb = binRange(drawn.rows, h, at.row);
      const cb = binRange(drawn.cols, w, at.col);
      value = drawn.tile.values[rb.bin * w + cb.bin];
      valueLabel = `${drawn.tile.pool} of the block`;
      if (rb.end - rb.start > 1) rowsText = `#${rb.start}–${rb.end - 1}, at `;
      if (cb.end - cb.start > 1) colsText = `#${cb.start}–${cb.end - 1}, at `;
    } else {
      try {
        value = (await exactRow(at.row))[at.col];
      } catch (err) {
        if (err.name === "AbortError") return;
        value = NaN;
      }
    }
    if (seq !== hoverSeq) return;
    tooltip.replaceChildren(
      el("div", {}, span("query ", "vai-muted"), span(rowsText), span(q.raw, "vai-token")),
      el("div", {}, span("key ", "vai-muted"), span(colsText), span(k.raw, "vai-token")),
      el("div", {}, span(`${valueLabel} `, "vai-muted"), span(formatValue(value), "vai-value")),
    );
    Object.assign(tooltip.dataset, { row: at.row, col: at.col, value: String(value) });
    place();
  }

  // drag a rectangle to read that block; "Whole matrix" goes back
  let dragFrom = null;
  canvas.addEventListener("pointerdown", (e) => (dragFrom = cellOf(e)), { signal });
  canvas.addEventListener(
    "pointerup",
    (e) => {
      const to = cellOf(e);
      const from = dragFrom;
      dragFrom = null;
      if (!from || !to || (from.row === to.row && from.col === to.col)) return;
      view = {
        rows: [Math.min(from.row, to.row), Math.max(from.row, to.row) + 1],
        cols: [Math.min(from.col, to.col), Math.max(from.col, to.col) + 1],
      };
      reset.hidden = false;
      draw();
    },
    { signal },
  );
  reset.addEventListener(
    "click",
    () => {
      view = { rows: [0, info.n], cols: [0, info.n] };
      reset.hidden = true;
      draw();
    },
    { signal },
  );
  canvas.addEventListener("pointermove", hover, { signal });
  canvas.addEventListener("pointerleave", () => (tooltip.hidden = true), { signal });

  return {
    update(next) {
      state = { ...next };
      return draw();
    },
    unmount() {
      controller.abort();
      if (request) request.abort();
      panel.replaceChildren();
    },
  };
}

function selectionName(state) {
  const layer = state.layer === null ? "mean of layers" : `layer ${state.layer}`;
  const head = state.head === null ? "mean of heads" : `head ${state.head}`;
  return `${layer}, ${head}`;
}
