// Query–key map (after AttentionViz, Yeh et al. 2023): one head's queries and keys as points of one 2-D picture.
// The server moves both into a shared space that keeps every weight (keys translated onto the queries' centre,
// both scaled to equal mean norms) and projects them on their two principal components, so a query lies near
// the keys it attends to. Queries are filled dots, keys hollow rings; colour by position or by token type.
// Hover a point for its token and, for a query, its strongest keys (drawn as lines); click to focus the token
// in the heatmap.

import { setupCanvas } from "../lib/canvas.js";
import { formatValue, interpolator, makeColorScale } from "../lib/color.js";
import { el, line, option, span } from "../lib/dom.js";
import { colorBarItems } from "../lib/figure.js";
import { cachedLoad } from "../lib/lru.js";
import { drawQueryKeyPoints, nearest, screenPoints } from "../lib/scatter.js";
import { tokenBadge } from "../lib/token_badge.js";
import { tokenFactsLine, tokenLabel } from "../lib/tokens.js";

/** Shared controls this view uses. */
export const controls = ["layer", "head"];

/** What the keys do on this tab besides the shared controls' (the page writes the hint). */
export const keys = [];

const HEIGHT = 560; // CSS px
const MAX_WIDTH = 980;
const RADIUS = 3.2; // CSS px per point
const HIT = 8; // CSS px: how near the pointer must be to a point
const TOP_KEYS = 5;
const CACHE = 16; // maps kept (recent heads)
const TYPE_COLORS = { special: "#94a3b8", word: "#2563eb", piece: "#ea580c", punct: "#16a34a" };
const TYPE_NAMES = { special: "special", word: "word start", piece: "word piece", punct: "punctuation" };

/** Each token's type for colouring: special, word start, continuation piece, or punctuation. */
export function tokenTypes(tokens) {
  return tokens.map((t, i) => {
    if (t.special) return "special";
    if (/^[\p{P}\p{S}\s]+$/u.test(t.display || "")) return "punct";
    const prev = tokens[i - 1];
    return prev && !prev.special && t.word_id !== null && t.word_id === prev.word_id ? "piece" : "word";
  });
}

function toolbar(signal, onChange) {
  const select = el("select", { attrs: { id: "qk-color" } }, option("position", "position"), option("type", "token type"));
  select.addEventListener("change", () => onChange(select.value), { signal });
  const label = el("label", { text: "Colour by ", attrs: { for: "qk-color" } });
  const caption = el("p", { className: "view-caption", attrs: { id: "qk-caption" } });
  const legend = el("div", { className: "qk-legend", attrs: { id: "qk-legend" } });
  return { root: el("div", { className: "view-toolbar" }, caption, el("div", { className: "control" }, label, select)), select, caption, legend };
}

