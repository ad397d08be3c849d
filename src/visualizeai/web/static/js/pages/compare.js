// Compare page: two sentences under one model (minimal pairs), or one text under two models. Both analyses run
// through POST /analyze (cached on the server), then GET /compare returns both matrices and their difference for
// the chosen layer and head: on the tokens both sentences share, or on the common word axis of two tokenizers.
// One Layer and Head control drives both sides; two models of different depth have their layers matched by index
// or by relative depth (lib/layers.js). The form posts to /compare, which runs both analyses and answers with
// this page addressed by their keys (?mode=…&a=KEY&b=KEY): the URL holds the mode, the keys, layer, head and the
// matching (a permalink), never the texts. Keys (outside form fields): ↑/↓ layer, ←/→ head.

import { ApiError, analyze, fetchAnalysis, fetchComparison } from "../lib/api.js";
import { drawLegend } from "../lib/canvas.js";
import { formatValue, makeColorScale, makeDivergingScale } from "../lib/color.js";
import { createTooltip, isTyping, line, span } from "../lib/dom.js";
import { LAYER_MATCHES, choosableLayers, matchLayer } from "../lib/layers.js";
import { drawMatrix } from "../lib/matrix.js";

const $ = (id) => document.getElementById(id);
const MODES = ["sentences", "models"];
const MEAN = "mean";

const ui = {
  form: $("compare-form"),
  status: $("status"),
  statusText: $("status-text"),
  error: $("error"),
  root: $("compare"),
  layer: $("compare-layer"),
  head: $("compare-head"),
  match: $("compare-match"),
  matchControl: $("compare-match-control"),
  syncNote: $("compare-sync-note"),
  canvases: { a: $("compare-a"), b: $("compare-b"), diff: $("compare-diff") },
  titles: { a: $("compare-a-title"), b: $("compare-b-title"), diff: $("compare-diff-title") },
  legend: $("compare-legend"),
  diffLegend: $("compare-diff-legend"),
  alignment: $("compare-alignment"),
  unmatched: $("compare-unmatched"),
};
const tooltip = createTooltip($("tooltip"));

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

// ---- the form: which fields a mode uses -------------------------------------------------------------------

function showMode(mode) {
  for (const field of ui.form.querySelectorAll("[data-mode]")) {
    const on = field.dataset.mode === mode;
    field.hidden = !on;
    for (const input of field.querySelectorAll("select, textarea, input")) input.disabled = !on;
  }
  $("model-a-label").textContent = mode === "models" ? "Model A" : "Model";
  $("text-a-label").textContent = mode === "models" ? "Text" : "Sentence A";
}

for (const radio of ui.form.querySelectorAll("input[name=mode]")) {
  radio.addEventListener("change", () => radio.checked && showMode(radio.value));
}

// ---- status and errors ----------------------------------------------------------------------------------

function setStatus(message) {
  ui.statusText.textContent = message;
  ui.status.hidden = false;
}

function showError(err) {
  ui.status.hidden = true;
  ui.error.textContent = err instanceof Error ? err.message : String(err);
  ui.error.hidden = false;
  ui.root.dataset.state = "error";
  if (!(err instanceof ApiError)) console.error(err);
}

// ---- state: the URL is the permalink --------------------------------------------------------------------

const query = new URLSearchParams(window.location.search);
const mode = MODES.includes(query.get("mode")) ? query.get("mode") : "sentences";
// the two analyses' keys, when the server holds them (it fills the form from them); an old link's texts else
const keys = { a: ui.form.dataset.keyA || "", b: ui.form.dataset.keyB || "" };
const input = {
  mode,
  modelA: query.get("model_a") || "",
  modelB: mode === "models" ? query.get("model_b") || "" : query.get("model_a") || "",
  textA: query.get("text_a") || "",
  textB: mode === "models" ? query.get("text_a") || "" : query.get("text_b") || "",
};
const TEXT_PARAMS = ["text_a", "text_b", "model_a", "model_b"];
const parseIndex = (raw) => (/^\d+$/.test(raw || "") ? Number.parseInt(raw, 10) : null);
const wanted = {
  layer: parseIndex(query.get("layer")) ?? 0,
  head: query.get("head") === MEAN ? MEAN : parseIndex(query.get("head")) ?? (mode === "models" ? MEAN : 0),
  match: LAYER_MATCHES.includes(query.get("match")) ? query.get("match") : "index",
};

