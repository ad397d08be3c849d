// Rollout view: attention rollout (Abnar & Zuidema 2020) after the chosen layer, as a heatmap (drawn by
// lib/matrix.js drawMatrix) and as one token's row laid over the input text: each token of the text is a chip whose
// background is as strong as the share of that input token that reaches the chosen token. The "Attention flow"
// switch shows the max-flow reading of the same graph instead; the server refuses it at once, with the bound and
// the reason, when the input is too long, and the view says so instead of waiting. Rollout itself is refused
// past the server's work budget: the view then shows the server's message with its figures.

import { drawLegend } from "../lib/canvas.js";
import { formatValue, makeColorScale, maxOf } from "../lib/color.js";
import { line, showRefusal, span } from "../lib/dom.js";
import { cachedLoad } from "../lib/lru.js";
import { drawMatrix } from "../lib/matrix.js";
import { tokenBadge, tokenBadgeText } from "../lib/token_badge.js";
import { tokenFactsLine, tokenLabel } from "../lib/tokens.js";

/** Shared controls this view uses: the layer (rollout accumulates every head of the layers up to it). */
export const controls = ["layer"];

/** What the keys do on this tab besides the shared controls' (the page writes the hint). */
export const keys = [];

const SIDE_WIDTH = 290; // CSS px for the legend column beside the matrix
const CACHE = 16; // matrices kept (rollout and flow of recent layers)
const CHIP_RGB = "37, 99, 235"; // --accent

