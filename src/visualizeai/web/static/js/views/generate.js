// Generate view (causal LMs): continue the analysed text token by token, streamed from the server, and scrub
// through the steps. For the selected step, a bar strip on canvas shows the attention of the query that produced
// the token (the last token of the context) over every earlier position, for the chosen layer and head. A long
// prompt has more positions than the strip has pixels: each pixel column then shows the largest weight of the
// positions it covers, so a single strong key stays visible.

import { FONT_FAMILY as FONT, fitText as fit, setupCanvas } from "../lib/canvas.js";
import { interpolator, numberFormat } from "../lib/color.js";
import { span } from "../lib/dom.js";
import { float16ToFloat32 } from "../lib/float16.js";

/** Which shared controls this view uses (the page hides the others). */
export const controls = ["layer", "head"];

const STRIP_HEIGHT = 170; // CSS px of the bar area
const MARGIN = { left: 46, right: 10, top: 12 };
const MAX_LABEL = 90; // CSS px of a rotated token label
const TOP_KEYS = 5;
const FINISH_WORDS = {
  length: "reached the maximum number of new tokens",
  eos: "the model ended the text",
  context: "reached the model's maximum length",
};
const COLORS = {
  text: "#1e293b",
  muted: "#64748b",
  generated: "#6d28d9",
  grid: "rgba(15, 23, 42, 0.08)",
  axis: "rgba(15, 23, 42, 0.35)",
  band: "rgba(124, 58, 237, 0.07)",
  query: "#ea580c",
};

// The last run survives switching to another view and back (views are unmounted when hidden): it is kept in
// ctx.memo, the page's per-analysis memory for views.
const RUN_MEMO = "generate:run";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function label(text, forId) {
  return el("label", { for: forId }, text);
}

/** Labels of positions 0..t-1: prompt tokens, then the tokens generated before step `step`. */
function positionLabels(run, t) {
  const labels = run.start.prompt_tokens.map((tok) => tok.display);
  for (let s = 0; labels.length < t; s++) labels.push(run.steps[s].display);
  return labels;
}

function buildDom(panel) {
  const max = el("input", { id: "gen-max", type: "number", min: "1", max: "512", value: "20", required: "" });
  const greedy = el("input", { id: "gen-greedy", type: "radio", name: "gen-mode", value: "greedy" });
  greedy.checked = true;
  const sample = el("input", { id: "gen-sample", type: "radio", name: "gen-mode", value: "sample" });
  const seed = el("input", { id: "gen-seed", type: "number", min: "0", max: "4294967295", value: "0" });
  seed.disabled = true;
  const run = el("button", { type: "submit", className: "button primary", id: "gen-run" }, "Generate");
  const stop = el("button", { type: "button", className: "button secondary", id: "gen-stop" }, "Stop");
  stop.hidden = true;
  const form = el(
    "form",
    { className: "gen-form", id: "gen-form" },
    el("div", { className: "control" }, label("Max new tokens", "gen-max"), max),
    el(
      "fieldset",
      { className: "control gen-mode" },
      el("legend", {}, "Decoding"),
      el("span", { className: "gen-radio" }, greedy, label("Greedy", "gen-greedy")),
      el("span", { className: "gen-radio" }, sample, label("Sampled", "gen-sample")),
    ),
    el("div", { className: "control" }, label("Seed", "gen-seed"), seed),
    el("div", { className: "gen-actions" }, run, stop),
  );
  const status = el("p", { className: "gen-status hint", id: "gen-status", role: "status", "aria-live": "polite" });
  const output = el("p", { className: "gen-output", id: "gen-output", "aria-label": "Prompt and generated text" });
  const reanalyze = el("button", { type: "button", className: "button small secondary gen-reanalyze", id: "gen-reanalyze" }, "Analyze the whole text");
  reanalyze.hidden = true;
  const step = el("input", { id: "gen-step", type: "range", min: "0", max: "0", value: "0", step: "1" });
  step.disabled = true;
  const stepText = el("output", { id: "gen-step-text", for: "gen-step", className: "gen-step-text" }, "—");
  const canvas = el("canvas", { id: "gen-strip", role: "img", "aria-label": "Attention of the selected step" });
  canvas.dataset.state = "empty";
  const top = el("ol", { className: "focus-list gen-top", id: "gen-top" });
  const root = el(
    "div",
    { className: "gen", id: "gen" },
    el("p", { className: "hint gen-intro" }, "Continue the analysed text with this model, one token at a time."),
    form,
    status,
    el("div", { className: "gen-text" }, output, reanalyze),
    el(
      "div",
      { className: "gen-timeline", id: "gen-timeline" },
      el("div", { className: "control gen-scrubber" }, label("Step", "gen-step"), step, stepText),
      el(
        "div",
        { className: "gen-strip-row" },
        el(
          "div",
          { className: "gen-strip-wrap", id: "gen-strip-wrap" },
          canvas,
          el(
            "p",
            { className: "hint gen-legend" },
            el("span", { className: "swatch prompt" }),
            "prompt",
            el("span", { className: "swatch generated" }),
            "generated",
            el("span", { className: "swatch query" }),
            "query: the newest token, whose attention chose this step's token",
          ),
        ),
        el("aside", { className: "focus gen-focus" }, el("h3", { className: "focus-title" }, "Strongest keys"), top),
      ),
    ),
  );
  root.dataset.state = "idle";
  panel.replaceChildren(root);
  return { root, form, max, greedy, sample, seed, run, stop, status, output, reanalyze, step, stepText, canvas, top };
}

