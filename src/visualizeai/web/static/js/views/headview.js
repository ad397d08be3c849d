// Head view (after BertViz): one layer's attention as lines from query tokens (left column) to key tokens
// (right column), one colour per head, line opacity = attention weight. Drawn on one canvas; a top-k per query
// and a threshold keep 512 tokens legible. Hovering (or clicking, to pin) a token shows only its lines: a query's
// lines to every key above the threshold, or a key's lines from every query.
//
// Long inputs (more than DENSE_MAX tokens) are not drawn whole: the view shows a window of WINDOW tokens around
// the focused token (exact weights from ctx.source.tile), and on the key side also the top FAR_K far keys of each
// head (ctx.source.topKeys: the keys the window's queries attend to most outside it), with a stub whose opacity is
// the window's mean weight on them; a focused query draws its exact lines to them (ctx.source.row).
//
// The permalink keeps the selected heads, the threshold, top-k and the pinned token (store keys headviewHeads,
// headviewThreshold, headviewTopk and headviewPin: lib/state.js); the Export menu draws the picture as shown
// (figureScene).

import { FONT_FAMILY, fitText, setupCanvas } from "../lib/canvas.js";
import { line, span } from "../lib/dom.js";
import { cachedLoad } from "../lib/lru.js";
import { describeAxis, identityGroups, tokenFactsLine } from "../lib/tokens.js";

/** Shared controls this view uses: the layer select and the token options. */
export const controls = ["layer", "tokens"];

/** What the keys do on this tab besides the shared controls' (the page writes the hint). */
export const keys = [
  [["↑", "↓"], "move along the tokens (picture focused)"],
  [["←", "→"], "switch between the query and the key column (picture focused)"],
  [["Esc"], "clear the focus"],
];

const MAX_LABEL_WIDTH = 150; // CSS px; longer labels end with an ellipsis
const PAD = 8; // CSS px between a label and where its lines start
const TOP = 6; // CSS px above the first row
const ALPHA_LEVELS = 20; // lines are batched into this many opacity steps per head
const MIN_ALPHA = 0.05; // faintest line still drawn visibly
const MAX_DEVICE_HEIGHT = 16000; // device px: keep the tall canvas within what browsers allocate
const LAYER_CACHE = 4;
const DENSE_MAX = 1024; // tokens: up to here the whole layer is drawn
const WINDOW = 48; // tokens around the focused one, beyond DENSE_MAX
const FAR_K = 4; // far keys per head
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
];
const COLORS = { text: "#1e293b", special: "#94a3b8", focus: "#fde68a", linked: "251, 191, 36" };
const DEFAULT_THRESHOLD = 0.05;
const DEFAULT_TOPK = 3;
const FACTS_PER_TOOLTIP = 6; // a merged word's tooltip names at most this many of its tokens

/** The heads a permalink selects ("0,3,5"; "none": no head) among `heads`; null when it names none validly. */
export function parseHeadList(raw, heads) {
  if (raw === "none") return [];
  if (typeof raw !== "string" || !/^\d+(,\d+)*$/.test(raw)) return null;
  const list = [...new Set(raw.split(",").map(Number))].filter((h) => h < heads).sort((a, b) => a - b);
  return list.length ? list : null;
}

/** The selected heads as a permalink writes them: undefined for every head (the default), "none", or "0,3,5". */
export function formatHeadList(selected, heads) {
  if (selected.length === heads) return undefined;
  return selected.length ? selected.join(",") : "none";
}

