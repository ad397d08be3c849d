// Heatmap view: one head's attention (or a mean over heads/layers) as a level-of-detail map.
//
// At any zoom only the visible tiles are fetched (ctx.source.tile), at the level whose samples match the
// screen's device pixels (js/lib/tiles.js): the whole matrix pooled to one tile when zoomed out, exact
// weights once a cell is about a device pixel. Tiles are painted once into small canvases, kept in a bounded
// LRU, fetched nearest the centre first, and cancelled when the view moves on; a frame only draws cached
// tiles (coarser ones scaled up while finer ones load), so it is never blank. Hiding special tokens and
// merging words need the whole matrix from the server (source.attention): offered for short inputs, where
// the same tiles are cut from it here.
//
// The view is made of parts: heatmap_panel.js (its elements), heatmap_draw.js (the canvas drawing),
// heatmap_tiles.js (which tiles, fetched and cached), heatmap_input.js (pointer, wheel, minimap, keys),
// heatmap_nav.js (the navigation, js/views/navigate.js: find, jump, a range of query rows and its top keys; and
// the text panel, js/views/textpanel.js: the whole input shaded by the focused query's row), heatmap_debug.js
// (the figure for exports and the debug handle), and the pure rules in js/lib/heatmap_math.js. This module
// holds the state and wires them.

import { drawLegend, setupCanvas } from "../lib/canvas.js";
import {
  COLOR_MODES,
  DEFAULT_GAMMA,
  DEFAULT_MODE,
  DEFAULT_NORM,
  NORMALISATIONS,
  makeColorScale,
  scaleCaption,
  scaleTop,
} from "../lib/color.js";
import { option } from "../lib/dom.js";
import { caption, denseStrip, selectionOf, topOf } from "../lib/heatmap_math.js";
import { formatZoom, parseRange, parseZoom } from "../lib/state.js";
import { MAX_SAMPLES, poolingLabel, tileSamples } from "../lib/tiles.js";
import { describeAxis, identityGroups } from "../lib/tokens.js";
import { FULL_VIEW, cellSize, centerOn, clamp, clampView, fitRange, sameView, visibleRange, zoomAbout } from "../lib/viewport.js";
import { createDebug, figureOf } from "./heatmap_debug.js";
import {
  COLORS,
  MINIMAP,
  axisWords,
  computeLayout,
  drawAxes,
  drawTile,
  paintMinimap,
  paintOverlay,
  paintTile,
} from "./heatmap_draw.js";
import { ZOOM_STEP, wireInput } from "./heatmap_input.js";
import { buildPanel, makeTooltip, showFocusHead, showFocusList, tooltipLines } from "./heatmap_panel.js";
import { mountNavigation } from "./heatmap_nav.js";
import { createHeatmapTiles, exactStrip } from "./heatmap_tiles.js";

/** Which shared controls this view uses (the page hides the others). */
export const controls = ["layer", "head", "aggregate", "tokens"];

const READABLE_CELL = 16; // CSS px: a zoom where every row's label is written
const TOP_KEYS = 5;
const DENSE_MAX_N = 2048; // hide special / merge words: the whole matrix from the server up to here
const isAbort = (err) => err && err.name === "AbortError";
const LAYER_TOP_SIZE = 8; // the thumbnails asked for only for their maxima (each head's largest weight)

const LEGEND_HINT = {
  plain: "Rows are query tokens, columns key tokens. ",
  hidden:
    "Rows are query tokens, columns key tokens. Special tokens are hidden and every row is renormalised " +
    "to sum to 1 over the tokens shown. ",
  pooled:
    "The top of the colour bar is, as chosen: the largest value of the first picture of this matrix, the " +
    "largest weight of the layer's heads, or 1. Zoomed out, each pixel shows the pooled cells (max keeps " +
    "single strong cells visible).",
};
const DENSE_NOTICE =
  "Hiding special tokens and merging words need the whole matrix, offered up to " +
  `${DENSE_MAX_N.toLocaleString("en")} tokens; this shows every token.`;

/** The axis of `info`'s tokens, or of displayed groups of them: {groups, labels, special, positions}. */
function axisOf(info, groups) {
  const g = groups || identityGroups(info.n);
  return { groups: g, ...describeAxis(info, g) };
}

