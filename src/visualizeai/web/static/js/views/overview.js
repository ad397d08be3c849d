// All-heads overview: one thumbnail per (layer, head), from the server's pooled uint8 thumbnails (GET
// /thumbnails?layer=L: each head pooled to s×s and scaled to its own maximum), fetched one layer at a time and
// painted as each layer arrives, with a progress line. Max pooling is used for long inputs, so one-token
// patterns (sinks, previous-token diagonals) stay visible. Each thumbnail is a button holding an s×s canvas;
// clicking one, or Enter on the focused one, opens that head in the Heatmap view.

import { drawLegend } from "../lib/canvas.js";
import {
  COLOR_MODES,
  DEFAULT_MODE,
  DEFAULT_NORM,
  NORMALISATIONS,
  makeColorScale,
  quantisedTable,
  scaleCaption,
  scaleTop,
} from "../lib/color.js";
import { el, option, span } from "../lib/dom.js";
import { thumbnailScene } from "../lib/figure.js";

/** Shared controls this view uses: none (it shows every layer and head). */
export const controls = [];

/** What the keys do on this tab (the page writes the hint). */
export const keys = [
  [["←", "↑", "→", "↓"], "move between thumbnails (a thumbnail focused)"],
  [["Home", "End"], "first and last head of the layer"],
  [["Enter"], "open the head in the Heatmap"],
];

const MIN_THUMB = 34; // CSS px
const MAX_THUMB = 128; // CSS px; also the endpoint's largest size
const GAP = 6; // CSS px between thumbnails
const ROW_HEADER = 64; // CSS px for the layer labels
const MAX_POOL_FROM = 1024; // tokens: from here on thumbnails are max-pooled

/** The pooling the thumbnails of an `n`-token analysis use. */
export function thumbnailPool(n) {
  return n >= MAX_POOL_FROM ? "max" : "mean";
}

/** The layers an analysis holds: every layer, or those a standalone file includes. */
export function layersOf(meta) {
  return Array.isArray(meta.included_layers) ? meta.included_layers : Array.from({ length: meta.layers }, (_, l) => l);
}

/** The largest of `values` that is finite (0 when none). */
function largest(values) {
  let top = 0;
  for (const v of values || []) if (Number.isFinite(v) && v > top) top = v;
  return top;
}

/** Paint one s×s thumbnail (`pixels`, quantised) onto `canvas` through `table`. */
function paintThumb(canvas, pixels, s, table) {
  const c2d = canvas.getContext("2d");
  const image = c2d.createImageData(s, s);
  const out = image.data;
  for (let p = 0; p < s * s; p++) {
    const o = pixels[p] << 2;
    const q = p << 2;
    out[q] = table[o];
    out[q + 1] = table[o + 1];
    out[q + 2] = table[o + 2];
    out[q + 3] = 255;
  }
  c2d.putImageData(image, 0, 0);
}

/** The toolbar: caption, progress, colour-scale and normalisation selects and legend. */
function buildToolbar(state) {
  const caption = el("p", { className: "view-caption", attrs: { id: "overview-caption" } });
  const progress = el("p", { className: "hint overview-progress", attrs: { id: "overview-progress", role: "status" } });
  const modeSelect = el("select", { attrs: { id: "overview-color-mode" } });
  for (const [value, { label }] of Object.entries(COLOR_MODES)) {
    if (value !== "power") modeSelect.append(option(value, label)); // γ is set on the Heatmap tab
  }
  modeSelect.value = state.scale in COLOR_MODES && state.scale !== "power" ? state.scale : DEFAULT_MODE;
  const normSelect = el("select", { attrs: { id: "overview-color-norm" } });
  for (const [value, { label }] of Object.entries(NORMALISATIONS)) normSelect.append(option(value, label));
  normSelect.value = state.norm in NORMALISATIONS ? state.norm : DEFAULT_NORM;
  const legend = el("canvas", { attrs: { id: "overview-legend", "aria-hidden": "true" } });
  const legendTitle = span("", "hint");
  legendTitle.id = "overview-legend-title";
  const tools = el(
    "div",
    { className: "overview-tools" },
    el("div", { className: "control" }, el("label", { text: "Colour scale", attrs: { for: "overview-color-mode" } }), modeSelect),
    el("div", { className: "control" }, el("label", { text: "Top of the scale", attrs: { for: "overview-color-norm" } }), normSelect),
    el("div", { className: "overview-legend" }, legendTitle, legend),
  );
  const toolbar = el("div", { className: "view-toolbar" }, el("div", {}, caption, progress), tools);
  return { toolbar, caption, progress, modeSelect, normSelect, legend, legendTitle };
}