export function mount(panel, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
  const meta = ctx.source.info;
  const types = tokenTypes(meta.tokens);
  const ramp = interpolator("viridis");
  const maps = new Map();
  let colorBy = "position";
  let current = null; // {layer, head, map, screen (queries then keys), toScreen}
  let hover = -1; // index into screen points (< m: a query, else a key)
  let hoverKeys = null; // [{index, weight}] of the hovered query
  let load = null;

  const bar = toolbar(signal, (value) => {
    colorBy = value;
    draw();
  });
  const box = el("div", { className: "qk-map", attrs: { id: "qk-map" } });
  box.dataset.state = "empty";
  const canvas = el("canvas", { className: "qk-canvas", attrs: { id: "qk-canvas", role: "img", "aria-label": "Query–key map" } });
  const notice = el("div", { className: "alert alert-warning view-notice", hidden: true, attrs: { id: "qk-notice", role: "status" } });
  box.append(canvas);
  panel.replaceChildren(bar.root, bar.legend, notice, box);

  function colorOf(position) {
    if (colorBy === "type") return TYPE_COLORS[types[position]];
    return ramp(meta.n > 1 ? position / (meta.n - 1) : 0);
  }

  function drawLegend() {
    const items = [span("● query  ○ key", "qk-shapes")];
    if (colorBy === "type") {
      for (const [type, color] of Object.entries(TYPE_COLORS)) {
        const swatch = span("■", "qk-swatch");
        swatch.style.color = color;
        items.push(swatch, span(` ${TYPE_NAMES[type]}  `));
      }
    } else {
      items.push(span(`  colour: position 0 (dark) → ${meta.n - 1} (yellow)`));
    }
    bar.legend.replaceChildren(...items);
  }

  function draw() {
    drawLegend();
    if (!current) return;
    const width = Math.min(MAX_WIDTH, Math.max(320, panel.clientWidth || MAX_WIDTH));
    const { ctx: c2d } = setupCanvas(canvas, width, HEIGHT);
    const { map } = current;
    const m = map.positions.length;
    const screen = screenPoints(map.queries, map.keys, width, HEIGHT);
    current.screen = screen;
    drawQueryKeyPoints(c2d, screen, m, (i) => colorOf(map.positions[i]), RADIUS, width, HEIGHT);
    if (hover >= 0) drawHover(c2d, screen, m);
    box.dataset.state = "drawn";
    box.dataset.points = String(m);
    box.dataset.layer = String(current.layer);
    box.dataset.head = String(current.head);
  }

  function drawHover(c2d, screen, m) {
    const [hx, hy] = [screen[2 * hover], screen[2 * hover + 1]];
    if (hover < m && hoverKeys) {
      const where = new Map(current.map.positions.map((p, i) => [p, m + i]));
      for (const { index, weight } of hoverKeys) {
        const at = where.get(index);
        if (at === undefined) continue; // a key not in the sample
        c2d.strokeStyle = `rgba(220, 38, 38, ${Math.max(0.25, Math.min(1, weight * 2))})`;
        c2d.lineWidth = 1 + 3 * weight;
        c2d.beginPath();
        c2d.moveTo(hx, hy);
        c2d.lineTo(screen[2 * at], screen[2 * at + 1]);
        c2d.stroke();
      }
    }
    c2d.strokeStyle = "#111";
    c2d.lineWidth = 2;
    c2d.beginPath();
    c2d.arc(hx, hy, RADIUS + 3, 0, 2 * Math.PI);
    c2d.stroke();
  }

  function showFailure(err) {
    if (err && err.name === "AbortError") return;
    notice.textContent = err && err.message ? err.message : String(err);
    notice.hidden = false;
  }

  function pointAt(event) {
    if (!current || !current.screen) return -1;
    const rect = canvas.getBoundingClientRect();
    return nearest(current.screen, event.clientX - rect.left, event.clientY - rect.top, HIT);
  }

  function describe(index) {
    const m = current.map.positions.length;
    const position = current.map.positions[index % m];
    const token = meta.tokens[position];
    const lines = [
      line(
        span(index < m ? "query " : "key ", "tt-dim"),
        span(tokenLabel(token), "tt-token"),
        ...[tokenBadge(token)].filter(Boolean),
        span(` #${position}`, "tt-dim"),
      ),
      line(span(tokenFactsLine(token), "tt-facts")),
    ];
    if (index < m && hoverKeys) {
      lines.push(line(span("strongest keys:", "tt-dim")));
      for (const { index: k, weight } of hoverKeys) {
        const key = meta.tokens[k];
        lines.push(line(span(`${formatValue(weight)} `), span(tokenLabel(key), "tt-token"), ...[tokenBadge(key)].filter(Boolean), span(` #${k}`, "tt-dim")));
      }
    }
    lines.push(line(span("click: focus this token in the heatmap", "tt-dim")));
    return lines;
  }

  let pointer = null; // the last pointer position over the canvas, where the tooltip goes

  function showTooltip() {
    if (hover >= 0 && pointer) ctx.tooltip.show(describe(hover), pointer.x, pointer.y);
    else ctx.tooltip.hide();
  }

  async function onMove(event) {
    pointer = { x: event.clientX, y: event.clientY };
    const index = pointAt(event);
    if (index === hover) return showTooltip();
    hover = index;
    hoverKeys = null;
    canvas.dataset.hover = index < 0 ? "" : String(index);
    canvas.dataset.hoverKeys = "";
    draw();
    showTooltip();
    const m = current ? current.map.positions.length : 0;
    if (index < 0 || index >= m) return;
    const { layer, head } = current;
    const row = current.map.positions[index];
    const keys = await ctx.source.topKeys({ layer, head, rows: [row, row + 1], k: TOP_KEYS }, signal);
    if (hover !== index || !current || current.layer !== layer || current.head !== head) return;
    hoverKeys = keys;
    canvas.dataset.hoverKeys = keys.map((k) => k.index).join(",");
    draw();
    showTooltip();
  }

  function onClick(event) {
    const index = pointAt(event);
    if (index < 0) return;
    const m = current.map.positions.length;
    const position = current.map.positions[index % m];
    ctx.tooltip.hide();
    // the heatmap of this very head over plain tokens, so the focus index is the token's position
    ctx.store.set({
      view: "heatmap",
      layer: current.layer,
      head: current.head,
      meanHeads: false,
      meanLayers: false,
      hideSpecial: false,
      mergeWords: false,
      focus: position,
      focusAxis: index < m ? undefined : "col",
    });
  }

  /** The map as drawn (points, the hovered query's lines), with its legend, as a scene for the Export menu. */
  function figureScene() {
    if (!current || !current.screen || box.dataset.state !== "drawn") return null;
    const { map, screen } = current;
    const m = map.positions.length;
    const width = canvas.clientWidth || MAX_WIDTH;
    const keyItems = [];
    const queryItems = [];
    for (let i = 0; i < m; i++) {
      const color = colorOf(map.positions[i]);
      keyItems.push({ type: "circle", x: screen[2 * (m + i)], y: screen[2 * (m + i) + 1], r: RADIUS, stroke: color, width: 1.2 });
      queryItems.push({ type: "circle", x: screen[2 * i], y: screen[2 * i + 1], r: RADIUS, fill: color });
    }
    const hoverItems = [];
    if (hover >= 0 && hover < m && hoverKeys) {
      const where = new Map(map.positions.map((p, i) => [p, m + i]));
      for (const { index, weight } of hoverKeys) {
        const at = where.get(index);
        if (at === undefined) continue;
        hoverItems.push({
          type: "line", x1: screen[2 * hover], y1: screen[2 * hover + 1], x2: screen[2 * at], y2: screen[2 * at + 1],
          stroke: "#dc2626", width: 1 + 3 * weight, opacity: Math.max(0.25, Math.min(1, weight * 2)),
        });
      }
    }
    const legendY = HEIGHT + 10;
    const legend = [
      { type: "circle", x: 6, y: legendY + 6, r: RADIUS, fill: "#334155" },
      { type: "text", x: 14, y: legendY + 6, text: "query", size: 11 },
      { type: "circle", x: 62, y: legendY + 6, r: RADIUS, stroke: "#334155", width: 1.2 },
      { type: "text", x: 70, y: legendY + 6, text: "key", size: 11 },
    ];
    if (colorBy === "type") {
      Object.entries(TYPE_COLORS).forEach(([type, color], j) => {
        legend.push(
          { type: "rect", x: 120 + j * 110, y: legendY + 1, w: 10, h: 10, fill: color },
          { type: "text", x: 134 + j * 110, y: legendY + 6, text: TYPE_NAMES[type], size: 11 },
        );
      });
    } else {
      const positions = makeColorScale(Math.max(1, meta.n - 1), { interpolator: ramp }); // as colorOf paints them
      legend.push(...colorBarItems(positions, 120, legendY + 1, 200, { title: "token position" }));
    }
    return {
      caption: `Query–key map · layer ${current.layer}, head ${current.head}`,
      name: `layer-${current.layer}-head-${current.head}-qk-map`,
      scene: {
        subtitle: bar.caption.textContent,
        width,
        height: HEIGHT + 40,
        items: [
          { type: "rect", x: 0, y: 0, w: width, h: HEIGHT, fill: "none", stroke: "#e2e8f0" },
          { type: "group", role: "keys", items: keyItems },
          { type: "group", role: "queries", items: queryItems },
          { type: "group", role: "hover", items: hoverItems },
          { type: "group", role: "legend", items: legend },
        ],
      },
    };
  }

  ctx.setFigure?.(figureScene);

  canvas.addEventListener("pointermove", (e) => onMove(e).catch(showFailure), { signal });
  canvas.addEventListener("pointerleave", () => {
    hover = -1;
    pointer = null;
    canvas.dataset.hover = "";
    ctx.tooltip.hide();
    draw();
  }, { signal });
  canvas.addEventListener("click", onClick, { signal });
  window.addEventListener("resize", draw, { signal });

  async function update(state) {
    const layer = state.layer;
    const head = state.head;
    if (current && current.layer === layer && current.head === head) return;
    box.dataset.state = "loading";
    const id = `${layer}:${head}`;
    load = cachedLoad(maps, CACHE, id, () => ctx.source.qkMap({ layer, head }, signal));
    const mine = load;
    let map;
    try {
      map = await mine;
    } catch (err) {
      if (err && err.status === 409) {
        notice.textContent = err.message;
        notice.hidden = false;
        box.dataset.state = "refused";
        box.hidden = true;
        bar.root.hidden = true;
        bar.legend.hidden = true;
        return;
      }
      throw err;
    }
    if (load !== mine) return; // a newer head was asked for meanwhile
    notice.hidden = true;
    box.hidden = false;
    bar.root.hidden = false;
    bar.legend.hidden = false;
    hover = -1;
    current = { layer, head, map, screen: null };
    const [a, b] = map.explained.map((v) => `${Math.round(v * 100)}%`);
    const sampled = map.positions.length < meta.n ? ` (${map.positions.length} of ${meta.n} positions, evenly spaced)` : "";
    bar.caption.textContent =
      `Layer ${layer}, head ${head}: queries and keys on their two principal components (${a} and ${b} of the variance)${sampled}. ` +
      (map.translated ? "Keys are moved onto the queries' centre and both scaled to equal mean length: every weight is unchanged." :
        "Both are scaled to equal mean length (this model caps its logits, so keys are not moved): every weight is unchanged.");
    draw();
    ctx.expose({
      view: "qkmap",
      layer,
      head,
      map,
      get colorBy() {
        return colorBy;
      },
      /** Viewport coordinates of point `i` (queries 0…m−1, then keys), as drawn now. */
      pointBox(i) {
        const rect = canvas.getBoundingClientRect();
        return { x: rect.left + current.screen[2 * i], y: rect.top + current.screen[2 * i + 1] };
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