/** The whole matrix of a transformed view (hidden special tokens, merged words), when short enough. */
async function loadDense(source, state, sel, signal) {
  if (typeof source.attention !== "function" || source.info.n > DENSE_MAX_N) return null;
  const params = {
    layer: sel.layer ?? undefined,
    head: sel.head ?? undefined,
    agg: sel.agg,
    hideSpecial: Boolean(state.hideSpecial),
    mergeWords: Boolean(state.mergeWords),
  };
  const result = await source.attention(params, signal);
  return { data: result.data, n: result.shape[result.shape.length - 1], groups: result.groups };
}

/** The outcome attributes of the drawn view on #heatmap (what tests and the benchmark read). */
function describeOn(d, { view, layout, n, level, lod, pool, samples, ms, requested }) {
  const range = visibleRange(view, n);
  d.zoom = String(Math.round(view.zoom * 1000) / 1000);
  d.visible = String(Math.round(n / view.zoom));
  d.rows = `${range.rows[0]}:${range.rows[1]}`;
  d.cols = `${range.cols[0]}:${range.cols[1]}`;
  d.level = String(level);
  d.lod = lod;
  d.pool = pool;
  d.samples = String(samples);
  d.x0 = view.x0.toFixed(3); // the exact window, for tests that point at cells
  d.y0 = view.y0.toFixed(3);
  d.cell = cellSize(view, layout.grid, n).toFixed(4); // CSS px per cell
  d.gridLeft = String(layout.left);
  d.gridTop = String(layout.top);
  d.axisLabels = axisWords(view, layout) ? "tokens" : "positions";
  d.frameMs = String(Math.round(ms * 100) / 100);
  d.tilesRequested = String(requested);
}

/** The zoom bar's words and buttons for `view`. */
function showZoom(refs, view, layout, n, lod, level) {
  const range = visibleRange(view, n);
  const zoomed = view.zoom > 1.0001;
  refs.zoomLevel.textContent = zoomed
    ? `×${view.zoom.toFixed(1)} · rows ${range.rows[0]}–${range.rows[1] - 1}, ` +
      `columns ${range.cols[0]}–${range.cols[1] - 1} of ${n}`
    : `All ${n.toLocaleString("en")} rows and columns`;
  refs.lod.textContent = lod;
  refs.lod.classList.toggle("exact", level === 0);
  refs.zoomReset.disabled = !zoomed;
  refs.zoomOut.disabled = !zoomed;
  refs.zoomIn.disabled = view.zoom >= layout.maxZoom - 1e-6;
  refs.wrap.classList.toggle("zoomed", zoomed);
  return zoomed ? formatZoom(range) : undefined;
}

/**
 * Mount the view into `panel`. `ctx`: {source (info, tile, row, topKeys, attention?), store?, tooltip?, marks?,
 * setFigure?, expose?} (see pages/analysis.js). Returns {update(state) → Promise, unmount(), figure(), debug}.
 */