/**
 * Mount the view into `panel`. `ctx` is {store, tooltip, …}. Returns {update(state) → Promise, unmount()}.
 */
export function mount(panel, ctx) {
  const mounted = new AbortController();
  const { signal } = mounted;
  const { expose } = ctx; // drawStrip's `ctx` is its canvas context
  const ui = buildDom(panel);
  let meta = null;
  let layer = 0;
  let head = 0;
  let run = null; // {key, start, steps: [token events], done, error}
  let selected = 0;
  let follow = true; // the scrubber follows the newest step until the person moves it
  let controller = null;
  let bars = null; // {layout, values, labels} of the drawn strip, for hover

  const setState = (state) => {
    ui.root.dataset.state = state;
  };

  const onMode = () => {
    ui.seed.disabled = !ui.sample.checked;
  };
  ui.greedy.addEventListener("change", onMode, { signal });
  ui.sample.addEventListener("change", onMode, { signal });

  function runKey() {
    return meta ? `${meta.model.id}\n${meta.text}` : "";
  }

  async function start(event) {
    event.preventDefault();
    if (!meta || controller) return;
    const maxNew = Number.parseInt(ui.max.value, 10);
    if (!Number.isInteger(maxNew) || maxNew < 1 || maxNew > 512) {
      ui.status.textContent = "Max new tokens must be a whole number from 1 to 512.";
      return;
    }
    const mode = ui.sample.checked ? "sample" : "greedy";
    const seed = Number.parseInt(ui.seed.value, 10) || 0;
    run = { key: runKey(), start: null, steps: [], done: null, error: null, mode, seed };
    ctx.memo.set(RUN_MEMO, run);
    selected = 0;
    follow = true;
    controller = new AbortController();
    ui.run.disabled = true;
    ui.stop.hidden = false;
    ui.reanalyze.hidden = true;
    setState("streaming");
    ui.status.textContent = "Starting…";
    renderOutput();
    drawStrip();
    const startedAt = performance.now();
    try {
      await ctx.source.generate(
        { model: meta.model.id, text: meta.text, max_new_tokens: maxNew, mode, seed },
        {
          signal: controller.signal,
          onEvent: (name, data) => {
            if (run !== ctx.memo.get(RUN_MEMO)) return;
            if (name === "start") run.start = data;
            else if (name === "token") addStep(data, maxNew);
            else if (name === "done") run.done = data;
          },
        },
      );
      const words = FINISH_WORDS[run.done.finish_reason] || run.done.finish_reason;
      const seconds = ((performance.now() - startedAt) / 1000).toFixed(2);
      ui.status.textContent = `Generated ${run.steps.length} tokens in ${seconds} s: ${words}.`;
      setState("done");
    } catch (err) {
      if (err && err.name === "AbortError") {
        ui.status.textContent = `Stopped after ${run.steps.length} tokens.`;
        setState("done");
      } else {
        run.error = err instanceof Error ? err.message : String(err);
        ui.status.textContent = run.error;
        setState("error");
      }
    } finally {
      controller = null;
      ui.run.disabled = false;
      ui.stop.hidden = true;
      showReanalyze();
    }
  }

  function addStep(data, maxNew) {
    run.steps.push(data);
    const i = run.steps.length - 1;
    ui.status.textContent = `Generating… ${run.steps.length} of at most ${maxNew} tokens`;
    appendToken(i);
    ui.step.max = String(i);
    ui.step.disabled = false;
    if (follow) selectStep(i);
  }

  function showReanalyze() {
    if (!run || !run.steps.length) return;
    ui.reanalyze.hidden = false;
  }

  function tokenSpan(i) {
    const step = run.steps[i];
    const node = el("button", { type: "button", className: "gen-token" }, step.text || step.display);
    node.dataset.step = String(i);
    node.title = `step ${i}: ${JSON.stringify(step.token)} (id ${step.token_id})`;
    node.addEventListener(
      "click",
      () => {
        follow = i === run.steps.length - 1;
        selectStep(i);
      },
      { signal },
    );
    return node;
  }

  function appendToken(i) {
    ui.output.append(tokenSpan(i));
  }

  function renderOutput() {
    const children = [el("span", { className: "gen-prompt" }, meta ? meta.text : "")];
    if (run) for (let i = 0; i < run.steps.length; i++) children.push(tokenSpan(i));
    ui.output.replaceChildren(...children);
    markSelected();
  }

  function markSelected() {
    for (const node of ui.output.querySelectorAll(".gen-token")) {
      const on = Number(node.dataset.step) === selected;
      node.classList.toggle("selected", on);
      node.setAttribute("aria-pressed", String(on));
    }
  }

  function selectStep(i) {
    selected = i;
    ui.step.value = String(i);
    markSelected();
    drawStrip();
  }

  const onStep = () => {
    if (!run || !run.steps.length) return;
    const i = Number(ui.step.value);
    follow = i === run.steps.length - 1;
    selectStep(i);
  };
  ui.step.addEventListener("input", onStep, { signal });
  ui.form.addEventListener("submit", start, { signal });
  ui.stop.addEventListener("click", () => controller && controller.abort(), { signal });
  const onReanalyze = () => {
    if (run && run.steps.length) ctx.openText(meta.text + run.steps.map((s) => s.text).join(""), { view: "heatmap" });
  };
  ui.reanalyze.addEventListener("click", onReanalyze, { signal });

  /** The selected step's attention row for the current layer and head: Float32Array(t). */
  function rowOf(step) {
    const [layers, heads, t] = step.attention.shape;
    const l = Math.min(layer, layers - 1);
    const h = Math.min(head, heads - 1);
    const offset = (l * heads + h) * t * 2;
    return float16ToFloat32(step.attention.bytes.subarray(offset, offset + t * 2));
  }

  function drawStrip() {
    const canvas = ui.canvas;
    const step = run && run.steps[selected];
    if (!step || !run.start) {
      const { ctx } = setupCanvas(canvas, Math.max(200, ui.canvas.parentElement.clientWidth), 60);
      ctx.font = `13px ${FONT}`;
      ctx.fillStyle = COLORS.muted;
      ctx.textBaseline = "middle";
      ctx.fillText("Generate to see, for each new token, what the model attended to.", 8, 30);
      canvas.dataset.state = "empty";
      ui.stepText.textContent = "—";
      ui.top.replaceChildren();
      bars = null;
      return;
    }
    const values = rowOf(step);
    const t = values.length;
    const labels = positionLabels(run, t);
    const promptN = run.start.prompt_tokens.length;
    const width = Math.max(320, ui.canvas.parentElement.clientWidth);
    const plotW = width - MARGIN.left - MARGIN.right;
    const w = plotW / t;
    const font = Math.max(9, Math.min(12, Math.floor(w * 0.8)));
    const every = Math.max(1, Math.ceil((font + 3) / w));
    const { ctx } = setupCanvas(canvas, width, 1); // measure before sizing
    ctx.font = `${font}px ${FONT}`;
    let widest = 0;
    for (let i = 0; i < t; i += every) widest = Math.max(widest, ctx.measureText(labels[i]).width);
    const labelRoom = Math.min(MAX_LABEL, widest) + 12;
    const height = MARGIN.top + STRIP_HEIGHT + labelRoom;
    const c = setupCanvas(canvas, width, height).ctx;
    let max = 0;
    for (const v of values) max = Math.max(max, v);
    const top = max > 0 ? max : 1;
    const y0 = MARGIN.top + STRIP_HEIGHT;

    // generated positions get a tinted band, grid lines every quarter of the maximum
    c.fillStyle = COLORS.band;
    if (t > promptN) c.fillRect(MARGIN.left + promptN * w, MARGIN.top, (t - promptN) * w, STRIP_HEIGHT);
    c.strokeStyle = COLORS.grid;
    c.fillStyle = COLORS.muted;
    c.font = `11px ${FONT}`;
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const y = Math.round(y0 - f * STRIP_HEIGHT) + 0.5;
      c.beginPath();
      c.moveTo(MARGIN.left, y);
      c.lineTo(width - MARGIN.right, y);
      c.stroke();
      if (f === 0 || f === 0.5 || f === 1) c.fillText(tickFormat(f * top), MARGIN.left - 6, y);
    }
    const blues = interpolator("blues");
    if (w >= 1) {
      for (let i = 0; i < t; i++) {
        const h = (values[i] / top) * STRIP_HEIGHT;
        c.fillStyle = blues(0.3 + 0.7 * (values[i] / top));
        const gap = w > 5 ? 1 : 0;
        c.fillRect(MARGIN.left + i * w + gap / 2, y0 - h, Math.max(1, w - gap), h);
      }
    } else {
      const columns = columnMax(values, Math.floor(plotW));
      for (let x = 0; x < columns.length; x++) {
        const h = (columns[x] / top) * STRIP_HEIGHT;
        c.fillStyle = blues(0.3 + 0.7 * (columns[x] / top));
        c.fillRect(MARGIN.left + x, y0 - h, 1, h);
      }
    }
    // the query: the newest token of the context, which produced this step's token
    c.strokeStyle = COLORS.query;
    c.lineWidth = 2;
    c.strokeRect(MARGIN.left + (t - 1) * w + 1, MARGIN.top + 1, Math.max(2, w - 2), STRIP_HEIGHT - 2);
    c.strokeStyle = COLORS.axis;
    c.lineWidth = 1;
    c.beginPath();
    c.moveTo(MARGIN.left, y0 + 0.5);
    c.lineTo(width - MARGIN.right, y0 + 0.5);
    c.stroke();
    // rotated token labels under the bars
    c.font = `${font}px ${FONT}`;
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (let i = 0; i < t; i += every) {
      c.save();
      c.translate(MARGIN.left + (i + 0.5) * w, y0 + 6);
      c.rotate(-Math.PI / 3);
      c.fillStyle = i === t - 1 ? COLORS.query : i >= promptN ? COLORS.generated : COLORS.text;
      c.fillText(fit(c, labels[i], MAX_LABEL), 0, 0);
      c.restore();
    }
    bars = { values, labels, w, y0, width };
    ui.stepText.replaceChildren(
      span(`Step ${selected + 1} of ${run.steps.length} → `),
      span(step.display, "tok gen-tok"),
      span(" · what "),
      span(labels[t - 1], "tok gen-query"),
      span(` (k=${t - 1}) attended to when choosing it · layer ${layer}, head ${head}`),
    );
    ui.top.replaceChildren(
      ...topKeys(values, TOP_KEYS).map(({ index, value }) => {
        const item = document.createElement("li");
        item.append(span(labels[index], "tok"), span(value.toPrecision(4), "value"), span(`k=${index}`, "pos"));
        return item;
      }),
    );
    canvas.setAttribute(
      "aria-label",
      `Attention that chose step ${selected + 1} (layer ${layer}, head ${head}) over ${t} positions`,
    );
    Object.assign(canvas.dataset, { state: "ready", step: String(selected), t: String(t) });
    Object.assign(canvas.dataset, { layer: String(layer), head: String(head) });
    expose({ view: "generate", step: selected, t, layer, head, values: Array.from(values), steps: run.steps.length });
  }

  function onPointer(event) {
    if (!bars) return;
    const rect = ui.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left - MARGIN.left;
    const y = event.clientY - rect.top;
    const i = Math.floor(x / bars.w);
    if (i < 0 || i >= bars.values.length || y < MARGIN.top || y > bars.y0 + 4) {
      ctx.tooltip.hide();
      return;
    }
    ctx.tooltip.show(
      [
        el("div", {}, span(bars.labels[i], "tok")),
        el("div", {}, span(bars.values[i].toPrecision(4), "value")),
        el("div", {}, span(`k=${i}`, "pos")),
      ],
      event.clientX,
      event.clientY,
    );
  }
  const onLeave = () => ctx.tooltip.hide();
  ui.canvas.addEventListener("pointermove", onPointer, { signal });
  ui.canvas.addEventListener("pointerleave", onLeave, { signal });
  const resize = new ResizeObserver(() => requestAnimationFrame(drawStrip));
  resize.observe(ui.root);

  async function update(state) {
    const fresh = state.meta !== meta;
    meta = state.meta;
    layer = state.layer;
    head = state.head;
    if (fresh) {
      const lastRun = ctx.memo.get(RUN_MEMO);
      if (!run && lastRun && lastRun.key === runKey()) {
        run = lastRun; // back from another view: show the run that was here
        selected = Math.max(0, run.steps.length - 1);
        ui.step.max = String(selected);
        ui.step.disabled = run.steps.length === 0;
        setState(run.error ? "error" : "done");
        showReanalyze();
      }
      renderOutput();
    }
    drawStrip();
  }

  return {
    update,
    unmount() {
      if (controller) controller.abort();
      mounted.abort();
      resize.disconnect();
      ctx.tooltip.hide();
    },
  };
}

let formatTick = null;
const tickFormat = (v) => (formatTick ??= numberFormat(".2~g"))(v);

/** The largest value in each of `columns` equal bins of `values` (bins as the tile endpoint's). */
export function columnMax(values, columns) {
  const t = values.length;
  const out = new Float32Array(Math.min(columns, t));
  for (let x = 0; x < out.length; x++) {
    const a = Math.floor((x * t) / out.length);
    const b = Math.floor(((x + 1) * t) / out.length);
    let max = 0;
    for (let i = a; i < b; i++) if (values[i] > max) max = values[i];
    out[x] = max;
  }
  return out;
}

/** The `k` largest values as [{index, value}], largest first (ties: lower index first). */
function topKeys(values, k) {
  return Array.from(values, (value, index) => ({ index, value }))
    .sort((a, b) => b.value - a.value || a.index - b.index)
    .slice(0, k);
}
