// A head's query–key map over a corpus (the qk_map.parquet of a corpus run, read by POST /corpus/qk-map): the
// run's uniform sample of tokens, each as its query (filled dot) and its key (hollow ring) on the head's first
// two principal axes, coloured by the token's position in its text (special tokens grey). Hover a point for
// the token, the text around it and where it is in the corpus. Text only via textContent.

import { setupCanvas } from "../lib/canvas.js";
import { interpolator } from "../lib/color.js";
import { el, line, span } from "../lib/dom.js";
import { drawQueryKeyPoints, nearest, screenPoints } from "../lib/scatter.js";

const HEIGHT = 420; // CSS px
const MAX_WIDTH = 640;
const RADIUS = 3; // CSS px
const HIT = 8; // CSS px
const SPECIAL = "#94a3b8";

/**
 * Mount into `box`; `tooltip` is the page's ({show(lines, x, y), hide()}). Returns {show(data, layer, head),
 * clear(), destroy()}: `data` is the CorpusQKMapResponse.
 */
export function mountCorpusQKMap(box, tooltip) {
  const controller = new AbortController();
  const { signal } = controller;
  const ramp = interpolator("viridis");
  const caption = el("p", { className: "hint corpus-qk-caption" });
  const canvas = el("canvas", { className: "corpus-qk-canvas", attrs: { "aria-label": "Query–key map of the head" } });
  box.replaceChildren(caption, canvas);
  let current = null; // {data, layer, head, screen}
  let hover = -1;

  function colorOf(data, i) {
    if (data.tokens.special[i]) return SPECIAL;
    const top = Math.max(1, ...data.tokens.position);
    return ramp(data.tokens.position[i] / top);
  }

  function draw() {
    if (!current) return;
    const { data, layer, head } = current;
    const queries = data.queries[layer][head];
    const keys = data.keys[layer][head];
    const m = queries.length;
    const width = Math.min(MAX_WIDTH, Math.max(280, box.clientWidth || MAX_WIDTH));
    const { ctx } = setupCanvas(canvas, width, HEIGHT);
    const screen = screenPoints(queries, keys, width, HEIGHT);
    current.screen = screen;
    drawQueryKeyPoints(ctx, screen, m, (i) => colorOf(data, i), RADIUS, width, HEIGHT);
    if (hover >= 0) {
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(screen[2 * hover], screen[2 * hover + 1], RADIUS + 3, 0, 2 * Math.PI);
      ctx.stroke();
    }
    const info = data.heads_info[layer][head];
    const share = info.explained.map((v) => `${(100 * v).toFixed(0)} %`).join(" and ");
    caption.textContent =
      `Layer ${layer}, head ${head}: ${m.toLocaleString()} tokens sampled uniformly over the corpus, each as its ` +
      `query (dot) and its key (ring); the axes explain ${share} of the variance. Colour: position in the text ` +
      `(dark = early), special tokens grey.`;
    box.dataset.state = "drawn";
    box.dataset.points = String(m);
    box.dataset.head = `${layer}:${head}`;
  }

  function pointAt(event) {
    if (!current || !current.screen) return -1;
    const rect = canvas.getBoundingClientRect();
    return nearest(current.screen, event.clientX - rect.left, event.clientY - rect.top, HIT);
  }

  canvas.addEventListener(
    "pointermove",
    (event) => {
      const at = pointAt(event);
      if (at !== hover) {
        hover = at;
        draw();
      }
      if (at < 0) {
        tooltip.hide();
        return;
      }
      const { data, layer, head } = current;
      const m = data.queries[layer][head].length;
      const i = at % m;
      const t = data.tokens;
      const where = t.window[i] ? `text ${t.text_index[i]}, window ${t.window[i]}` : `text ${t.text_index[i]}`;
      box.dataset.hover = String(at);
      tooltip.show(
        [
          line(span(at < m ? "query " : "key ", "pos"), span(t.piece[i], "tok")),
          line(span(`${where} · position ${t.position[i]}`, "pos")),
          line(span(`…${t.before[i]}`), span(` ${t.piece[i]} `, "tok"), span(`${t.after[i]}…`)),
        ],
        event.clientX,
        event.clientY,
      );
    },
    { signal },
  );
  canvas.addEventListener(
    "pointerleave",
    () => {
      hover = -1;
      tooltip.hide();
      draw();
    },
    { signal },
  );

  return {
    show(data, layer, head) {
      current = { data, layer, head, screen: null };
      hover = -1;
      box.hidden = false;
      draw();
    },
    /** Where point `i` (< m: a query, else a key) is drawn, in client px; null when none is drawn. */
    pointAt(i) {
      if (!current || !current.screen || 2 * i + 1 >= current.screen.length) return null;
      const rect = canvas.getBoundingClientRect();
      return { x: rect.left + current.screen[2 * i], y: rect.top + current.screen[2 * i + 1] };
    },
    clear() {
      current = null;
      box.hidden = true;
      box.dataset.state = "empty";
    },
    destroy() {
      controller.abort();
    },
  };
}