/** The grid of buttons with layer/head axis labels; returns [[button]] by row (layersOf) and head. */
function buildGrid(grid, meta, s) {
  const cells = [el("div", { className: "overview-corner" })];
  for (let h = 0; h < meta.heads; h++) cells.push(el("div", { className: "overview-col", text: `Head ${h}` }));
  const buttons = [];
  for (const l of layersOf(meta)) {
    cells.push(el("div", { className: "overview-row", text: `Layer ${l}` }));
    const row = [];
    for (let h = 0; h < meta.heads; h++) {
      const canvas = el("canvas", { attrs: { width: s, height: s, "aria-hidden": "true" } });
      const button = el(
        "button",
        {
          className: "thumb",
          dataset: { layer: l, head: h, state: "loading" },
          attrs: { type: "button", tabindex: "-1", "aria-label": `Layer ${l}, head ${h}: open in the Heatmap` },
        },
        canvas,
      );
      row.push(button);
      cells.push(button);
    }
    buttons.push(row);
  }
  grid.replaceChildren(...cells);
  return buttons;
}

export function mount(panel, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
  panel.classList.add("overview-panel");
  const { toolbar, caption, progress, modeSelect, normSelect, legend, legendTitle } = buildToolbar(
    ctx.store ? ctx.store.get() : {},
  );
  const hint = el("p", {
    className: "hint overview-hint",
    text:
      "Each thumbnail is one head's attention (rows = queries, columns = keys), pooled over blocks of tokens " +
      "and coloured as the scale above says (each head's own maximum, its layer's, or absolute 0–1). Click a thumbnail, or move with the arrow keys and press Enter, " +
      "to open the head in the Heatmap.",
  });
  const grid = el("div", {
    className: "overview-grid",
    dataset: { state: "empty" },
    attrs: { id: "overview-grid", role: "group", "aria-label": "All heads: one thumbnail per layer and head" },
  });
  panel.replaceChildren(toolbar, hint, grid);

  let shown = null; // {meta, size, pool, rows: layersOf(meta), layers: {layer: Uint8Array}, buttons: [[button]]}
  let loading = null; // AbortController of the layers being fetched

  function thumbSize(meta) {
    const room = panel.clientWidth - ROW_HEADER - GAP * (meta.heads + 1);
    return Math.max(MIN_THUMB, Math.min(MAX_THUMB, Math.floor(room / meta.heads)));
  }

  function layoutGrid(meta) {
    const px = thumbSize(meta);
    grid.style.setProperty("--thumb", `${px}px`);
    grid.style.setProperty("--heads", String(meta.heads));
    return px;
  }

  /** The colour scale of head `h` of layer `l` under the chosen normalisation, and its head's maximum. */
  function scaleOf(l, h) {
    const maxima = shown.maxima[l];
    const own = maxima ? maxima[h] : 1;
    const norm = normSelect.value;
    const top = norm === "matrix" ? own : scaleTop(norm, own, largest(maxima));
    return { colorScale: makeColorScale(top > 0 ? top : 1, { mode: modeSelect.value }), own };
  }

  /** The legend: the current layer's scale (per layer), the unit bar (per matrix) or 0–1 (absolute). */
  function drawScaleLegend() {
    const norm = normSelect.value;
    const layer = shown.rows.includes(shown.layer) ? shown.layer : shown.rows[0];
    drawLegend(legend, legendScale(), { width: 200 });
    legendTitle.textContent =
      norm === "matrix"
        ? "share of each head's maximum"
        : norm === "layer"
          ? `attention weight (layer ${layer}'s maximum at the top)`
          : "attention weight";
    legend.parentElement.title = scaleCaption(modeSelect.value, norm);
    grid.dataset.scale = modeSelect.value;
    grid.dataset.norm = norm;
  }

  /** The colour scale the legend shows. */
  function legendScale() {
    const layer = shown.rows.includes(shown.layer) ? shown.layer : shown.rows[0];
    const top = normSelect.value === "layer" && shown.maxima[layer] ? largest(shown.maxima[layer]) : 1;
    return makeColorScale(top > 0 ? top : 1, { mode: modeSelect.value });
  }

  /** Paint the layers that have arrived (or just `only`) through the colour scale; returns the ms it took. */
  function paint(only = null) {
    const started = performance.now();
    const { meta, size: s, rows, layers, buttons } = shown;
    rows.forEach((l, row) => {
      if (!layers[l] || (only !== null && l !== only)) return;
      for (let h = 0; h < meta.heads; h++) {
        const { colorScale, own } = scaleOf(l, h);
        const table = quantisedTable(colorScale, own);
        paintThumb(buttons[row][h].firstChild, layers[l].subarray(h * s * s, (h + 1) * s * s), s, table);
        buttons[row][h].dataset.state = "ready";
        buttons[row][h].dataset.max = String(own);
      }
    });
    drawScaleLegend();
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

  function say(meta, done) {
    const total = shown.rows.length;
    progress.textContent = done === total ? "" : `Loading thumbnails: ${done} of ${total} layers…`;
    grid.dataset.loaded = String(done);
  }

  /** Fetch the layers one after another (the current layer first), painting each as it comes. */
  async function stream(meta, size, pool, first, abort) {
    const order = [first, ...shown.rows.filter((l) => l !== first)];
    let done = 0;
    let drawMs = 0;
    for (const layer of order) {
      const got = await ctx.source.thumbnails({ layer, size, pool }, abort.signal);
      if (abort.signal.aborted) return null;
      shown.layers[layer] = got.pixels;
      shown.maxima[layer] = got.maxima; // null from a source that does not know them: each head its own
      drawMs += paint(layer);
      say(meta, ++done);
    }
    return drawMs;
  }

  async function update(state) {
    const { meta } = state;
    if (!meta) return;
    if (shown && shown.meta === meta) {
      markCurrent(state);
      const scale = state.scale in COLOR_MODES && state.scale !== "power" ? state.scale : DEFAULT_MODE;
      const norm = state.norm in NORMALISATIONS ? state.norm : DEFAULT_NORM;
      if (scale !== modeSelect.value || norm !== normSelect.value) {
        modeSelect.value = scale;
        normSelect.value = norm;
        paint();
      } else if (state.layer !== shown.layer) {
        shown.layer = state.layer;
        drawScaleLegend();
      }
      return;
    }
    if (loading) loading.abort();
    const abort = (loading = new AbortController());
    const started = performance.now();
    grid.dataset.state = "loading";
    const px = layoutGrid(meta);
    const dpr = globalThis.devicePixelRatio || 1;
    const size = Math.max(4, Math.min(MAX_THUMB, meta.n, Math.round(px * dpr)));
    const pool = thumbnailPool(meta.n);
    const rows = layersOf(meta);
    shown = { meta, size, pool, rows, layers: {}, maxima: {}, layer: state.layer, buttons: buildGrid(grid, meta, size) };
    markCurrent(state);
    caption.textContent =
      `All ${rows.length * meta.heads} heads · ${rows.length} layers × ${meta.heads} heads · ` +
      `${meta.n} tokens pooled to ${size}×${size} (${pool === "max" ? "maximum" : "mean"} of each block)`;
    grid.dataset.count = String(rows.length * meta.heads);
    grid.dataset.size = String(size);
    grid.dataset.pool = pool;
    say(meta, 0);
    let drawMs;
    try {
      drawMs = await stream(meta, size, pool, rows.includes(state.layer) ? state.layer : rows[0], abort);
    } catch (err) {
      if (abort.signal.aborted || (err && err.name === "AbortError")) return;
      progress.textContent = "";
      grid.dataset.state = "error";
      throw err;
    }
    if (drawMs === null) return;
    grid.dataset.drawMs = String(Math.round(drawMs * 10) / 10);
    grid.dataset.totalMs = String(Math.round((performance.now() - started) * 10) / 10);
    grid.dataset.state = "ready";
    ctx.expose({ view: "overview", meta, layer: state.layer, head: state.head, size, pool, thumbnails: shown.layers });
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
    const l = shown.rows.indexOf(Number(button.dataset.layer));
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
    event.preventDefault(); // also keeps the page's layer/head keys and the page scroll out of it
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
        el("div", { text: "Click to open in the Heatmap" }),
      ],
      event.clientX,
      event.clientY,
    );
  }

  // Figure export: the thumbnails as painted, with their layer and head labels and the colour bar.
  ctx.setFigure?.(() =>
    shown && grid.dataset.state === "ready"
      ? {
          caption: caption.textContent,
          name: "all-heads",
          scene: {
            subtitle: `Each thumbnail: one head (rows = queries, columns = keys); colour: ${scaleCaption(modeSelect.value, normSelect.value)}`,
            ...thumbnailScene({
              layers: shown.rows,
              heads: shown.meta.heads,
              canvases: shown.buttons.map((row) => row.map((button) => button.firstChild)),
              colorScale: legendScale(),
              barTitle: `${legendTitle.textContent} (${COLOR_MODES[modeSelect.value].label} scale)`,
            }),
          },
        }
      : null,
  );

  const resize = new ResizeObserver(() => {
    if (shown) layoutGrid(shown.meta);
  });
  resize.observe(panel);
  grid.addEventListener("click", onClick, { signal });
  grid.addEventListener("keydown", onKey, { signal });
  grid.addEventListener("pointermove", onHover, { signal });
  grid.addEventListener("pointerleave", () => ctx.tooltip.hide(), { signal });
  for (const [select, field] of [
    [modeSelect, "scale"],
    [normSelect, "norm"],
  ]) {
    select.addEventListener(
      "change",
      () => {
        if (ctx.store) ctx.store.set({ [field]: select.value });
        if (shown) grid.dataset.drawMs = String(Math.round(paint() * 10) / 10);
      },
      { signal },
    );
  }

  return {
    update,
    unmount() {
      if (loading) loading.abort();
      controller.abort();
      resize.disconnect();
      ctx.tooltip.hide();
    },
  };
}