export function mount(panel, ctx) {
  const source = ctx.source;
  const lifetime = new AbortController();
  const on = (target, type, fn, opts = {}) => target.addEventListener(type, fn, { ...opts, signal: lifetime.signal });
  const refs = buildPanel(panel);
  const tooltip = ctx.tooltip || makeTooltip(panel);
  const store = ctx.store || null;

  const initial = store ? store.get() : {};
  let mode = initial.scale in COLOR_MODES ? initial.scale : DEFAULT_MODE;
  let norm = initial.norm in NORMALISATIONS ? initial.norm : DEFAULT_NORM;
  const layerTops = new Map(); // layer → the largest weight of its heads (null while asked for)
  let gamma = Number.isFinite(initial.gamma) && initial.gamma > 0 ? initial.gamma : DEFAULT_GAMMA;
  let pool = initial.pool === "mean" ? "mean" : "max";
  let pendingZoom = parseZoom(initial.zoom); // applied once the first layout is known
  let pendingSelect = parseRange(initial.select); // a selected range of query rows from the URL
  let pinned = Number.isInteger(initial.focus)
    ? { axis: initial.focusAxis === "col" ? "col" : "row", index: initial.focus }
    : null;

  // What is shown: {info, sel, key (matrix identity), n, axis: {labels, special, positions, groups},
  // groupsKey, dense: {data} | null, transformed, colorScale, recolor, started}
  let shown = null;
  let layout = null;
  let view = FULL_VIEW;
  let samples = 512;
  let hovered = null;
  let frameRequested = false;
  let generation = 0;
  let matches = []; // [{rows: [a, b]}] from find, in displayed rows
  let currentMatch = -1;
  let selection = null; // [a, b) of query rows
  let focusRequest = null;
  let loadController = null;
  let lastWidth = 0;

  const tiles = createHeatmapTiles({
    source,
    get: () => ({ shown, view, layout, samples, pool }),
    signal: lifetime.signal,
    onSettled: () => scheduleFrame(), // the tile may be one the view shows (or, fetched ahead, the head shown by now)
  });

  // ---- colour ----------------------------------------------------------------------------------------

  function wireColour() {
    refs.colorMode.replaceChildren(...Object.entries(COLOR_MODES).map(([value, { label }]) => option(value, label)));
    refs.colorMode.value = mode;
    refs.colorNorm.replaceChildren(...Object.entries(NORMALISATIONS).map(([value, { label }]) => option(value, label)));
    refs.colorNorm.value = norm;
    on(refs.colorNorm, "change", () => {
      norm = refs.colorNorm.value in NORMALISATIONS ? refs.colorNorm.value : DEFAULT_NORM;
      if (store) store.set({ norm });
      setColor();
    });
    refs.gamma.value = String(gamma);
    refs.gammaValue.textContent = gamma.toFixed(2);
    refs.gammaControl.hidden = mode !== "power";
    refs.pool.value = pool;
    on(refs.colorMode, "change", () => {
      mode = refs.colorMode.value in COLOR_MODES ? refs.colorMode.value : DEFAULT_MODE;
      refs.gammaControl.hidden = mode !== "power";
      if (store) store.set({ scale: mode });
      setColor();
    });
    on(refs.gamma, "input", () => {
      gamma = Number.parseFloat(refs.gamma.value) || DEFAULT_GAMMA;
      refs.gammaValue.textContent = gamma.toFixed(2);
      if (store) store.set({ gamma });
      setColor();
    });
    on(refs.pool, "change", () => {
      pool = refs.pool.value === "mean" ? "mean" : "max";
      if (store) store.set({ pool: pool === "max" ? undefined : pool });
      if (shown) shown.recolor = true; // the colour range becomes that of the new pooling's first full view
      tiles.loader.forgetFailures();
      scheduleFrame();
    });
  }

  /**
   * The largest weight of the shown layer's heads (max-pooled thumbnails' maxima are each head's exact
   * maximum), or undefined until it is known: asked for once per layer, the colours follow when it comes.
   */
  function layerTop() {
    const layer = shown && shown.sel ? shown.sel.layer : null;
    if (norm !== "layer" || !Number.isInteger(layer)) return undefined;
    if (layerTops.has(layer)) return layerTops.get(layer) ?? undefined;
    layerTops.set(layer, null);
    source
      .thumbnails({ layer, size: LAYER_TOP_SIZE, pool: "max" }, lifetime.signal)
      .then((got) => {
        const maxima = got && got.maxima ? Array.from(got.maxima) : [];
        layerTops.set(layer, maxima.length ? Math.max(...maxima) : undefined);
        if (shown && shown.sel && shown.sel.layer === layer) setColor();
      })
      .catch(() => layerTops.delete(layer)); // asked again next time; the matrix's own maximum meanwhile
    return undefined;
  }

  /** A colour scale for a matrix whose largest value is `max`, under the mode, gamma and normalisation in
   * use, and its legend (whose title says which they are). */
  function useColorScale(max) {
    shown.matrixMax = max;
    const top = scaleTop(norm, max, layerTop());
    shown.colorScale = makeColorScale(top, { mode, gamma });
    drawLegend(refs.legend, shown.colorScale, { width: 260 });
    refs.legendTitle.textContent = `Attention weight · ${scaleCaption(mode, norm, gamma)}`;
    refs.wrap.dataset.norm = norm;
    refs.wrap.dataset.top = String(top);
  }

  function setColor() {
    if (!shown || !shown.colorScale) return; // the first full view takes the mode and gamma as they are then
    useColorScale(shown.matrixMax);
    scheduleFrame();
  }

  // ---- frames ----------------------------------------------------------------------------------------

  function scheduleFrame() {
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      frame();
    });
  }

  /** Draw what is cached for the view, ask for what is missing, and report the state on #heatmap. */
  function frame() {
    if (!shown || !layout) return;
    const started = performance.now();
    const { complete, failed } = tiles.fetchVisible();
    const target = tiles.targetLevel();
    if ((!shown.colorScale || shown.recolor) && complete) {
      const max = tiles.visibleMax();
      if (max !== null) {
        shown.recolor = false;
        useColorScale(max);
      }
    }
    drawCells(target);
    drawOverlay();
    paintMinimap(refs.minimap, view, shown.n, tiles.minimapTiles(), shown.colorScale);
    refs.minimap.hidden = view.zoom <= 1.0001 && shown.n <= 1024;
    describe(target, complete && Boolean(shown.colorScale), performance.now() - started);
    if (failed) {
      // not asked again for this matrix until it is shown anew (another head, pooling or option)
      refs.wrap.dataset.state = "error";
      showNotice(failed.message || String(failed));
    }
  }

  /** The grid: cached tiles of the view (coarse ones under the target level's), its frame and the axes. */
  function drawCells(target) {
    const { ctx: c } = setupCanvas(refs.canvas, layout.width, layout.height);
    c.fillStyle = COLORS.empty;
    c.fillRect(layout.left, layout.top, layout.grid, layout.grid);
    if (shown.colorScale) {
      c.save();
      c.beginPath();
      c.rect(layout.left, layout.top, layout.grid, layout.grid);
      c.clip();
      c.imageSmoothingEnabled = false;
      for (const tile of tiles.drawable(target)) {
        if (tile.paintedWith !== shown.colorScale) paintTile(tile, shown.colorScale);
        drawTile(c, layout, view, tile);
      }
      c.restore();
    }
    c.strokeStyle = COLORS.frame;
    c.lineWidth = 1;
    c.strokeRect(layout.left - 0.5, layout.top - 0.5, layout.grid + 1, layout.grid + 1);
    drawAxes(c, layout, view, shown.axis);
  }

  function drawOverlay() {
    const outlined = markedRows();
    const marks = { selection, matches, currentMatch, pinned, hovered, outlined, labels: shown.axis.labels };
    paintOverlay(refs.overlay, layout, view, marks);
  }

  /** The words, the outcome attributes and the URL state of what is drawn. */
  function describe(level, drawn, ms) {
    const n = shown.n;
    const dpr = globalThis.devicePixelRatio || 1;
    const lod = poolingLabel(level, pool, 1 / (2 ** level * cellSize(view, layout.grid, n) * dpr));
    const zoom = showZoom(refs, view, layout, n, lod, level);
    const d = refs.wrap.dataset;
    describeOn(d, { view, layout, n, level, lod, pool, samples, ms, requested: tiles.loader.stats.requested });
    if (drawn) {
      if (d.state !== "ready") {
        d.drawMs = String(Math.round((performance.now() - shown.started) * 10) / 10);
        setTimeout(tiles.prefetchNeighbours, 0);
      }
      d.state = "ready";
    } else d.state = "loading";
    if (store && drawn && store.get().zoom !== zoom) store.set({ zoom });
  }

  // ---- what to show ------------------------------------------------------------------------------------

  function availableWidth() {
    const style = getComputedStyle(panel);
    const beside = style.flexDirection === "row";
    const gap = Number.parseFloat(style.columnGap) || 0;
    return Math.max(240, panel.clientWidth - (beside ? refs.side.offsetWidth + gap : 0) - MINIMAP - 16);
  }

  function relayout() {
    if (!shown) return;
    const tall = Math.max(360, (globalThis.innerHeight || 900) - 160);
    layout = computeLayout(refs.canvas.getContext("2d"), shown.axis.labels, availableWidth(), tall);
    // a matrix of at most 1,024 tokens is one exact tile (one request per head, as small as the dense head)
    samples = shown.n <= MAX_SAMPLES ? MAX_SAMPLES : tileSamples(layout.grid * (globalThis.devicePixelRatio || 1));
    if (pendingZoom) {
      const z = pendingZoom;
      pendingZoom = null;
      const zoom = shown.n / Math.max(z.rows[1] - z.rows[0], z.cols[1] - z.cols[0]);
      view = clampView({ zoom, x0: z.cols[0], y0: z.rows[0] }, shown.n, layout.maxZoom);
    } else view = clampView(view, shown.n, layout.maxZoom);
    scheduleFrame();
  }

  /** The whole matrix of a transformed state, or null with the notice saying why not. */
  async function denseFor(state, sel, transformed, mine) {
    if (!transformed) return { dense: null, notice: "" };
    let notice = "";
    const dense = await loadDense(source, state, sel, loadController.signal).catch((err) => {
      if (isAbort(err)) throw err;
      notice = err.message || String(err);
      return null;
    });
    if (mine !== generation) return null;
    return { dense, notice: dense || notice ? notice : DENSE_NOTICE };
  }

  async function update(state) {
    const info = source.info || state.meta;
    if (!info) return;
    const sel = selectionOf(state);
    const transformed =
      state.hideSpecial || state.mergeWords
        ? { hideSpecial: Boolean(state.hideSpecial), mergeWords: Boolean(state.mergeWords) }
        : null;
    const options = transformed ? `${transformed.hideSpecial}${transformed.mergeWords}` : "";
    const key = `${info.key}|${sel.layer}|${sel.head}|${options}`;
    if (state.pool && state.pool !== pool && (state.pool === "mean" || state.pool === "max")) {
      pool = state.pool;
      refs.pool.value = pool;
    }
    if (shown && shown.key === key) {
      scheduleFrame();
      return;
    }
    if (loadController) loadController.abort();
    loadController = new AbortController();
    const mine = ++generation;
    tiles.loader.cancelAll();
    tiles.loader.forgetFailures();
    refs.wrap.dataset.state = "loading";
    const started = performance.now();
    const loaded = await denseFor(state, sel, transformed, mine);
    if (!loaded) return;
    const { dense, notice } = loaded;
    showNotice(notice);
    const groups = dense ? dense.groups : null;
    const groupsKey = groups ? groups.map((g) => g.join("+")).join(",") : "all";
    const sameAxis = shown && shown.info === info && shown.groupsKey === groupsKey;
    const axis = sameAxis ? shown.axis : axisOf(info, groups);
    const previous = shown;
    shown = {
      info,
      sel,
      key,
      n: axis.groups.length,
      axis,
      groupsKey,
      dense: dense ? { data: dense.data } : null,
      transformed: dense ? transformed : null,
      colorScale: null,
      started,
    };
    if (!sameAxis) resetAxis(previous);
    showWhat(state, sel, info);
    if (!layout || !sameAxis || panel.clientWidth !== lastWidth) {
      lastWidth = panel.clientWidth;
      relayout();
    } else scheduleFrame();
    if (pendingSelect) {
      const [a, b] = pendingSelect;
      pendingSelect = null;
      if (b <= shown.n) selectRows(a, b, true);
    }
    refreshFocus();
    text.update(true);
  }

  /** Another axis (tokens, words or hidden specials): the whole matrix, no focus from before, no matches. */
  function resetAxis(previous) {
    view = FULL_VIEW;
    if (previous) pinned = null;
    matches = [];
    currentMatch = -1;
    selection = null;
    nav.reset();
  }

  /** The caption, legend hint, label and attributes of what `state` shows. */
  function showWhat(state, sel, info) {
    refs.focusToken.max = String(shown.n - 1);
    const what = caption(sel, info, shown.n, shown.transformed);
    refs.caption.textContent = what;
    const hidden = shown.transformed && shown.transformed.hideSpecial;
    refs.legendHint.textContent = (hidden ? LEGEND_HINT.hidden : LEGEND_HINT.plain) + LEGEND_HINT.pooled;
    refs.wrap.setAttribute("aria-label", `Attention heatmap, ${what}: ${shown.n} query tokens by ${shown.n} key tokens`);
    const d = refs.wrap.dataset;
    d.layer = String(state.layer);
    d.head = String(state.head);
    d.n = String(shown.n);
    d.agg = sel.agg;
    delete d.drawMs;
  }

  function showNotice(message) {
    refs.notice.textContent = message || "";
    refs.notice.hidden = !message;
  }

  // ---- moving the view -----------------------------------------------------------------------------------

  function setView(next) {
    if (!shown || !layout) return;
    const v = clampView(next, shown.n, layout.maxZoom);
    if (sameView(v, view)) return;
    view = v;
    hovered = null;
    tooltip.hide();
    refs.wrap.dataset.state = "loading"; // until the frame of the new view has drawn every visible tile
    scheduleFrame();
  }

  function zoomBy(factor, px, py) {
    if (!shown || !layout) return;
    setView(zoomAbout(view, factor, px, py, layout.grid, shown.n, layout.maxZoom));
  }

  /** Zoom about the grid's centre, or about the focused row or column. */
  function zoomButton(factor) {
    if (!layout) return;
    let px = layout.grid / 2;
    let py = layout.grid / 2;
    if (pinned) {
      const cell = cellSize(view, layout.grid, shown.n);
      const along = clamp((pinned.index + 0.5 - (pinned.axis === "row" ? view.y0 : view.x0)) * cell, 0, layout.grid);
      if (pinned.axis === "row") py = along;
      else px = along;
    }
    zoomBy(factor, px, py);
  }

  /** Zoom so that rows' labels are readable, centred on displayed row `row` (and column `col`). */
  function showCell(row, col = row) {
    if (!shown || !layout) return;
    const zoom = Math.max(view.zoom, Math.min(layout.maxZoom, (READABLE_CELL * shown.n) / layout.grid));
    setView(centerOn(row, col, zoom, shown.n, layout.maxZoom));
  }

  function showRows(a, b) {
    if (!shown || !layout) return;
    setView(fitRange(a, b, shown.n, layout.maxZoom, "row"));
  }

  on(refs.zoomIn, "click", () => zoomButton(ZOOM_STEP));
  on(refs.zoomOut, "click", () => zoomButton(1 / ZOOM_STEP));
  on(refs.zoomReset, "click", () => setView(FULL_VIEW));

  // ---- pointer, wheel, minimap, keys (heatmap_input.js) --------------------------------------------------

  function hover(hit, event) {
    if (!hovered || hovered.row !== hit.row || hovered.col !== hit.col) {
      hovered = { row: hit.row, col: hit.col };
      drawOverlay();
      if (shown.dense && !pinned) refreshFocus();
    }
    const found = tiles.valueAt(hit.row, hit.col);
    tooltip.show(tooltipLines(tooltip.element, shown.axis, hit, found, shown.info), event.clientX, event.clientY);
  }

  function clearHover() {
    const had = hovered;
    hovered = null;
    if (had && shown && layout) drawOverlay();
    tooltip.hide();
  }

  wireInput(refs, panel, on, {
    current: () => ({ shown, layout, view }),
    setView,
    zoomBy,
    zoomButton,
    resetView: () => setView(FULL_VIEW),
    hover,
    clearHover,
    leave: clearHover,
    selectRows,
    selection: () => selection,
    pin: setPinned,
    pinned: () => pinned,
    escape() {
      if (pinned) setPinned(null);
      else if (selection) selectRows(null);
      else return false;
      return true;
    },
    focusFind: () => refs.nav.querySelector("#find-input").focus(),
    labelDoubleClick(hit) {
      if (ctx.marks && ctx.marks.onLabelDoubleClick) ctx.marks.onLabelDoubleClick(shown.axis.groups[hit.index]);
    },
  });
  wireColour();

  const resize = new ResizeObserver(() => {
    if (shown && panel.clientWidth !== lastWidth) {
      lastWidth = panel.clientWidth;
      requestAnimationFrame(relayout);
    }
  });
  resize.observe(panel);
  lifetime.signal.addEventListener("abort", () => resize.disconnect());

  /** Displayed rows holding a position the page asks to outline (ctx.marks.rowMarks: masked tokens, …). */
  function markedRows() {
    const marks = ctx.marks && ctx.marks.rowMarks ? ctx.marks.rowMarks(shown.info) : [];
    if (!marks || !marks.length) return [];
    const positions = new Set(marks.map((m) => m.position));
    const rows = [];
    shown.axis.groups.forEach((group, row) => group.some((p) => positions.has(p)) && rows.push(row));
    return rows;
  }

  // ---- focus: the pinned token's row (what it attends to) or column (what attends to it) ----------------

  function setPinned(next) {
    pinned = next && shown && next.index >= 0 && next.index < shown.n ? next : null;
    refs.focusToken.value = pinned ? String(pinned.index) : "";
    if (pinned) refs.focusAxis.value = pinned.axis;
    refs.wrap.dataset.focus = pinned ? `${pinned.axis}:${pinned.index}` : "";
    if (store) {
      store.set({
        focus: pinned ? pinned.index : undefined,
        focusAxis: pinned && pinned.axis === "col" ? "col" : undefined,
      });
    }
    if (layout && shown) drawOverlay();
    refreshFocus();
    text.update();
  }

  async function refreshFocus() {
    if (!shown) return;
    const target = pinned || (shown.dense && hovered ? { axis: "row", index: hovered.row } : null);
    refs.wrap.dataset.focus = pinned ? `${pinned.axis}:${pinned.index}` : "";
    if (focusRequest) focusRequest.abort();
    if (!target || target.index >= shown.n) {
      showFocusHead(refs, null, shown.axis);
      return;
    }
    showFocusHead(refs, target, shown.axis);
    focusRequest = new AbortController();
    const signal = focusRequest.signal;
    const current = shown;
    let strip;
    try {
      strip = current.dense
        ? denseStrip(current.dense.data, current.n, target)
        : await exactStrip(source, current.sel, target.axis, target.index, current.n, signal);
    } catch (err) {
      if (!isAbort(err)) showNotice(err.message || String(err));
      return;
    }
    if (signal.aborted || current !== shown) return;
    showFocusList(refs, target, current.axis, topOf(strip, Math.min(TOP_KEYS, current.n)), current.info);
  }

  const onFocusPick = () => {
    const raw = refs.focusToken.value.trim();
    const index = Number.parseInt(raw, 10);
    if (raw === "" || !Number.isInteger(index)) setPinned(null);
    else {
      setPinned({ axis: refs.focusAxis.value === "col" ? "col" : "row", index: clamp(index, 0, shown ? shown.n - 1 : 0) });
      if (pinned) showCell(pinned.index);
    }
  };
  on(refs.focusToken, "change", onFocusPick);
  on(refs.focusAxis, "change", onFocusPick);

  // ---- navigation and the text panel -------------------------------------------------------------------

  /** Select query rows [a, b) (null clears); `final` when the drag or the inputs are done. */
  function selectRows(a, b, final = true) {
    selection = a === null || a === undefined ? null : [clamp(a, 0, shown.n - 1), clamp(b, a + 1, shown.n)];
    refs.wrap.dataset.select = selection ? `${selection[0]}:${selection[1]}` : "";
    if (layout) drawOverlay();
    if (final) {
      if (store) store.set({ select: selection ? `${selection[0]}:${selection[1]}` : undefined });
      nav.showSelection(selection);
    }
  }

  const { nav, text } = mountNavigation(refs, source, lifetime.signal, {
    get: () => ({ shown, pinned, selection }),
    setMatches(rows, current) {
      matches = rows;
      currentMatch = current;
      refs.wrap.dataset.matches = String(matches.length);
      refs.wrap.dataset.match = current >= 0 ? String(current) : "";
      if (current >= 0 && matches[current]) showCell(matches[current].rows[0]);
      else if (layout) drawOverlay();
    },
    showCell,
    showRows,
    selectRows,
    setPinned,
  });

  // ---- figure export and the debug handle (heatmap_debug.js) ----------------------------------------------

  const figure = () => figureOf({ shown, layout, view }, tiles.valueAt, refs.caption.textContent);
  const get = () => ({ shown, layout, view });
  const debug = createDebug({ get, wrap: refs.wrap, source, tiles, setView, showCell });

  if (ctx.setFigure) ctx.setFigure(figure);
  if (ctx.expose) ctx.expose(debug);

  return {
    update,
    figure,
    debug,
    unmount() {
      if (ctx.setFigure) ctx.setFigure(null);
      generation++;
      if (loadController) loadController.abort();
      if (focusRequest) focusRequest.abort();
      lifetime.abort();
      tooltip.hide();
      tiles.loader.clear();
    },
  };
}
