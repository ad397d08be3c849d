// All-heads overview: one thumbnail per (layer, head), every layer at once, from the server's downsampled uint8
// thumbnails (GET /thumbnails: each head mean-pooled to s×s and scaled to its own maximum). Each thumbnail is a
// button holding an s×s canvas (one pixel per pooled block), so the grid costs 72 small putImageData calls at
// 512 tokens. Clicking a thumbnail, or Enter on the focused one, opens that head in the Heatmap view.

import { fetchThumbnails } from "./api.js";
import { COLOR_MODES, drawLegend, makeColorScale } from "./colorscale.js";
import { span } from "./tooltip.js";

/** Shared controls this view uses: none (it shows every layer and head). */
export const controls = [];

const MIN_THUMB = 34; // CSS px
const MAX_THUMB = 128; // CSS px; also the endpoint's largest size
const GAP = 6; // CSS px between thumbnails
const ROW_HEADER = 64; // CSS px for the layer labels
const DEFAULT_MODE = "sqrt"; // faint patterns of long inputs stay visible

const thumbnailCache = new Map(); // "key|size" → Promise<{shape, data}>, the last few only

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** RGBA for each quantised value 0…255 (255 = the head's maximum) under `colorScale`. */
function colorTable(colorScale) {
  const table = new Uint8ClampedArray(256 * 4);
  const last = 255;
  for (let q = 0; q < 256; q++) {
    const v = q / 255;
    let idx = q > 0 ? (colorScale.unit(v) * last + 0.5) | 0 : 0;
    if (idx > last) idx = last;
    table.set(colorScale.lut.subarray(idx * 4, idx * 4 + 4), q * 4);
  }
  return table;
}

export function mount(panel, ctx) {
  panel.classList.add("overview-panel");
  const head = element("div", "view-toolbar");
  const caption = element("p", "view-caption");
  caption.id = "overview-caption";
  const tools = element("div", "overview-tools");
  const modeControl = element("div", "control");
  const modeLabel = element("label", "", "Colour scale");
  modeLabel.htmlFor = "overview-color-mode";
  const modeSelect = element("select");
  modeSelect.id = "overview-color-mode";
  for (const [value, { label }] of Object.entries(COLOR_MODES)) {
    const option = element("option", "", label);
    option.value = value;
    modeSelect.append(option);
  }
  modeSelect.value = DEFAULT_MODE;
  modeControl.append(modeLabel, modeSelect);
  const legend = element("canvas");
  legend.id = "overview-legend";
  legend.setAttribute("aria-hidden", "true");
  const legendBox = element("div", "overview-legend");
  legendBox.append(element("span", "hint", "share of each head's maximum"), legend);
  tools.append(modeControl, legendBox);
  head.append(caption, tools);
  const hint = element(
    "p",
    "hint overview-hint",
    "Each thumbnail is one head's attention (rows = queries, columns = keys), averaged over blocks of tokens " +
      "and scaled to that head's own maximum. Click a thumbnail, or move with the arrow keys and press Enter, " +
      "to open the head in the Heatmap.",
  );
  const grid = element("div", "overview-grid");
  grid.id = "overview-grid";
  grid.dataset.state = "empty";
  grid.setAttribute("role", "group");
  grid.setAttribute("aria-label", "All heads: one thumbnail per layer and head");
  panel.replaceChildren(head, hint, grid);

  let shown = null; // {meta, size, thumbs: {shape, data}, buttons: [[button]]}
  let request = 0;

  function thumbSize(meta) {
    const room = panel.clientWidth - ROW_HEADER - GAP * (meta.heads + 1);
    return Math.max(MIN_THUMB, Math.min(MAX_THUMB, Math.floor(room / meta.heads)));
  }

  function loadThumbnails(meta, size) {
    const id = `${meta.key}|${size}`;
    let entry = thumbnailCache.get(id);
    if (!entry) {
      entry = ctx.withKey((key) => fetchThumbnails(key, size));
      entry.catch(() => thumbnailCache.delete(id));
      thumbnailCache.set(id, entry);
      while (thumbnailCache.size > 4) thumbnailCache.delete(thumbnailCache.keys().next().value);
    }
    return entry;
  }

  /** Build the grid of buttons with layer/head axis labels (once per analysis). */
  function build(meta, s) {
    const cells = [element("div", "overview-corner")];
    for (let h = 0; h < meta.heads; h++) cells.push(element("div", "overview-col", `Head ${h}`));
    const buttons = [];
    for (let l = 0; l < meta.layers; l++) {
      cells.push(element("div", "overview-row", `Layer ${l}`));
      const row = [];
      for (let h = 0; h < meta.heads; h++) {
        const button = element("button", "thumb");
        button.type = "button";
        button.dataset.layer = String(l);
        button.dataset.head = String(h);
        button.tabIndex = -1;
        button.setAttribute("aria-label", `Layer ${l}, head ${h}: open in the Heatmap`);
        const canvas = element("canvas");
        canvas.width = s;
        canvas.height = s;
        canvas.setAttribute("aria-hidden", "true");
        button.append(canvas);
        row.push(button);
        cells.push(button);
      }
      buttons.push(row);
    }
    grid.replaceChildren(...cells);
    return buttons;
  }

  function layoutGrid(meta) {
    const px = thumbSize(meta);
    grid.style.setProperty("--thumb", `${px}px`);
    grid.style.setProperty("--heads", String(meta.heads));
    return px;
  }

  /** Paint every thumbnail through the colour scale; returns the milliseconds it took. */
  function paint() {
    const started = performance.now();
    const { thumbs, buttons } = shown;
    const [layers, heads, s] = thumbs.shape;
    const colorScale = makeColorScale(1, { mode: modeSelect.value });
    const table = colorTable(colorScale);
    const area = s * s;
    for (let l = 0; l < layers; l++) {
      for (let h = 0; h < heads; h++) {
        const canvas = buttons[l][h].firstChild;
        const c2d = canvas.getContext("2d");
        const image = c2d.createImageData(s, s);
        const out = image.data;
        const base = (l * heads + h) * area;
        for (let p = 0; p < area; p++) {
          const o = thumbs.data[base + p] << 2;
          const q = p << 2;
          out[q] = table[o];
          out[q + 1] = table[o + 1];
          out[q + 2] = table[o + 2];
          out[q + 3] = 255;
        }
        c2d.putImageData(image, 0, 0);
      }
    }
    drawLegend(legend, colorScale, { width: 200 });
    return performance.now() - started;
  }

  function markCurrent(state) {
    if (!shown) return;
    for (const row of shown.buttons) {
      for (const button of row) {
        const on = Number(button.dataset.layer) === state.layer && Number(button.dataset.head) === state.head;
        button.classList.toggle("current", on);
        if (on) button.setAttribute("aria-current", "true");
        else button.removeAttribute("aria-current");
        // roving tab stop: Tab reaches the current head, arrows move from there
        if (!grid.contains(document.activeElement)) button.tabIndex = on ? 0 : -1;
      }
    }
  }

  async function update(state) {
    const { meta } = state;
    if (!meta) return;
    if (shown && shown.meta === meta) {
      markCurrent(state);
      return;
    }
    const mine = ++request;
    const started = performance.now();
    grid.dataset.state = "loading";
    const px = layoutGrid(meta);
    const dpr = window.devicePixelRatio || 1;
    const size = Math.max(4, Math.min(MAX_THUMB, meta.n, Math.round(px * dpr)));
    const thumbs = await loadThumbnails(meta, size);
    if (mine !== request) return;
    const s = thumbs.shape[2];
    const buttons = build(meta, s);
    shown = { meta, size: s, thumbs, buttons };
    const drawMs = paint();
    markCurrent(state);
    caption.textContent =
      `All ${meta.layers * meta.heads} heads · ${meta.layers} layers × ${meta.heads} heads · ` +
      `${meta.n} tokens pooled to ${s}×${s}`;
    grid.dataset.count = String(meta.layers * meta.heads);
    grid.dataset.size = String(s);
    grid.dataset.drawMs = String(Math.round(drawMs * 10) / 10);
    grid.dataset.totalMs = String(Math.round((performance.now() - started) * 10) / 10);
    grid.dataset.state = "ready";
    window.__viz = { view: "overview", meta, layer: state.layer, head: state.head, thumbnails: thumbs };
  }

  function buttonOf(target) {
    const button = target && target.closest ? target.closest("button.thumb") : null;
    return button && grid.contains(button) ? button : null;
  }

  function onClick(event) {
    const button = buttonOf(event.target);
    if (!button) return;
    ctx.tooltip.hide();
    ctx.store.set({ layer: Number(button.dataset.layer), head: Number(button.dataset.head), view: "heatmap" });
  }

  function onKey(event) {
    const button = buttonOf(event.target);
    if (!button || !shown || event.altKey || event.ctrlKey || event.metaKey) return;
    const l = Number(button.dataset.layer);
    const h = Number(button.dataset.head);
    const layers = shown.buttons.length;
    const heads = shown.buttons[0].length;
    const moves = {
      ArrowUp: [l - 1, h],
      ArrowDown: [l + 1, h],
      ArrowLeft: [l, h - 1],
      ArrowRight: [l, h + 1],
      Home: [l, 0],
      End: [l, heads - 1],
    };
    const to = moves[event.key];
    if (!to) return;
    event.preventDefault(); // also keeps main.js's layer/head keys and the page scroll out of it
    const [nl, nh] = [Math.min(Math.max(to[0], 0), layers - 1), Math.min(Math.max(to[1], 0), heads - 1)];
    const next = shown.buttons[nl][nh];
    button.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }

  function onHover(event) {
    const button = buttonOf(event.target);
    if (!button) {
      ctx.tooltip.hide();
      return;
    }
    ctx.tooltip.show(
      [
        span(`Layer ${button.dataset.layer} · head ${button.dataset.head}`, "value"),
        element("div", "", "Click to open in the Heatmap"),
      ],
      event.clientX,
      event.clientY,
    );
  }

  const onLeave = () => ctx.tooltip.hide();
  const onMode = () => {
    if (shown) grid.dataset.drawMs = String(Math.round(paint() * 10) / 10);
  };
  const resize = new ResizeObserver(() => {
    if (shown) layoutGrid(shown.meta);
  });
  resize.observe(panel);
  grid.addEventListener("click", onClick);
  grid.addEventListener("keydown", onKey);
  grid.addEventListener("pointermove", onHover);
  grid.addEventListener("pointerleave", onLeave);
  modeSelect.addEventListener("change", onMode);

  return {
    update,
    unmount() {
      request++;
      resize.disconnect();
      grid.removeEventListener("click", onClick);
      grid.removeEventListener("keydown", onKey);
      grid.removeEventListener("pointermove", onHover);
      grid.removeEventListener("pointerleave", onLeave);
      modeSelect.removeEventListener("change", onMode);
      ctx.tooltip.hide();
    },
  };
}