function writeUrl(layer, head, match) {
  const url = new URL(window.location.href);
  for (const name of TEXT_PARAMS) url.searchParams.delete(name); // the keys address the analyses
  if (metas) {
    url.searchParams.set("a", metas[0].key);
    url.searchParams.set("b", metas[1].key);
  }
  url.searchParams.set("layer", String(layer));
  url.searchParams.set("head", String(head));
  if (match === "depth") url.searchParams.set("match", match);
  else url.searchParams.delete("match");
  if (url.href !== window.location.href) window.history.replaceState(null, "", url);
}

// ---- analyses, and the comparison of the chosen layer and head -------------------------------------------

let metas = null; // [metaA, metaB]
let rerun = null;

async function runAnalyses() {
  metas = await Promise.all([analyze(input.modelA, input.textA), analyze(input.modelB, input.textB)]);
  return metas;
}

/** The two analyses the page is addressed by, read by key; their texts and models become the rerun's input. */
async function openAnalyses() {
  metas = await Promise.all([fetchAnalysis(keys.a), fetchAnalysis(keys.b)]);
  input.modelA = metas[0].model.id;
  input.modelB = metas[1].model.id;
  input.textA = metas[0].text;
  input.textB = metas[1].text;
  return metas;
}

/** GET /compare; if the server dropped either analysis (404), run both again once and retry. */
async function compareWithRetry(layer, head, layerB) {
  const params = () => ({
    mode: input.mode,
    keyA: metas[0].key,
    keyB: metas[1].key,
    layer,
    head: head === MEAN ? null : head,
    layerB,
  });
  try {
    return await fetchComparison(params());
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    rerun ??= runAnalyses().finally(() => {
      rerun = null;
    });
    await rerun;
    return fetchComparison(params());
  }
}

function fillSelect(select, count, withMean) {
  const options = [];
  if (withMean) {
    const mean = element("option", "", "mean of heads");
    mean.value = MEAN;
    options.push(mean);
  }
  for (let i = 0; i < count; i++) {
    const option = element("option", "", String(i));
    option.value = String(i);
    options.push(option);
  }
  select.replaceChildren(...options);
}

function currentMatch() {
  return ui.matchControl.hidden ? "index" : ui.match.value;
}

function currentChoice() {
  const head = ui.head.value === MEAN ? MEAN : Number(ui.head.value);
  const layer = Number(ui.layer.value);
  const match = currentMatch();
  const layerB = matchLayer(layer, metas[0].layers, metas[1].layers, match);
  return { layer, head, layerB, match };
}

// ---- drawing ------------------------------------------------------------------------------------------------

function maxOf(values, transform = (v) => v) {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = transform(values[i]);
    if (v > max) max = v;
  }
  return max;
}


function describeSide(meta, side) {
  if (side.head === null) return `layer ${side.layer}, mean of ${meta.heads} heads`;
  return `layer ${side.layer}, head ${side.head}`;
}

function title(el, letter, meta, side, text) {
  el.replaceChildren(
    span(letter, "compare-letter"),
    span(meta.model.display_name || meta.model.id, "compare-model"),
    span(` · ${describeSide(meta, side)}`, "compare-what"),
    ...(text ? [element("span", "compare-text-line", text)] : []),
  );
}

let shown = null;
let request = 0;

function columnWidth() {
  const grid = ui.root.querySelector(".compare-grid");
  const style = getComputedStyle(grid);
  const gap = Number.parseFloat(style.columnGap) || 0;
  const columns = style.gridTemplateColumns.split(" ").length;
  return Math.max(220, Math.floor((grid.clientWidth - gap * (columns - 1)) / columns));
}

function draw() {
  if (!shown) return;
  const { body } = shown;
  const width = columnWidth();
  const top = Math.max(maxOf(body.a.matrix.data), maxOf(body.b.matrix.data));
  const shared = makeColorScale(top, { mode: "sqrt" });
  const bound = Math.max(maxOf(body.difference.data, Math.abs), 1e-6);
  const diverging = makeDivergingScale(bound);
  const shifted = new Float32Array(body.difference.data.length);
  body.difference.data.forEach((v, i) => {
    shifted[i] = (v + bound) / (2 * bound);
  });
  const diffSpecial = body.pairs.map(([i]) => body.a.special[i]);
  const side = (data) => ({ matrix: data.matrix.data, labels: data.labels, special: data.special });
  shown.drawn = {
    a: drawMatrix(ui.canvases.a, { ...side(body.a), width, colorScale: shared }),
    b: drawMatrix(ui.canvases.b, { ...side(body.b), width, colorScale: shared }),
    diff: drawMatrix(ui.canvases.diff, {
      matrix: shifted,
      labels: body.labels,
      special: diffSpecial,
      width,
      colorScale: diverging,
    }),
  };
  drawLegend(ui.legend, shared, { width: 260 });
  drawLegend(ui.diffLegend, diverging, { width: 260 });
}