/** The colour of head `h` of `heads`: a fixed palette up to 12 heads, evenly spaced hues beyond. */
export function headColor(h, heads) {
  if (heads <= PALETTE.length) return PALETTE[h];
  return `hsl(${Math.round((360 * h) / heads)}, 65%, 42%)`;
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * The lines to draw from `matrix` ([heads, mq, mk]: queries × keys): for each selected head and query, its `topK`
 * strongest keys whose weight is at least `threshold`. Returns parallel typed arrays {head, q, k, w} and their
 * count.
 */
export function selectLines(matrix, heads, mq, mk, selected, topK, threshold) {
  const cap = selected.length * mq * topK;
  const out = { head: new Uint16Array(cap), q: new Uint16Array(cap), k: new Uint16Array(cap), w: new Float32Array(cap), count: 0 };
  const bestK = new Int32Array(topK);
  const bestW = new Float32Array(topK);
  for (const h of selected) {
    const base = h * mq * mk;
    for (let q = 0; q < mq; q++) {
      let filled = 0;
      const row = base + q * mk;
      for (let k = 0; k < mk; k++) {
        const w = matrix[row + k];
        if (!(w >= threshold) || (filled === topK && w <= bestW[topK - 1])) continue;
        let at = filled < topK ? filled++ : topK - 1;
        while (at > 0 && bestW[at - 1] < w) {
          bestW[at] = bestW[at - 1];
          bestK[at] = bestK[at - 1];
          at--;
        }
        bestW[at] = w;
        bestK[at] = k;
      }
      for (let i = 0; i < filled; i++) {
        const n = out.count++;
        out.head[n] = h;
        out.q[n] = q;
        out.k[n] = bestK[i];
        out.w[n] = bestW[i];
      }
    }
  }
  return out;
}

/** The opacity step (of ALPHA_LEVELS) a line of weight `w` is drawn with. */
const bucketOf = (w) => Math.round(Math.min(1, Math.max(MIN_ALPHA, w)) * ALPHA_LEVELS);

/** Every line of one token above `threshold`: side "q" = the query's row, "k" = the key's column. */
function focusLines(matrix, mq, mk, selected, side, index, threshold) {
  const out = { head: [], q: [], k: [], w: [], count: 0 };
  for (const h of selected) {
    const base = h * mq * mk;
    for (let j = 0; j < (side === "q" ? mk : mq); j++) {
      const q = side === "q" ? index : j;
      const k = side === "q" ? j : index;
      const w = matrix[base + q * mk + k];
      if (w >= threshold && w > 0) {
        out.head.push(h);
        out.q.push(q);
        out.k.push(k);
        out.w.push(w);
        out.count++;
      }
    }
  }
  return out;
}

export function mount(panel, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
  panel.classList.add("headview-panel");
  const layerCache = new Map(); // params → Promise<{shape, data, groups}>

  // ---- DOM: a side column of controls, and the scrolling canvas --------------------------------------
  const side = element("aside", "headview-side");
  const headsBox = element("fieldset", "headview-heads");
  const headsLegend = element("legend", "", "Heads");
  const headsList = element("div", "headview-head-list");
  headsList.id = "headview-heads";
  const headsButtons = element("div", "headview-head-buttons");
  const allButton = element("button", "button small secondary", "All");
  allButton.type = "button";
  allButton.id = "headview-all";
  const noneButton = element("button", "button small secondary", "None");
  noneButton.type = "button";
  noneButton.id = "headview-none";
  headsButtons.append(allButton, noneButton);
  headsBox.append(headsLegend, headsList, headsButtons);

  const thresholdControl = element("div", "control headview-range");
  const thresholdLabel = element("label", "", "Hide lines below");
  thresholdLabel.htmlFor = "headview-threshold";
  const threshold = element("input");
  const initial = ctx.store.get();
  const startThreshold = Number.isFinite(initial.headviewThreshold) ? initial.headviewThreshold : DEFAULT_THRESHOLD;
  Object.assign(threshold, { type: "range", id: "headview-threshold", min: "0", max: "0.5", step: "0.01" });
  threshold.value = String(startThreshold);
  const thresholdValue = element("output", "", Number(threshold.value).toFixed(2));
  thresholdValue.htmlFor = "headview-threshold";
  thresholdControl.append(thresholdLabel, threshold, thresholdValue);

  const topkControl = element("div", "control");
  const topkLabel = element("label", "", "Top-k keys per query");
  topkLabel.htmlFor = "headview-topk";
  const topk = element("input");
  Object.assign(topk, { type: "number", id: "headview-topk", min: "1", max: "20", step: "1" });
  topk.value = String(Number.isInteger(initial.headviewTopk) ? initial.headviewTopk : DEFAULT_TOPK);
  topkControl.append(topkLabel, topk);

  const help = element(
    "p",
    "hint",
    "Left: query tokens; right: the key tokens they attend to. Line opacity = attention weight, colour = head. " +
      "Hover a token to see only its lines (every line above the threshold); click to pin it. With the " +
      "picture focused, ↑/↓ move along the tokens, ←/→ switch between queries and keys, Esc clears.",
  );
  const centerControl = element("div", "control");
  centerControl.hidden = true; // long inputs only
  const centerLabel = element("label", "", "Window around token");
  centerLabel.htmlFor = "headview-center";
  const center = element("input");
  Object.assign(center, { type: "number", id: "headview-center", min: "0", step: "1" });
  centerControl.append(centerLabel, center);

  const status = element("p", "hint headview-status");
  status.id = "headview-status";
  side.append(headsBox, thresholdControl, topkControl, centerControl, status, help);

  const main = element("div", "headview-main");
  const caption = element("p", "view-caption");
  caption.id = "headview-caption";
  const columns = element("div", "headview-columns");
  const queriesHeader = element("span", "queries", "Queries");
  const keysHeader = element("span", "keys", "Keys");
  columns.append(queriesHeader, keysHeader);
  const scroller = element("div", "headview-scroll");
  scroller.id = "headview-scroll";
  const canvas = element("canvas");
  canvas.id = "headview";
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.dataset.state = "empty";
  scroller.append(canvas);
  main.append(caption, columns, scroller);
  panel.replaceChildren(main, side);

  // ---- state ----------------------------------------------------------------------------------------------
  // shown: {meta, layer, heads, mq, mk, matrix [heads, mq, mk], q: side, k: side, groups, long, layout}, a side
  // being {labels, special, positions, tokens (token index of each row)}; long: null for a whole layer, else
  // {window: [a, b], far: [token], mean: Float32Array [heads, mk] (the window's mean weight on each key)}
  let shown = null;
  let selected = null; // head indices, in order
  let lines = null; // selectLines() result for the current selection
  let hover = null; // {side: "q"|"k", index}
  let pinned = null;
  let request = 0;
  let lastWidth = 0;

  const focused = () => pinned || hover;

  function params(state) {
    return { layer: state.layer, hideSpecial: Boolean(state.hideSpecial), mergeWords: Boolean(state.mergeWords) };
  }

  function loadLayer(state) {
    const p = params(state);
    const id = `${state.meta.key}|${JSON.stringify(p)}`;
    return cachedLoad(layerCache, LAYER_CACHE, id, () => ctx.source.attention(p));
  }

  function buildHeadList(heads) {
    const items = [];
    for (let h = 0; h < heads; h++) {
      const label = element("label", "headview-head");
      const box = element("input");
      box.type = "checkbox";
      box.value = String(h);
      box.checked = selected.includes(h);
      box.id = `headview-head-${h}`;
      const swatch = element("span", "swatch");
      swatch.style.backgroundColor = headColor(h, heads);
      label.append(box, swatch, element("span", "", String(h)));
      label.title = `Head ${h}`;
      items.push(label);
    }
    headsList.replaceChildren(...items);
  }

  function readSelection() {
    selected = [...headsList.querySelectorAll("input[type=checkbox]")].filter((b) => b.checked).map((b) => Number(b.value));
  }

  function settings() {
    const k = Math.min(20, Math.max(1, Number.parseInt(topk.value, 10) || 1));
    const t = Math.min(1, Math.max(0, Number.parseFloat(threshold.value) || 0));
    return { k, t };
  }

  function computeLayout() {
    const m = Math.max(shown.mq, shown.mk);
    const labels = [...shown.q.labels, ...shown.k.labels];
    const compact = m > 100;
    const rowH = compact ? 14 : 20;
    const font = compact ? 11 : 13;
    const c2d = canvas.getContext("2d");
    c2d.font = `${font}px ${FONT_FAMILY}`;
    let widest = 0;
    for (const label of labels) widest = Math.max(widest, c2d.measureText(label).width);
    const labelW = Math.ceil(Math.min(widest, MAX_LABEL_WIDTH)) + 8;
    const room = scroller.clientWidth || panel.clientWidth - 300;
    const gap = Math.max(160, Math.min(460, room - 2 * labelW - 2 * PAD - 24));
    const width = 2 * labelW + gap + 2 * PAD;
    const height = TOP * 2 + m * rowH;
    return { rowH, font, labelW, gap, width, height, xL: labelW + PAD, xR: labelW + PAD + gap };
  }

  function rowY(layout, i) {
    return TOP + (i + 0.5) * layout.rowH;
  }

  /** Draw labels and lines; returns how many lines were drawn. */
  function draw() {
    const started = performance.now();
    const { layout, mq, mk, matrix, heads } = shown;
    const dpr = Math.min(window.devicePixelRatio || 1, MAX_DEVICE_HEIGHT / layout.height);
    const c2d = setupCanvas(canvas, layout.width, layout.height, dpr).ctx;
    const focus = focused();
    const set = currentSet();

    // token backgrounds: the focused token, and how strongly each token on the other side is linked to it
    if (focus) {
      const linked = new Float32Array(focus.side === "q" ? mk : mq);
      for (let i = 0; i < set.count; i++) {
        const other = focus.side === "q" ? set.k[i] : set.q[i];
        linked[other] = Math.max(linked[other], set.w[i]);
      }
      const xOther = focus.side === "q" ? layout.xR : 0;
      for (let i = 0; i < linked.length; i++) {
        if (linked[i] <= 0) continue;
        c2d.fillStyle = `rgba(${COLORS.linked}, ${Math.min(0.9, 0.15 + linked[i])})`;
        c2d.fillRect(xOther, TOP + i * layout.rowH + 1, layout.labelW + PAD, layout.rowH - 2);
      }
      c2d.fillStyle = COLORS.focus;
      c2d.fillRect(focus.side === "q" ? 0 : layout.xR, TOP + focus.index * layout.rowH, layout.labelW + PAD, layout.rowH);
    }

    // lines, batched per head and opacity step
    const x1 = layout.xL;
    const x2 = layout.xR;
    c2d.lineWidth = focus ? 2 : 1.2;
    const byHead = new Map();
    for (let i = 0; i < set.count; i++) {
      const key = set.head[i] * (ALPHA_LEVELS + 1) + bucketOf(set.w[i]);
      let list = byHead.get(key);
      if (!list) byHead.set(key, (list = []));
      list.push(i);
    }
    for (const [key, list] of byHead) {
      const h = Math.floor(key / (ALPHA_LEVELS + 1));
      c2d.globalAlpha = (key % (ALPHA_LEVELS + 1)) / ALPHA_LEVELS;
      c2d.strokeStyle = headColor(h, heads);
      c2d.beginPath();
      for (const i of list) {
        c2d.moveTo(x1, rowY(layout, set.q[i]));
        c2d.lineTo(x2, rowY(layout, set.k[i]));
      }
      c2d.stroke();
    }
    c2d.globalAlpha = 1;
    if (shown.long && !focus) drawFarStubs(c2d, layout, settings().t);

    // labels: queries right-aligned on the left, keys left-aligned on the right
    c2d.font = `${layout.font}px ${FONT_FAMILY}`;
    c2d.textBaseline = "middle";
    const fit = (side) => side.labels.map((l) => fitText(c2d, l, layout.labelW - 4));
    shown.fitted ??= { q: fit(shown.q), k: fit(shown.k) };
    for (const [name, side, x, align] of [["q", shown.q, layout.labelW, "right"], ["k", shown.k, layout.xR + PAD, "left"]]) {
      c2d.textAlign = align;
      for (let i = 0; i < side.labels.length; i++) {
        c2d.fillStyle = side.special[i] ? COLORS.special : COLORS.text;
        c2d.fillText(shown.fitted[name][i], x, rowY(layout, i));
      }
    }
    if (shown.long) drawFarDivider(c2d, layout);
    canvas.dataset.lines = String(set.count);
    canvas.dataset.focus = focus ? `${focus.side}:${focus.index}` : "";
    canvas.dataset.pinned = pinned ? "true" : "false";
    canvas.dataset.drawMs = String(Math.round((performance.now() - started) * 10) / 10);
    return set.count;
  }

  /** The lines drawn now: the focused token's (every line above the threshold) or the top-k of each query. */
  function currentSet() {
    const focus = focused();
    if (!focus) return lines;
    const { matrix, mq, mk } = shown;
    return focusLines(matrix, mq, mk, selected, focus.side, focus.index, settings().t);
  }

  function recomputeLines() {
    const { k, t } = settings();
    lines = selectLines(shown.matrix, shown.heads, shown.mq, shown.mk, selected, k, t);
    thresholdValue.textContent = t.toFixed(2);
  }

  function describeStatus() {
    const { k, t } = settings();
    const focus = focused();
    const what = focus
      ? `${canvas.dataset.lines} lines of ${focus.side === "q" ? "query" : "key"} ` +
        `“${shown[focus.side].labels[focus.index]}” (${focus.side}=${shown[focus.side].positions[focus.index]}) ` +
        `above ${t.toFixed(2)}${pinned ? ", pinned" : ""}`
      : `${canvas.dataset.lines} lines: the top ${k} keys of each query above ${t.toFixed(2)}, ` +
        `${selected.length} of ${shown.heads} heads`;
    if (shown.long) {
      const [a, b] = shown.long.window;
      status.textContent = `${what}. Tokens ${a}–${b - 1} of ${shown.meta.n}, and ${shown.long.far.length} far keys.`;
      return;
    }
    status.textContent = what;
  }

  function redraw() {
    if (!shown) return;
    const focus = focused();
    if (shown.long && focus && focus.side === "q") {
      ensureFarRow(focus.index).catch((err) => {
        if (!(err && err.name === "AbortError")) status.textContent = err instanceof Error ? err.message : String(err);
      });
    }
    draw();
    describeStatus();
  }

  /** Put the column headers over the columns. */
  function placeHeaders(layout) {
    columns.style.width = `${layout.width}px`;
    queriesHeader.style.width = `${layout.labelW}px`;
    keysHeader.style.width = `${layout.labelW}px`;
  }

  function relayout() {
    if (!shown) return;
    lastWidth = panel.clientWidth;
    shown.layout = computeLayout();
    shown.fitted = null;
    placeHeaders(shown.layout);
    redraw();
  }

  /** A side of the picture: labels, special flags and position names of `groups` (token index lists). */
  function sideOf(meta, groups) {
    return { ...describeAxis(meta, groups), tokens: groups.map((g) => g[0]), groups };
  }

  /** The whole layer as displayed (short inputs): [heads, m, m]. */
  async function denseShown(state) {
    const { meta, layer } = state;
    const result = await loadLayer(state);
    const [heads, m] = result.shape;
    const groups = result.groups.length ? result.groups : identityGroups(m);
    const side = sideOf(meta, groups);
    return { meta, layer, heads, mq: m, mk: m, matrix: result.data, q: side, k: side, groups, long: null };
  }

  /** The window of a long input around `center`: its exact block and each head's strongest far keys. */
  async function windowShown(state, center, signal) {
    const { meta, layer } = state;
    const { n, heads } = meta;
    const a = Math.max(0, Math.min(n - WINDOW, center - Math.floor(WINDOW / 2)));
    const b = Math.min(n, a + WINDOW);
    const w = b - a;
    const perHead = await Promise.all(
      Array.from({ length: heads }, (_, head) =>
        Promise.all([
          ctx.source.tile({ layer, head, rows: [a, b], cols: [a, b], size: w }, signal),
          ctx.source.topKeys({ layer, head, rows: [a, b], k: Math.min(256, w + FAR_K) }, signal),
        ]),
      ),
    );
    const farOf = (keys) => keys.filter((key) => key.index < a || key.index >= b).slice(0, FAR_K);
    const far = [...new Set(perHead.flatMap(([, keys]) => farOf(keys).map((key) => key.index)))].sort((x, y) => x - y);
    const mk = w + far.length;
    const matrix = new Float32Array(heads * w * mk);
    const mean = new Float32Array(heads * mk);
    perHead.forEach(([tile, keys], h) => {
      for (let q = 0; q < w; q++) matrix.set(tile.values.subarray(q * w, (q + 1) * w), (h * w + q) * mk);
      for (const key of keys) {
        const at = key.index >= a && key.index < b ? key.index - a : w + far.indexOf(key.index);
        if (at >= 0 && (at < w || far.includes(key.index))) mean[h * mk + at] = key.weight;
      }
    });
    const windowGroups = Array.from({ length: w }, (_, i) => [a + i]);
    return {
      meta,
      layer,
      heads,
      mq: w,
      mk,
      matrix,
      q: sideOf(meta, windowGroups),
      k: sideOf(meta, [...windowGroups, ...far.map((i) => [i])]),
      groups: windowGroups,
      long: { window: [a, b], far, mean, rows: new Set() },
    };
  }

  /** A focused query of a long input: fetch its exact rows (every head) for its lines to the far keys. */
  async function ensureFarRow(index) {
    const view = shown;
    if (!view || !view.long || view.long.rows.has(index) || !view.long.far.length) return;
    view.long.rows.add(index);
    const token = view.long.window[0] + index;
    const w = view.mq;
    const rows = await Promise.all(
      Array.from({ length: view.heads }, (_, head) => ctx.source.row({ layer: view.layer, head, row: token })),
    );
    if (shown !== view) return;
    rows.forEach((row, h) => {
      view.long.far.forEach((j, f) => {
        view.matrix[(h * w + index) * view.mk + w + f] = row[j];
      });
    });
    redraw();
  }

  /** Stubs into the far keys, one per head, opacity = the window's mean weight on the key. */
  function drawFarStubs(c2d, layout, t) {
    const { heads, mq, mk, long } = shown;
    c2d.lineWidth = 3;
    for (const h of selected) {
      c2d.strokeStyle = headColor(h, heads);
      for (let f = mq; f < mk; f++) {
        const weight = long.mean[h * mk + f];
        if (!(weight >= t) || weight <= 0) continue;
        c2d.globalAlpha = Math.min(1, Math.max(MIN_ALPHA, weight * 4));
        const y = rowY(layout, f);
        c2d.beginPath();
        c2d.moveTo(layout.xR - 48, y);
        c2d.lineTo(layout.xR, y);
        c2d.stroke();
      }
    }
    c2d.globalAlpha = 1;
  }

  /** A dashed line between the window's keys and the far keys, with a caption. */
  function drawFarDivider(c2d, layout) {
    const y = TOP + shown.mq * layout.rowH;
    c2d.strokeStyle = COLORS.special;
    c2d.setLineDash([4, 3]);
    c2d.beginPath();
    c2d.moveTo(layout.xR, y);
    c2d.lineTo(layout.width, y);
    c2d.stroke();
    c2d.setLineDash([]);
    c2d.fillStyle = COLORS.special;
    c2d.font = `11px ${FONT_FAMILY}`;
    c2d.textAlign = "right";
    c2d.fillText("far keys ↓", layout.xR - 6, y + 2);
  }

  let loading = null; // AbortController of the window being fetched

  async function update(state) {
    const { meta, layer } = state;
    if (!meta) return;
    const mine = ++request;
    const started = performance.now();
    canvas.dataset.state = "loading";
    const long = meta.n > DENSE_MAX;
    let next;
    if (long) {
      if (loading) loading.abort();
      loading = new AbortController();
      const center = Number.isInteger(state.focus) ? state.focus : shown && shown.long ? centerOf(shown) : 0;
      next = await windowShown(state, Math.min(meta.n - 1, center), loading.signal);
    } else next = await denseShown(state);
    if (mine !== request) return;
    if (!selected || headsList.children.length !== next.heads) {
      selected = parseHeadList(state.headviewHeads, next.heads) ?? Array.from({ length: next.heads }, (_, h) => h);
      buildHeadList(next.heads);
    }
    const sameAxis =
      shown && shown.meta === meta && shown.mq === next.mq && shown.groups.join(";") === next.groups.join(";");
    if (!sameAxis) {
      hover = null;
      pinned = pinnedFrom(state, next);
    }
    shown = { ...next, layout: null, fitted: null };
    shown.layout = computeLayout();
    placeHeaders(shown.layout);
    lastWidth = panel.clientWidth;
    recomputeLines();
    draw();
    describeStatus();
    const words = state.mergeWords && !long ? "words" : "tokens";
    caption.textContent = long
      ? `Layer ${layer} · tokens ${next.long.window[0]}–${next.long.window[1] - 1} of ${meta.n} and the top ` +
        `${FAR_K} far keys of each head (a window: the whole input has more than ${DENSE_MAX} tokens)`
      : `Layer ${layer} · ${next.mq} ${words}` + (state.hideSpecial ? " · special tokens hidden, rows renormalised" : "");
    canvas.setAttribute(
      "aria-label",
      `Head view of layer ${layer}: lines from ${next.mq} query ${words} to ${next.mk} key ${words}`,
    );
    canvas.dataset.layer = String(layer);
    canvas.dataset.n = String(next.mq);
    canvas.dataset.mode = long ? "window" : "whole";
    canvas.dataset.window = long ? `${next.long.window[0]}:${next.long.window[1]}` : "";
    canvas.dataset.far = long ? next.long.far.join(",") : "";
    canvas.dataset.heads = selected.join(",");
    canvas.dataset.totalMs = String(Math.round((performance.now() - started) * 10) / 10);
    canvas.dataset.state = "ready";
    centerControl.hidden = !long;
    if (long) {
      center.max = String(meta.n - 1);
      center.value = String(centerOf(shown));
    }
    exposeState();
    if (!long && layer + 1 < meta.layers) loadLayer({ ...state, layer: layer + 1 }).catch(() => {}); // ↓ is next
  }

  /** The pinned token the store names ("q:3", "k:3"), on the axes of `view`; else null. */
  function pinnedFrom(state, view) {
    const m = /^([qk]):(\d+)$/.exec(state.headviewPin || "");
    if (!m) return null;
    const sideName = m[1];
    const at = Number(m[2]);
    const index = view.long ? view[sideName].tokens.indexOf(at) : at;
    const count = sideName === "q" ? view.mq : view.mk;
    return index >= 0 && index < count ? { side: sideName, index } : null;
  }

  /** Keep the pinned token in the store (and so in the permalink): a displayed index, a token on long inputs. */
  function storePinned() {
    if (!shown) return;
    const at = pinned && (shown.long ? shown[pinned.side].tokens[pinned.index] : pinned.index);
    ctx.store.set({ headviewPin: pinned ? `${pinned.side}:${at}` : undefined });
  }

  /** Keep the head selection, threshold and top-k in the store (and so in the permalink). */
  function storeSettings() {
    if (!shown || !selected) return;
    const { k, t } = settings();
    ctx.store.set({
      headviewHeads: formatHeadList(selected, shown.heads),
      headviewThreshold: t === DEFAULT_THRESHOLD ? undefined : t,
      headviewTopk: k === DEFAULT_TOPK ? undefined : k,
    });
  }

  /** The token at the middle of the shown window. */
  function centerOf(view) {
    const [a, b] = view.long.window;
    return Math.floor((a + b) / 2);
  }

  /** What the debug hook shows of this view. */
  function exposeState() {
    if (!shown) return;
    const { meta, layer, mq, mk, matrix, groups, q, k, long } = shown;
    ctx.expose({
      view: "headview",
      meta,
      layer,
      n: mq,
      keys: mk,
      heads: selected.slice(),
      matrix,
      groups,
      labels: q.labels,
      keyTokens: k.tokens,
      window: long ? long.window : null,
      far: long ? long.far : null,
      threshold: settings().t,
      topk: settings().k,
      focus: focused(),
      pinned,
      tokenBox,
    });
  }

  // ---- interaction -----------------------------------------------------------------------------------------

  /** Scroll token `i` of column `side` ("q" left, "k" right) into view; its centre in viewport coordinates. */
  function tokenBox(sideName, i) {
    if (!shown) return null;
    const { layout } = shown;
    const y = rowY(layout, i);
    if (y < scroller.scrollTop + layout.rowH || y > scroller.scrollTop + scroller.clientHeight - layout.rowH) {
      scroller.scrollTop = Math.max(0, y - scroller.clientHeight / 2);
    }
    let rect = canvas.getBoundingClientRect();
    const x = sideName === "q" ? layout.labelW / 2 : layout.xR + PAD + layout.labelW / 2;
    if (rect.top + y < layout.rowH || rect.top + y > window.innerHeight - layout.rowH) {
      window.scrollBy(0, rect.top + y - window.innerHeight / 2); // the page, too, keeps the token in sight
      rect = canvas.getBoundingClientRect();
    }
    return { x: rect.left + x, y: rect.top + y };
  }

  function tokenAt(event) {
    if (!shown) return null;
    const rect = canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    const { layout, mq, mk } = shown;
    const index = Math.floor((y - TOP) / layout.rowH);
    if (index < 0) return null;
    if (x >= 0 && x <= layout.xL && index < mq) return { side: "q", index };
    if (x >= layout.xR && x <= layout.width && index < mk) return { side: "k", index };
    return null;
  }

  const same = (a, b) => (a && b ? a.side === b.side && a.index === b.index : a === b);

  function onMove(event) {
    const token = tokenAt(event);
    if (token) {
      const { labels, positions, groups } = shown[token.side];
      const group = groups[token.index];
      const facts = group.slice(0, FACTS_PER_TOOLTIP).map((i) => line(span(tokenFactsLine(shown.meta.tokens[i]), "tt-facts")));
      if (group.length > FACTS_PER_TOOLTIP) facts.push(line(span(`… ${group.length - FACTS_PER_TOOLTIP} more tokens`, "tt-dim")));
      ctx.tooltip.show(
        [
          span(labels[token.index], "tok"),
          element("div", "pos", `${token.side === "q" ? "query q" : "key k"}=${positions[token.index]}`),
          ...facts,
        ],
        event.clientX,
        event.clientY,
      );
    } else ctx.tooltip.hide();
    canvas.classList.toggle("over-token", Boolean(token));
    if (pinned || same(token, hover)) return;
    hover = token;
    redraw();
  }

  function onLeave() {
    ctx.tooltip.hide();
    if (hover && !pinned) {
      hover = null;
      redraw();
    } else hover = null;
  }

  function onClick(event) {
    const token = tokenAt(event);
    pinned = token && !same(token, pinned) ? token : null;
    hover = token;
    storePinned();
    redraw();
    exposeState();
  }

  function onKey(event) {
    if (!shown || event.altKey || event.ctrlKey || event.metaKey) return;
    const current = focused() || { side: "q", index: -1 };
    let next = null;
    const count = current.side === "q" ? shown.mq : shown.mk;
    if (event.key === "ArrowDown") next = { side: current.side, index: Math.min(count - 1, current.index + 1) };
    else if (event.key === "ArrowUp") next = { side: current.side, index: Math.max(0, current.index - 1) };
    else if (event.key === "ArrowLeft") next = { side: "q", index: Math.max(0, Math.min(shown.mq - 1, current.index)) };
    else if (event.key === "ArrowRight") next = { side: "k", index: Math.max(0, Math.min(shown.mk - 1, current.index)) };
    else if (event.key === "Escape") next = null;
    else return;
    event.preventDefault(); // keeps the page's layer keys out while the picture has focus
    pinned = next;
    hover = null;
    if (next) tokenBox(next.side, next.index);
    storePinned();
    redraw();
    exposeState();
  }

  const onHeads = () => {
    readSelection();
    recomputeLines();
    canvas.dataset.heads = selected.join(",");
    storeSettings();
    redraw();
    exposeState();
  };
  const setAll = (on) => () => {
    for (const box of headsList.querySelectorAll("input[type=checkbox]")) box.checked = on;
    onHeads();
  };
  const onAll = setAll(true);
  const onNone = setAll(false);
  const onCenter = () => {
    const value = Number.parseInt(center.value, 10);
    if (!shown || !shown.long || !Number.isInteger(value)) return;
    const focus = Math.max(0, Math.min(shown.meta.n - 1, value));
    ctx.store.set({ focus });
    update({ ...ctx.store.get(), focus }).catch((err) => {
      if (!(err && err.name === "AbortError")) status.textContent = err instanceof Error ? err.message : String(err);
    });
  };
  center.addEventListener("change", onCenter, { signal });
  const onSettings = () => {
    if (!shown) return;
    recomputeLines();
    storeSettings();
    redraw();
    exposeState();
  };
  /** The picture as drawn now (lines, labels, the focused token), as a scene for the Export menu. */
  function figureScene() {
    if (!shown || canvas.dataset.state !== "ready") return null;
    const { layout, heads } = shown;
    const focus = focused();
    const set = currentSet();
    const head = 24; // the column titles above the rows
    const y = (i) => head + rowY(layout, i);
    const marks = [];
    if (focus) {
      const x = focus.side === "q" ? 0 : layout.xR;
      marks.push({ type: "rect", x, y: head + TOP + focus.index * layout.rowH, w: layout.labelW + PAD, h: layout.rowH, fill: COLORS.focus });
    }
    const drawn = [];
    for (let i = 0; i < set.count; i++) {
      drawn.push({
        type: "line", x1: layout.xL, y1: y(set.q[i]), x2: layout.xR, y2: y(set.k[i]),
        stroke: headColor(set.head[i], heads), width: focus ? 2 : 1.2, opacity: bucketOf(set.w[i]) / ALPHA_LEVELS,
      });
    }
    const labels = [
      { type: "text", x: layout.labelW, y: 10, text: "Queries", size: 12, weight: 600, anchor: "end" },
      { type: "text", x: layout.xR + PAD, y: 10, text: "Keys", size: 12, weight: 600 },
    ];
    for (const [name, x, anchor] of [["q", layout.labelW, "end"], ["k", layout.xR + PAD, "start"]]) {
      const sideData = shown[name];
      sideData.labels.forEach((text, i) => {
        labels.push({
          type: "text", x, y: y(i), text, size: layout.font, anchor, maxWidth: layout.labelW - 4,
          fill: sideData.special[i] ? COLORS.special : COLORS.text,
        });
      });
    }
    const stubs = [];
    if (shown.long && !focus) {
      // the far keys' stubs, as drawFarStubs paints them
      const { mq, mk, long } = shown;
      for (const h of selected) {
        for (let f = mq; f < mk; f++) {
          const weight = long.mean[h * mk + f];
          if (!(weight >= settings().t) || weight <= 0) continue;
          stubs.push({
            type: "line", x1: layout.xR - 48, y1: y(f), x2: layout.xR, y2: y(f), stroke: headColor(h, heads), width: 3,
            opacity: Math.min(1, Math.max(MIN_ALPHA, weight * 4)),
          });
        }
      }
      stubs.push({
        type: "line", x1: layout.xR, y1: head + TOP + mq * layout.rowH, x2: layout.width, y2: head + TOP + mq * layout.rowH,
        stroke: COLORS.special, dash: [4, 3],
      });
    }
    const legendY = head + layout.height + 12;
    const legend = selected.map((h, j) => [
      { type: "rect", x: (j % 12) * 64, y: legendY + Math.floor(j / 12) * 18, w: 12, h: 12, fill: headColor(h, heads) },
      { type: "text", x: (j % 12) * 64 + 16, y: legendY + Math.floor(j / 12) * 18 + 6, text: `head ${h}`, size: 11 },
    ]).flat();
    const legendRows = Math.ceil(selected.length / 12);
    const focusName = focus
      ? ` · ${focus.side === "q" ? "query" : "key"} “${shown[focus.side].labels[focus.index]}” (${focus.side}=${shown[focus.side].positions[focus.index]})`
      : "";
    return {
      caption: `Head view · ${caption.textContent}${focusName}`,
      name: `layer-${shown.layer}-head-view`,
      scene: {
        subtitle: `${status.textContent} · line opacity = attention weight, colour = head`,
        width: Math.max(layout.width, Math.min(12, selected.length) * 64),
        height: head + layout.height + 12 + legendRows * 18,
        items: [
          { type: "group", role: "focus", items: marks },
          { type: "group", role: "lines", items: drawn },
          { type: "group", role: "far-keys", items: stubs },
          { type: "group", role: "labels", items: labels },
          { type: "group", role: "legend", items: legend },
        ],
      },
    };
  }
  ctx.setFigure?.(figureScene);

  const resize = new ResizeObserver(() => {
    if (shown && panel.clientWidth !== lastWidth) requestAnimationFrame(relayout);
  });
  resize.observe(panel);
  headsList.addEventListener("change", onHeads, { signal });
  allButton.addEventListener("click", onAll, { signal });
  noneButton.addEventListener("click", onNone, { signal });
  threshold.addEventListener("input", onSettings, { signal });
  topk.addEventListener("change", onSettings, { signal });
  canvas.addEventListener("pointermove", onMove, { signal });
  canvas.addEventListener("pointerleave", onLeave, { signal });
  canvas.addEventListener("click", onClick, { signal });
  canvas.addEventListener("keydown", onKey, { signal });

  return {
    update,
    unmount() {
      request++;
      controller.abort();
      if (loading) loading.abort();
      resize.disconnect();
      ctx.tooltip.hide();
    },
  };
}
