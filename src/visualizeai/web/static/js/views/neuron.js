// Neuron view (after BertViz): why one query token weighs its keys the way it does. For a chosen query and
// head it shows the query vector, each key vector, their elementwise product, the product's sum times the
// scale (the logit; soft-capped where the model caps it) and the exact weight. The keys shown are a window
// around the query and its strongest keys; the weight is the softmax over every key the query sees.

import { FONT_FAMILY, fitText, setupCanvas } from "../lib/canvas.js";
import { formatValue, interpolator } from "../lib/color.js";
import { el, isTyping, line, span } from "../lib/dom.js";
import { cachedLoad } from "../lib/lru.js";
import { tokenBadge } from "../lib/token_badge.js";
import { tokenFactsLine, tokenLabel } from "../lib/tokens.js";

/** Shared controls this view uses. */
export const controls = ["layer", "head"];

/** What the keys do on this tab besides the shared controls' (the page writes the hint). */
export const keys = [[["↑", "↓"], "previous/next query token (picture focused)"]];

const ROW = 18; // CSS px per key row
const LABEL = 130; // CSS px for the key labels
const GAP = 14; // CSS px between blocks
const NUMBER = 70; // CSS px for the logit column
const BAR = 150; // CSS px for the weight bar
const MAX_CELL = 12;
const CACHE = 32;

/** The query shown first: the focused token, else the last token of a causal model or the first word. */
export function defaultQuery(meta, focus) {
  if (Number.isInteger(focus) && focus >= 0 && focus < meta.n) return focus;
  if (meta.model && meta.model.kind === "causal-lm") return meta.n - 1;
  const first = meta.tokens.findIndex((t) => !t.special);
  return first >= 0 ? first : 0;
}

/** Largest |v| over the query, key and product values, so one diverging colour bar serves the picture. */
export function valueBound(data) {
  let bound = 0;
  const see = (v) => {
    const a = Math.abs(v);
    if (a > bound) bound = a;
  };
  data.query.forEach(see);
  for (const k of data.keys) {
    k.vector.forEach(see);
    k.products.forEach(see);
  }
  return bound > 0 ? bound : 1;
}