/** The bound in words, from GET /flow-limits. */
function limitsText(limits) {
  return (
    `about ${limits.max_tokens} tokens through ${limits.reference_layers} layers already take a few seconds. ` +
    "Rollout has no such bound."
  );
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The row shown over the text by default: the first token if special ([CLS], <s>), else the last token. */
export function defaultSource(meta) {
  return meta.tokens.length && meta.tokens[0].special ? 0 : meta.n - 1;
}

export function mount(panel, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
  panel.classList.add("rollout-panel");
  const root = element("div", "rollout");
  root.id = "rollout";
  root.dataset.state = "empty";

  const toolbar = element("div", "view-toolbar");
  const caption = element("p", "view-caption");
  caption.id = "rollout-caption";
  const flowControl = element("div", "control control-check");
  const flowBox = element("input");
  flowBox.type = "checkbox";
  flowBox.id = "rollout-flow";
  const flowLabel = element("label", "", "Attention flow");
  flowLabel.htmlFor = "rollout-flow";
  flowControl.append(flowBox, flowLabel);
  toolbar.append(caption, flowControl);

  const explain = element("p", "hint rollout-explain");
  explain.id = "rollout-explain";
  const message = element("p", "alert alert-warning rollout-message");
  message.id = "rollout-message";
  message.setAttribute("role", "status");
  message.hidden = true;

  const textBox = element("section", "rollout-text");
  textBox.setAttribute("aria-label", "One token's row over the text");
  const textHead = element("div", "rollout-text-head");
  const textTitle = element("h3", "rollout-text-title");
  textTitle.id = "rollout-row-title";
  const pick = element("div", "control");
  const pickLabel = element("label", "", "Token");
  pickLabel.htmlFor = "rollout-source";
  const pickSelect = element("select");
  pickSelect.id = "rollout-source";
  pick.append(pickLabel, pickSelect);
  textHead.append(textTitle, pick);
  const chips = element("p", "rollout-tokens");
  chips.id = "rollout-tokens";
  const chipsHint = element(
    "p",
    "hint rollout-tokens-hint",
    "Shade: the token's weight relative to the strongest token other than the chosen one (which mostly " +
      "keeps itself through the residual connection). Hover a token for its exact value; click one to choose it.",
  );
  textBox.append(textHead, chips, chipsHint);

  const body = element("div", "rollout-body");
  const wrap = element("div", "heatmap-wrap rollout-wrap");
  const canvas = element("canvas");
  canvas.id = "rollout-canvas";
  canvas.setAttribute("role", "img");
  wrap.append(canvas);
  const side = element("aside", "rollout-side");
  const legendTitle = element("span", "legend-title");
  const legend = element("canvas");
  legend.id = "rollout-legend";
  legend.setAttribute("aria-hidden", "true");
  const sideHint = element("p", "hint");
  side.append(legendTitle, legend, sideHint);
  body.append(wrap, side);

  root.append(toolbar, explain, message, textBox, body);
  panel.replaceChildren(root);

  const cache = new Map(); // "key|mode|layer" → Promise<{shape, data}>
  let request = 0;
  let shown = null; // {meta, layer, mode, matrix, n, labels, drawn, colorScale}
  let source = null; // the token whose row is shown over the text
  let sourceMeta = null;
  let limits = null; // Promise of GET /flow-limits for sourceMeta

  function load(meta, mode, layer) {
    const id = `${meta.key}|${mode}|${layer}`;
    return cachedLoad(cache, CACHE, id, () =>
      mode === "flow" ? ctx.source.flow(layer) : ctx.source.rollout(layer),
    );
  }

  function fillSources(meta) {
    const options = meta.tokens.map((t) => {
      const option = element("option", "", `${tokenLabel(t)}${tokenBadgeText(t)}  (${t.index})`);
      option.title = tokenFactsLine(t);
      option.value = String(t.index);
      return option;
    });
    pickSelect.replaceChildren(...options);
  }

  function explanation(mode, layer) {
    if (mode === "flow") {
      return (
        `Attention flow after layer ${layer}: the heads' mean plus the residual connection as pipes with ` +
        "capacities, and for each pair of tokens the most that can flow from the token after this layer down " +
        "to the input token. Unlike rollout, paths that share an edge cannot both use it in full."
      );
    }
    return (
      `Attention rollout after layer ${layer}: each layer's heads averaged, plus the residual connection ` +
      "(0.5·A + 0.5·I), multiplied from the first layer up. Row i says how much of each input token has " +
      "reached token i."
    );
  }

  async function update(state) {
    const { meta } = state;
    if (!meta) return;
    const mine = ++request;
    const layer = state.layer;
    const mode = flowBox.checked ? "flow" : "rollout";
    if (sourceMeta !== meta) {
      sourceMeta = meta;
      source = defaultSource(meta);
      fillSources(meta);
      cache.clear();
      limits = ctx.source.flowLimits();
      limits.catch(() => {}); // a failure shows when flow is asked for
    }
    root.dataset.state = "loading";
    if (mode === "flow") {
      message.textContent = "Computing attention flow… (a few seconds for the longest inputs it accepts)";
      message.hidden = false;
    }
    let result;
    let shownMode = mode;
    // Too long for flow: say why at once (the server's own bound), and show rollout, which has no such bound.
    const refuse = (reason) => {
      message.textContent = `Attention flow is not shown: ${reason} Showing attention rollout instead.`;
      message.dataset.reason = "too-long";
      message.hidden = false;
      shownMode = "rollout";
    };
    try {
      const limit = mode === "flow" ? (await limits).layers[layer] : null;
      if (limit && !limit.allowed) {
        refuse(
          `this text has ${meta.n} tokens, and flow after layer ${layer} is computed for at most ` +
            `${limit.max_tokens}. Flow solves a maximum-flow problem for every pair of tokens through every ` +
            `layer up to this one, about n⁴ × layers steps: ${limitsText(await limits)}`,
        );
      }
      result = await load(meta, shownMode, layer);
    } catch (err) {
      if (mine !== request) return;
      if (shownMode === "flow" && err.status === 400) {
        refuse(err.message);
        result = await loadRollout(meta, layer, mine);
        if (!result) return;
      } else if (showRefusal(message, err, "attention rollout")) {
        refused();
        return;
      } else {
        message.hidden = true;
        root.dataset.state = "error";
        throw err;
      }
    }
    if (mine !== request) return;
    textBox.hidden = false;
    body.hidden = false;
    if (shownMode === mode) message.hidden = true;
    root.dataset.flowRefused = mode === "flow" && shownMode !== "flow" ? "true" : "false";
    const labels = meta.tokens.map(tokenLabel);
    shown = {
      meta,
      layer,
      mode: shownMode,
      matrix: result.data,
      n: meta.n,
      labels,
      special: meta.tokens.map((t) => t.special),
    };
    draw();
    caption.textContent =
      `${shownMode === "flow" ? "Attention flow" : "Attention rollout"} after layer ${layer} · ${meta.n} tokens`;
    explain.textContent = explanation(shownMode, layer);
    root.dataset.layer = String(layer);
    root.dataset.mode = shownMode;
    root.dataset.n = String(meta.n);
    root.dataset.state = "ready";
  }

  /** Rollout after a refused flow; null (and the refusal shown) when rollout is refused too. */
  async function loadRollout(meta, layer, mine) {
    try {
      return await load(meta, "rollout", layer);
    } catch (err) {
      if (mine !== request) return null;
      if (!showRefusal(message, err, "attention rollout")) throw err;
      refused();
      return null;
    }
  }

  /** The server refused the computation: its message (in `message`) stands alone. */
  function refused() {
    shown = null;
    textBox.hidden = true;
    body.hidden = true;
    root.dataset.state = "refused";
    caption.textContent = "Attention rollout";
    ctx.expose({ view: "rollout", refused: message.textContent });
  }

  function rowOf(index) {
    const { matrix, n } = shown;
    return matrix.subarray(index * n, (index + 1) * n);
  }

  function draw() {
    if (!shown) return;
    const { matrix, labels, special, n } = shown;
    const colorScale = makeColorScale(maxOf(matrix), { mode: "sqrt" });
    const width = Math.max(220, panel.clientWidth - SIDE_WIDTH);
    shown.drawn = drawMatrix(canvas, { matrix, labels, special, width, colorScale, marks: [source] });
    shown.colorScale = colorScale;
    drawLegend(legend, colorScale, { width: 260 });
    const flow = shown.mode === "flow";
    legendTitle.textContent = flow ? "Flow (at most 1)" : "Share of the input token";
    sideHint.textContent = flow
      ? "Rows are tokens after the layer, columns the input tokens; a cell is the most that can flow between " +
        "them, at most 1. Click a row (or a token of the text) to show it over the text."
      : "Rows are tokens after the layer, columns the input tokens; each row sums to 1. Click a row (or a " +
        "token of the text) to show it over the text.";
    canvas.setAttribute(
      "aria-label",
      `${shown.mode === "flow" ? "Attention flow" : "Attention rollout"} after layer ${shown.layer}: ` +
        `${n} tokens by ${n} input tokens`,
    );
    canvas.dataset.n = String(n);
    drawRow();
    ctx.expose({
      view: "rollout",
      meta: shown.meta,
      layer: shown.layer,
      mode: shown.mode,
      n,
      matrix,
      source,
      row: rowOf(source),
    });
  }

  /**
   * The chosen token's row over the text: one chip per token, background alpha = weight / the largest weight
   * of the other tokens (the chosen token keeps much of itself through the residual, and would wash out the rest).
   */
  function drawRow() {
    const { meta, labels } = shown;
    const row = rowOf(source);
    let max = 0;
    row.forEach((v, i) => {
      if (i !== source && v > max) max = v;
    });
    if (max === 0) max = row[source];
    const nodes = [];
    meta.tokens.forEach((token, i) => {
      const previous = meta.tokens[i - 1];
      // a space where the text has one (or next to a special token); pieces of one word stay together
      if (previous && (token.special || previous.special || token.start > previous.end)) nodes.push(" ");
      else if (previous) nodes.push("\u200b"); // a line may still break between pieces
      const chip = element("button", "rollout-chip", labels[i]);
      chip.type = "button";
      const weight = row[i];
      const alpha = max > 0 ? Math.min(1, weight / max) : 0;
      chip.style.backgroundColor = `rgba(${CHIP_RGB}, ${alpha.toFixed(3)})`;
      chip.classList.toggle("dark", alpha > 0.55);
      chip.classList.toggle("special", token.special);
      chip.classList.toggle("source", i === source);
      chip.dataset.index = String(i);
      chip.dataset.weight = String(weight);
      chip.title = `${labels[i]} (${i}): ${formatValue(weight)}\n${tokenFactsLine(token)}`;
      chip.setAttribute("aria-label", `${labels[i]}, position ${i}: ${formatValue(weight)}`);
      if (i === source) chip.setAttribute("aria-current", "true");
      nodes.push(chip);
      const badge = tokenBadge(token);
      if (badge) nodes.push(badge);
    });
    chips.replaceChildren(...nodes);
    pickSelect.value = String(source);
    textTitle.replaceChildren(
      span(shown.mode === "flow" ? "Flow into " : "What reaches "),
      span(labels[source], "tok"),
      ...[tokenBadge(meta.tokens[source])].filter(Boolean),
      span(` (${source}) after layer ${shown.layer}, from each input token`),
    );
    chips.dataset.source = String(source);
  }

  function setSource(index) {
    if (!shown || index === source || !(index >= 0 && index < shown.n)) return;
    source = index;
    draw();
  }

  // Figure export: the matrix as drawn (lib/figure.js figurePlan), titled with what it is.
  ctx.setFigure?.(() => {
    if (!shown || !shown.colorScale) return null;
    const flow = shown.mode === "flow";
    const { colorScale } = shown;
    return {
      matrix: shown.matrix,
      labels: shown.labels,
      special: shown.special,
      colorScale,
      caption: caption.textContent,
      name: `layer-${shown.layer}-${flow ? "flow" : "rollout"}`,
      subtitle:
        `Rows: tokens after layer ${shown.layer} · columns: input tokens · ` +
        `colour: ${colorScale.mode} scale, 0 to ${colorScale.max.toPrecision(3)}${flow ? " (flow, at most 1)" : " (each row sums to 1)"}`,
    };
  });

  const onPick = () => setSource(Number(pickSelect.value));
  const onChip = (event) => {
    const chip = event.target.closest ? event.target.closest(".rollout-chip") : null;
    if (chip) setSource(Number(chip.dataset.index));
  };
  const onCanvasClick = (event) => {
    const hit = shown && shown.drawn && shown.drawn.cellAt(event.clientX, event.clientY);
    if (hit) setSource(hit.row);
  };
  const onHover = (event) => {
    const hit = shown && shown.drawn && shown.drawn.cellAt(event.clientX, event.clientY);
    if (!hit) {
      ctx.tooltip.hide();
      return;
    }
    const { labels, matrix, n } = shown;
    const value = matrix[hit.row * n + hit.col];
    const tip = ctx.tooltip.element;
    tip.dataset.q = String(hit.row);
    tip.dataset.k = String(hit.col);
    tip.dataset.value = String(value);
    ctx.tooltip.show(
      [
        line(span(labels[hit.row], "tok"), span(" ← ", "arrow"), span(labels[hit.col], "tok")),
        line(span(formatValue(value), "value")),
        line(span(`token ${hit.row}, input ${hit.col}`, "pos")),
        line(span(`token: ${tokenFactsLine(shown.meta.tokens[hit.row])}`, "tt-facts")),
        line(span(`input: ${tokenFactsLine(shown.meta.tokens[hit.col])}`, "tt-facts")),
      ],
      event.clientX,
      event.clientY,
    );
  };
  const onLeave = () => ctx.tooltip.hide();
  const onFlow = () => {
    const state = ctx.store.get();
    update(state).catch((err) => {
      if (signal.aborted) return;
      message.textContent = err instanceof Error ? err.message : String(err);
      message.hidden = false;
    });
  };
  let lastWidth = panel.clientWidth;
  const resize = new ResizeObserver(() => {
    if (shown && panel.clientWidth !== lastWidth) {
      lastWidth = panel.clientWidth;
      requestAnimationFrame(draw);
    }
  });
  resize.observe(panel);
  pickSelect.addEventListener("change", onPick, { signal });
  chips.addEventListener("click", onChip, { signal });
  canvas.addEventListener("click", onCanvasClick, { signal });
  canvas.addEventListener("pointermove", onHover, { signal });
  canvas.addEventListener("pointerleave", onLeave, { signal });
  flowBox.addEventListener("change", onFlow, { signal });

  return {
    update,
    unmount() {
      request++;
      controller.abort();
      resize.disconnect();
      ctx.tooltip.hide();
    },
  };
}