function describeAlignment(body) {
  const [metaA, metaB] = metas;
  if (body.mode === "models") {
    ui.alignment.textContent =
      `${body.labels.length} words: A's ${metaA.n} tokens and B's ${metaB.n} tokens meet at the words of the text ` +
      "(through character offsets). Special tokens are hidden and each row renormalised over the words; a " +
      "word's pieces are pooled (keys summed, queries averaged), so every row sums to 1.";
    ui.unmatched.hidden = true;
    return;
  }
  ui.alignment.textContent =
    `The difference covers the ${body.labels.length} tokens both sentences share (matched in order); the ` +
    "weights are as the model gave them, not renormalised.";
  const inA = new Set(body.pairs.map(([i]) => i));
  const inB = new Set(body.pairs.map(([, j]) => j));
  const onlyA = body.a.labels.filter((_, i) => !inA.has(i));
  const onlyB = body.b.labels.filter((_, j) => !inB.has(j));
  ui.unmatched.replaceChildren(
    span("Only in A: "),
    span(onlyA.length ? onlyA.join(" ") : "—", "tok"),
    span(" · only in B: "),
    span(onlyB.length ? onlyB.join(" ") : "—", "tok"),
  );
  ui.unmatched.hidden = false;
}

async function render() {
  const mine = ++request;
  const { layer, head, layerB, match } = currentChoice();
  ui.root.dataset.state = "loading";
  writeUrl(layer, head, match);
  let body;
  try {
    body = await compareWithRetry(layer, head, layerB);
  } catch (err) {
    if (mine === request) showError(err);
    return;
  }
  if (mine !== request) return;
  ui.error.hidden = true;
  shown = { body };
  draw();
  const [metaA, metaB] = metas;
  const sentences = body.mode === "sentences";
  title(ui.titles.a, "A", metaA, body.a, sentences ? metaA.text : "");
  title(ui.titles.b, "B", metaB, body.b, sentences ? metaB.text : "");
  ui.titles.diff.replaceChildren(
    span("A − B", "compare-letter"),
    span(`on the ${body.labels.length} ${sentences ? "shared tokens" : "words"}`, "compare-what"),
  );
  describeAlignment(body);
  for (const [side, canvas] of Object.entries(ui.canvases)) {
    const n = side === "diff" ? body.labels.length : body[side].labels.length;
    canvas.dataset.n = String(n);
    canvas.dataset.layer = String(side === "b" ? body.b.layer : layer);
    canvas.dataset.head = String(head);
    canvas.dataset.state = "ready";
    const name = side === "diff" ? "Difference A − B" : `Side ${side.toUpperCase()}`;
    canvas.setAttribute("aria-label", `${name}, ${n} × ${n}`);
  }
  ui.root.dataset.mode = body.mode;
  ui.root.dataset.layer = String(layer);
  ui.root.dataset.layerB = String(body.b.layer);
  ui.root.dataset.match = match;
  ui.root.dataset.head = String(head);
  ui.root.dataset.state = "ready";
  window.visualizeai = {
    page: "compare",
    mode: body.mode,
    layer,
    layerB: body.b.layer,
    match,
    head,
    a: { labels: body.a.labels, matrix: body.a.matrix.data, layer: body.a.layer, head: body.a.head },
    b: { labels: body.b.labels, matrix: body.b.matrix.data, layer: body.b.layer, head: body.b.head },
    labels: body.labels,
    pairs: body.pairs,
    difference: body.difference.data,
  };
}

// ---- hover ----------------------------------------------------------------------------------------------

function hover(side, event) {
  const drawn = shown && shown.drawn && shown.drawn[side];
  const hit = drawn && drawn.cellAt(event.clientX, event.clientY);
  if (!hit) {
    tooltip.hide();
    return;
  }
  const { body } = shown;
  const { row, col } = hit;
  let nodes;
  if (side === "diff") {
    const [qa, qb] = body.pairs[row];
    const [ka, kb] = body.pairs[col];
    const n = body.labels.length;
    const a = body.a.matrix.data[qa * body.a.labels.length + ka];
    const b = body.b.matrix.data[qb * body.b.labels.length + kb];
    nodes = [
      line(span(body.labels[row], "tok"), span(" → ", "arrow"), span(body.labels[col], "tok")),
      line(span(`A − B ${formatValue(body.difference.data[row * n + col])}`, "value")),
      line(span(`A ${formatValue(a)} · B ${formatValue(b)}`, "pos")),
    ];
  } else {
    const data = body[side];
    const n = data.labels.length;
    nodes = [
      line(span(data.labels[row], "tok"), span(" → ", "arrow"), span(data.labels[col], "tok")),
      line(span(formatValue(data.matrix.data[row * n + col]), "value")),
      line(span(`${side.toUpperCase()} q=${row} k=${col}`, "pos")),
    ];
  }
  tooltip.element.dataset.side = side;
  tooltip.element.dataset.q = String(row);
  tooltip.element.dataset.k = String(col);
  tooltip.show(nodes, event.clientX, event.clientY);
}