export function mount(panel, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
  const meta = ctx.source.info;
  const rdbu = interpolator("rdbu");
  const cache = new Map();
  let query = defaultQuery(meta, ctx.store.get().focus);
  let current = null; // {layer, head, query, data, layout}
  let load = null;

  const input = el("input", { attrs: { id: "neuron-query", type: "number", min: 0, max: meta.n - 1, step: 1 } });
  input.value = String(query);
  const prev = el("button", { text: "◀", title: "previous query token", attrs: { type: "button", "aria-label": "Previous query" } });
  const next = el("button", { text: "▶", title: "next query token", attrs: { type: "button", "aria-label": "Next query" } });
  const tokenName = span("", "neuron-token");
  const caption = el("p", { className: "view-caption", attrs: { id: "neuron-caption" } });
  const notice = el("div", { className: "alert alert-warning view-notice", hidden: true, attrs: { id: "neuron-notice", role: "status" } });
  const canvas = el("canvas", {
    className: "neuron-canvas",
    attrs: { id: "neuron-canvas", role: "img", tabindex: 0, "aria-label": "Neuron view: ↑/↓ move the query token" },
  });
  const box = el("div", { className: "neuron", attrs: { id: "neuron" } }, canvas);
  box.dataset.state = "empty";
  const bar = el(
    "div",
    { className: "view-toolbar" },
    el("div", { className: "control" }, el("label", { text: "Query token ", attrs: { for: "neuron-query" } }), prev, input, next, tokenName),
  );
  panel.replaceChildren(bar, caption, notice, box);

  function color(v, bound) {
    return rdbu(0.5 - (0.5 * v) / bound); // red below 0, blue above
  }

  function setQuery(q) {
    const clamped = Math.max(0, Math.min(meta.n - 1, q));
    if (!Number.isInteger(clamped)) return;
    query = clamped;
    input.value = String(query);
    ctx.store.set({ focus: query, focusAxis: undefined }); // the permalink and the heatmap keep the query
    update(ctx.store.get()).catch(showFailure);
  }

  function showFailure(err) {
    if (err && err.name === "AbortError") return;
    notice.textContent = err && err.message ? err.message : String(err);
    notice.hidden = false;
    box.dataset.state = "refused";
    box.hidden = true;
    if (err && err.status === 409) bar.hidden = true; // no query of this analysis can be explained
  }

  function draw() {
    if (!current) return;
    const { data } = current;
    const d = data.query.length;
    const width = Math.max(480, Math.min(1400, panel.clientWidth || 1000));
    const free = width - LABEL - NUMBER - BAR - 4 * GAP - 8; // 8: the right margin after the weights
    const cell = Math.max(1, Math.min(MAX_CELL, Math.floor(free / (2 * d))));
    const block = cell * d;
    const x = { k: LABEL + GAP, p: LABEL + 2 * GAP + block, logit: LABEL + 3 * GAP + 2 * block, w: LABEL + 4 * GAP + 2 * block + NUMBER };
    const header = 2 * ROW + 8;
    const height = header + data.keys.length * ROW + 8;
    const { ctx: c } = setupCanvas(canvas, Math.max(width, x.w + BAR + 8), height);
    const bound = valueBound(data);
    c.font = `12px ${FONT_FAMILY}`;
    c.textBaseline = "middle";
    c.fillStyle = "#334155";
    c.fillText("key", 4, ROW / 2);
    c.fillText("k (key vector)", x.k, ROW / 2);
    c.fillText("q ⊙ k", x.p, ROW / 2);
    c.fillText("logit", x.logit, ROW / 2);
    c.fillText("weight", x.w, ROW / 2);
    // the query vector, above both vector blocks
    c.fillText(`q: ${fitText(c, tokenLabel(meta.tokens[current.query]), LABEL - 30)}`, 4, ROW + ROW / 2);
    for (const left of [x.k, x.p]) {
      for (let j = 0; j < d; j++) {
        c.fillStyle = color(data.query[j], bound);
        c.fillRect(left + j * cell, ROW + 2, cell, ROW - 4);
      }
    }
    const top = Math.max(...data.keys.map((k) => k.weight), 1e-9);
    data.keys.forEach((k, r) => {
      const y = header + r * ROW;
      const token = meta.tokens[k.index];
      if (k.index === current.query) {
        c.fillStyle = "#fef3c7";
        c.fillRect(0, y, LABEL, ROW);
      }
      c.fillStyle = k.visible ? "#1e293b" : "#94a3b8";
      c.fillText(fitText(c, `${k.index} ${tokenLabel(token)}`, LABEL - 6), 4, y + ROW / 2);
      for (let j = 0; j < d; j++) {
        c.fillStyle = color(k.vector[j], bound);
        c.fillRect(x.k + j * cell, y + 2, cell, ROW - 4);
        c.fillStyle = k.visible ? color(k.products[j], bound) : "#e2e8f0";
        c.fillRect(x.p + j * cell, y + 2, cell, ROW - 4);
      }
      c.fillStyle = "#1e293b";
      c.fillText(k.visible ? k.logit.toFixed(2) : "masked", x.logit, y + ROW / 2);
      c.fillStyle = "#2563eb";
      c.fillRect(x.w, y + 3, (BAR - 50) * (k.weight / top), ROW - 6);
      c.fillStyle = "#1e293b";
      c.fillText(formatValue(k.weight), x.w + BAR - 46, y + ROW / 2);
    });
    current.layout = { cell, d, x, header };
    box.dataset.state = "drawn";
    box.dataset.query = String(current.query);
    box.dataset.keys = String(data.keys.length);
  }

  /** The picture as drawn, as a scene for the Export menu: the same columns, one rect per vector component. */
  function figureScene() {
    if (!current || !current.layout || box.dataset.state !== "drawn") return null;
    const { data } = current;
    const { cell, d, x, header } = current.layout;
    const bound = valueBound(data);
    const text = (tx, ty, t, extra = {}) => ({ type: "text", x: tx, y: ty, text: t, size: 12, fill: "#334155", ...extra });
    const heads = [
      text(4, ROW / 2, "key"), text(x.k, ROW / 2, "k (key vector)"), text(x.p, ROW / 2, "q ⊙ k"),
      text(x.logit, ROW / 2, "logit"), text(x.w, ROW / 2, "weight"),
      text(4, ROW + ROW / 2, `q: ${tokenLabel(meta.tokens[current.query])}`, { maxWidth: LABEL - 8 }),
    ];
    const vectors = [];
    for (const left of [x.k, x.p]) {
      for (let j = 0; j < d; j++) vectors.push({ type: "rect", x: left + j * cell, y: ROW + 2, w: cell, h: ROW - 4, fill: color(data.query[j], bound) });
    }
    const top = Math.max(...data.keys.map((k) => k.weight), 1e-9);
    const rows = [];
    data.keys.forEach((k, r) => {
      const y = header + r * ROW;
      if (k.index === current.query) rows.push({ type: "rect", x: 0, y, w: LABEL, h: ROW, fill: "#fef3c7" });
      rows.push(text(4, y + ROW / 2, `${k.index} ${tokenLabel(meta.tokens[k.index])}`, { fill: k.visible ? "#1e293b" : "#94a3b8", maxWidth: LABEL - 6 }));
      for (let j = 0; j < d; j++) {
        vectors.push(
          { type: "rect", x: x.k + j * cell, y: y + 2, w: cell, h: ROW - 4, fill: color(k.vector[j], bound) },
          { type: "rect", x: x.p + j * cell, y: y + 2, w: cell, h: ROW - 4, fill: k.visible ? color(k.products[j], bound) : "#e2e8f0" },
        );
      }
      rows.push(
        text(x.logit, y + ROW / 2, k.visible ? k.logit.toFixed(2) : "masked", { fill: "#1e293b" }),
        { type: "rect", x: x.w, y: y + 3, w: (BAR - 50) * (k.weight / top), h: ROW - 6, fill: "#2563eb" },
        text(x.w + BAR - 46, y + ROW / 2, formatValue(k.weight), { fill: "#1e293b" }),
      );
    });
    return {
      caption: `Neuron view · layer ${current.layer}, head ${current.head}, query ${current.query} “${tokenLabel(meta.tokens[current.query])}”`,
      name: `layer-${current.layer}-head-${current.head}-neuron-${current.query}`,
      scene: {
        subtitle: caption.textContent.replace(/ Click a key.*$/, ""), // what the page says, less its controls
        width: x.w + BAR + 8,
        height: header + data.keys.length * ROW + 8,
        items: [
          { type: "group", role: "labels", items: heads },
          { type: "group", role: "vectors", items: vectors },
          { type: "group", role: "keys", items: rows },
        ],
      },
    };
  }
  ctx.setFigure?.(figureScene);

  function cellAt(event) {
    if (!current || !current.layout) return null;
    const rect = canvas.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    const { cell, d, x, header } = current.layout;
    const r = Math.floor((py - header) / ROW);
    const key = current.data.keys[r];
    if (!key) return null;
    for (const [block, left] of [["k", x.k], ["p", x.p]]) {
      const j = Math.floor((px - left) / cell);
      if (j >= 0 && j < d) return { key, j, block };
    }
    if (px < LABEL) return { key, j: -1, block: "label" };
    return null;
  }

  function onMove(event) {
    const hit = cellAt(event);
    if (!hit) return ctx.tooltip.hide();
    const { key, j } = hit;
    const q = current.data.query;
    const token = meta.tokens[key.index];
    const lines = [
      line(span("key "), span(tokenLabel(token), "tt-token"), ...[tokenBadge(token)].filter(Boolean), span(` #${key.index}`, "tt-dim")),
      line(span(tokenFactsLine(token), "tt-facts")),
    ];
    if (j >= 0) {
      lines.push(line(span(`dimension ${j}: q ${formatValue(q[j])} × k ${formatValue(key.vector[j])} = ${formatValue(key.products[j])}`)));
    }
    lines.push(
      line(span(key.visible ? `logit ${formatValue(key.logit)} (Σ q⊙k × ${formatValue(current.data.scaling)})` : "masked: the query does not see this key")),
      line(span(`weight ${formatValue(key.weight)}`)),
    );
    ctx.tooltip.show(lines, event.clientX, event.clientY);
  }

  canvas.addEventListener("pointermove", onMove, { signal });
  canvas.addEventListener("pointerleave", () => ctx.tooltip.hide(), { signal });
  canvas.addEventListener("click", (event) => {
    const hit = cellAt(event);
    if (hit) setQuery(hit.key.index); // follow the key: its own query row
  }, { signal });
  input.addEventListener("change", () => setQuery(Number.parseInt(input.value, 10)), { signal });
  prev.addEventListener("click", () => setQuery(query - 1), { signal });
  next.addEventListener("click", () => setQuery(query + 1), { signal });
  canvas.addEventListener("keydown", (event) => {
    if (isTyping(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault(); // keeps the page's layer keys out while the picture has focus
      setQuery(query + (event.key === "ArrowDown" ? 1 : -1));
    }
  }, { signal });
  window.addEventListener("resize", draw, { signal });

  async function update(state) {
    const { layer, head } = state;
    if (current && current.layer === layer && current.head === head && current.query === query) return;
    box.dataset.state = "loading";
    const q = query;
    load = cachedLoad(cache, CACHE, `${layer}:${head}:${q}`, () => ctx.source.neuron({ layer, head, query: q }, signal));
    const mine = load;
    let data;
    try {
      data = await mine;
    } catch (err) {
      if (err && err.status === 409) return showFailure(err);
      throw err;
    }
    if (load !== mine) return;
    notice.hidden = true;
    box.hidden = false;
    bar.hidden = false;
    current = { layer, head, query: q, data, layout: null };
    tokenName.replaceChildren(
      ` ${tokenLabel(meta.tokens[q])} `,
      ...[tokenBadge(meta.tokens[q])].filter(Boolean),
      span(` ${tokenFactsLine(meta.tokens[q])}`, "neuron-facts"),
    );
    const capped = data.softcap ? `, soft-capped at ${data.softcap}` : "";
    caption.textContent =
      `Layer ${layer}, head ${head}, query ${q}: each key's logit is the sum of q ⊙ k times ${formatValue(data.scaling)}${capped}; ` +
      `the weight is the softmax over all ${meta.n} keys the query may see, so it is exact even for keys not listed. ` +
      "Shown: a window around the query and its strongest keys; blue cells are positive, red negative (one scale for q, k " +
      "and q ⊙ k). Click a key to make it the query; with the picture focused, ↑/↓ move the query.";
    draw();
    ctx.expose({
      view: "neuron",
      layer,
      head,
      query: q,
      keys: data.keys.map((k) => k.index),
      data,
      /** Viewport coordinates of the centre of key row `r`'s cell `j` in block "k" or "p" (or its label). */
      cellBox(r, j, block = "p") {
        const { cell, x, header } = current.layout;
        const rect = canvas.getBoundingClientRect();
        const left = block === "label" ? 4 : block === "k" ? x.k + j * cell : x.p + j * cell;
        return { x: rect.left + left + cell / 2, y: rect.top + header + r * ROW + ROW / 2 };
      },
    });
  }

  return {
    update,
    unmount() {
      controller.abort();
      ctx.tooltip.hide();
    },
  };
}