for (const [side, canvas] of Object.entries(ui.canvases)) {
  canvas.addEventListener("pointermove", (event) => hover(side, event));
  canvas.addEventListener("pointerleave", () => tooltip.hide());
}

// ---- layers of two depths, and the keys -----------------------------------------------------------------------

/** The Layer choices for the current matching (each labelled with B's layer when they differ), keeping `layer`. */
function fillLayers(layer) {
  const [metaA, metaB] = metas;
  const match = currentMatch();
  const count = choosableLayers(metaA.layers, metaB.layers, match);
  const options = [];
  for (let i = 0; i < count; i++) {
    const b = matchLayer(i, metaA.layers, metaB.layers, match);
    const option = element("option", "", b === i ? String(i) : `${i} ↔ B ${b}`);
    option.value = String(i);
    options.push(option);
  }
  ui.layer.replaceChildren(...options);
  ui.layer.value = String(Math.max(0, Math.min(layer, count - 1)));
  if (metaA.layers === metaB.layers && metaA.heads === metaB.heads) {
    ui.syncNote.textContent = "One Layer and Head for both sides.";
  } else if (match === "depth") {
    ui.syncNote.textContent =
      `Layers matched by relative depth: layer i of A (${metaA.layers} layers) with layer ` +
      `round(i · ${metaB.layers - 1} / ${Math.max(1, metaA.layers - 1)}) of B (${metaB.layers} layers); ` +
      `heads both models have (A ${metaA.heads}, B ${metaB.heads}).`;
  } else {
    ui.syncNote.textContent =
      `One Layer and Head for both sides: the layers and heads both models have (A has ${metaA.layers} × ` +
      `${metaA.heads}, B ${metaB.layers} × ${metaB.heads}).`;
  }
}

/** ↑/↓ the previous/next layer, ←/→ the previous/next head (the mean first), outside form fields. */
function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (isTyping(event.target) || ui.root.hidden) return;
  const moves = { ArrowUp: [ui.layer, -1], ArrowDown: [ui.layer, 1], ArrowLeft: [ui.head, -1], ArrowRight: [ui.head, 1] };
  const move = moves[event.key];
  if (!move) return;
  const [select, delta] = move;
  event.preventDefault();
  const index = Math.max(0, Math.min(select.options.length - 1, select.selectedIndex + delta));
  if (index === select.selectedIndex) return;
  select.selectedIndex = index;
  render();
}

// ---- start --------------------------------------------------------------------------------------------------

async function start() {
  showMode(mode);
  const byKey = Boolean(keys.a && keys.b);
  if (!byKey && !input.textA.trim()) return; // nothing asked yet: the form alone
  if (!byKey && !input.textB.trim()) {
    showError(new ApiError("Sentence B is empty: write the second sentence of the pair.", 0));
    return;
  }
  setStatus(byKey ? "Reading both analyses…" : "Running both analyses…");
  try {
    await (byKey ? openAnalyses() : runAnalyses());
  } catch (err) {
    showError(err);
    return;
  }
  const [metaA, metaB] = metas;
  const heads = Math.min(metaA.heads, metaB.heads);
  ui.matchControl.hidden = metaA.layers === metaB.layers;
  ui.match.value = wanted.match;
  fillLayers(wanted.layer);
  fillSelect(ui.head, heads, true);
  ui.head.value = wanted.head === MEAN ? MEAN : String(Math.min(wanted.head, heads - 1));
  ui.root.hidden = false;
  await render();
  if (ui.root.dataset.state === "ready") ui.status.hidden = true;
  ui.layer.addEventListener("change", render);
  ui.head.addEventListener("change", render);
  ui.match.addEventListener("change", () => {
    fillLayers(Number(ui.layer.value));
    render();
  });
  document.addEventListener("keydown", onKey);
  let lastWidth = ui.root.clientWidth;
  new ResizeObserver(() => {
    if (shown && ui.root.clientWidth !== lastWidth) {
      lastWidth = ui.root.clientWidth;
      requestAnimationFrame(draw);
    }
  }).observe(ui.root);
}

start();
