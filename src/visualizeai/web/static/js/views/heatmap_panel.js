// Heatmap view, elements: the panel (toolbar, grid, minimap, legend, focus list, the places of navigation and
// the text panel), the tooltip's lines and the focus list's contents. DOM building only, no state.

import { formatValue } from "../lib/color.js";
import { el, line, option, span } from "../lib/dom.js";
import { tokenBadge } from "../lib/token_badge.js";
import { tokenFactsLine } from "../lib/tokens.js";

function button(id, text, label) {
  const attrs = { type: "button", id, ...(label ? { "aria-label": label } : {}) };
  return el("button", { className: "button small secondary", text, attrs });
}

/** A labelled control: <div class="control"><label for=id>text</label> input</div>. */
function control(text, id, input) {
  return el("div", { className: "control" }, el("label", { text, attrs: { for: id } }), input);
}

export function buildPanel(panel) {
  const refs = {
    caption: el("p", { className: "view-caption", attrs: { id: "heatmap-caption" } }),
    zoomOut: button("zoom-out", "−", "Zoom out"),
    zoomIn: button("zoom-in", "+", "Zoom in"),
    zoomReset: button("zoom-reset", "Reset zoom"),
    pool: el("select", { attrs: { id: "heatmap-pool" } }, option("max", "max"), option("mean", "mean")),
    zoomLevel: el("span", { className: "hint zoom-level", attrs: { id: "zoom-level", "aria-live": "polite" } }),
    lod: el("span", { className: "lod-badge", attrs: { id: "heatmap-lod" } }),
    canvas: el("canvas", { className: "heatmap-cells", attrs: { "aria-hidden": "true" } }),
    overlay: el("canvas", { className: "heatmap-overlay", attrs: { "aria-hidden": "true" } }),
    minimap: el("canvas", {
      className: "heatmap-minimap",
      attrs: { id: "heatmap-minimap", "aria-label": "Where the view is in the whole matrix" },
    }),
    notice: el("p", { className: "hint heatmap-notice", attrs: { id: "heatmap-notice" }, hidden: true }),
    legend: el("canvas", { attrs: { id: "legend", width: 260, height: 34, "aria-hidden": "true" } }),
    colorMode: el("select", { attrs: { id: "color-mode" } }),
    colorNorm: el("select", { attrs: { id: "color-norm" } }),
    legendTitle: el("span", { className: "legend-title", attrs: { id: "legend-title" }, text: "Attention weight" }),
    gammaControl: el("div", { className: "control", attrs: { id: "gamma-control" }, hidden: true }),
    gamma: el("input", { attrs: { type: "range", id: "color-gamma", min: "0.1", max: "2", step: "0.05", value: "0.5" } }),
    gammaValue: el("output", { attrs: { id: "color-gamma-value", for: "color-gamma" }, text: "0.5" }),
    legendHint: el("p", { className: "hint", attrs: { id: "legend-hint" } }),
    focusTitle: el("h3", { className: "focus-title", attrs: { id: "focus-title" }, text: "Strongest keys" }),
    focusToken: el("input", { attrs: { type: "number", id: "focus-token", min: "0", step: "1", placeholder: "none" } }),
    focusAxis: el(
      "select",
      { attrs: { id: "focus-axis" } },
      option("row", "row: what it attends to"),
      option("col", "column: what attends to it"),
    ),
    focusHint: el("p", {
      className: "hint",
      attrs: { id: "focus-hint" },
      text: "Click a cell or a token label to list the keys its query token attends to most.",
    }),
    focusQuery: el("p", { className: "focus-query", attrs: { id: "focus-query" }, hidden: true }),
    focusList: el("ol", { className: "focus-list", attrs: { id: "focus-list" } }),
    nav: el("section", { className: "heatmap-nav", attrs: { "aria-label": "Find and navigate" } }),
    text: el("section", { className: "heatmap-text", attrs: { "aria-label": "The text, shaded by attention" } }),
  };
  refs.wrap = el(
    "div",
    {
      className: "heatmap-wrap",
      attrs: { id: "heatmap", role: "img", "aria-label": "Attention heatmap" },
      dataset: { state: "empty" },
    },
    refs.canvas,
    refs.overlay,
  );
  refs.gammaControl.append(el("label", { text: "Gamma γ", attrs: { for: "color-gamma" } }), refs.gamma, refs.gammaValue);
  const main = el(
    "div",
    { className: "heatmap-main" },
    el(
      "div",
      { className: "view-toolbar" },
      refs.caption,
      el(
        "div",
        { className: "zoom-bar", attrs: { role: "group", "aria-label": "Zoom" } },
        refs.zoomOut,
        refs.zoomIn,
        refs.zoomReset,
        el("label", { className: "pool-pick", text: "Pooling ", attrs: { for: "heatmap-pool" } }),
        refs.pool,
        refs.lod,
        refs.zoomLevel,
      ),
    ),
    refs.notice,
    el("div", { className: "heatmap-stage" }, refs.wrap, el("div", { className: "heatmap-minimap-box" }, refs.minimap)),
    el("p", {
      className: "hint",
      text:
        "Wheel over the matrix to zoom about the pointer, drag to pan; drag along the row labels to select " +
        "query rows. Click a cell or a label to focus its token; Esc clears. Keys: + / − zoom, 0 resets, / finds.",
    }),
    refs.nav,
    refs.text,
  );
  const side = el(
    "aside",
    { className: "heatmap-side", attrs: { id: "heatmap-side" } },
    el(
      "div",
      { className: "legend" },
      refs.legendTitle,
      refs.legend,
      control("Colour scale", "color-mode", refs.colorMode),
      control("Top of the scale", "color-norm", refs.colorNorm),
      refs.gammaControl,
      refs.legendHint,
    ),
    el(
      "div",
      { className: "focus", attrs: { id: "focus" } },
      refs.focusTitle,
      el(
        "div",
        { className: "focus-pick" },
        control("Focus token", "focus-token", refs.focusToken),
        el("div", { className: "control" }, el("label", { text: "Show", attrs: { for: "focus-axis" } }), refs.focusAxis),
      ),
      refs.focusHint,
      refs.focusQuery,
      refs.focusList,
    ),
  );
  panel.classList.add("heatmap-panel");
  panel.replaceChildren(main, side);
  refs.side = side;
  return refs;
}

/**
 * The tooltip of cell `hit` ({row, col}) showing `found` (valueAt: the value, whether exact, the cells pooled;
 * null while loading): its lines, and the outcome attributes on `tip` (data-q, -k, -value, -exact, …).
 */
export function tooltipLines(tip, axis, hit, found, info = null) {
  const { labels, positions } = axis;
  tip.dataset.q = String(hit.row);
  tip.dataset.k = String(hit.col);
  tip.dataset.qTokens = positions[hit.row];
  tip.dataset.kTokens = positions[hit.col];
  const lines = [line(span(labels[hit.row], "tok"), span(" → ", "arrow"), span(labels[hit.col], "tok"))];
  if (found) {
    tip.dataset.value = String(found.value);
    tip.dataset.exact = String(found.exact);
    if (found.exact) lines.push(line(span(formatValue(found.value), "value")));
    else {
      const bin = `rows ${found.rows[0]}–${found.rows[1] - 1}, columns ${found.cols[0]}–${found.cols[1] - 1}`;
      lines.push(line(span(formatValue(found.value), "value"), span(` ${found.pool} of ${bin}`, "pos")));
    }
  } else {
    delete tip.dataset.value;
    tip.dataset.exact = "false";
    lines.push(line(span("loading…", "pos")));
  }
  lines.push(line(span(`q=${positions[hit.row]} k=${positions[hit.col]}`, "pos")));
  // what the model saw, for single tokens (a merged word names its pieces by their positions)
  for (const [side, index] of [["q", hit.row], ["k", hit.col]]) {
    const group = axis.groups ? axis.groups[index] : [index];
    const token = info && group && group.length === 1 ? info.tokens[group[0]] : null;
    if (token) lines.push(line(span(`${side}: ${tokenFactsLine(token)}`, "pos")));
  }
  return lines;
}

/** The focus side list's title and sentence for `target` ({axis, index}, or null: the hint instead). */
export function showFocusHead(refs, target, axis) {
  refs.focusList.replaceChildren();
  delete refs.focusList.dataset.index; // set again when the list is filled
  refs.focusHint.hidden = Boolean(target);
  refs.focusQuery.hidden = !target;
  if (!target) {
    refs.focusTitle.textContent = "Strongest keys";
    return;
  }
  const isRow = target.axis === "row";
  refs.focusTitle.textContent = isRow ? "Strongest keys" : "Strongest queries";
  refs.focusQuery.replaceChildren(
    span(isRow ? "What " : "What attends to "),
    span(axis.labels[target.index], "tok"),
    span(isRow ? " attends to" : ""),
    span(` ${isRow ? "q" : "k"}=${axis.positions[target.index]}`, "pos"),
  );
}

/** The focus side list: the strongest keys of a row, or queries of a column, `top` ([{index, weight}]). */
export function showFocusList(refs, target, axis, top, info = null) {
  const other = target.axis === "row" ? "k" : "q";
  const tokenOf = (index) => {
    const group = axis.groups ? axis.groups[index] : [index];
    return info && group && group.length === 1 ? info.tokens[group[0]] : null;
  };
  refs.focusList.replaceChildren(
    ...top.map(({ index, weight }) => {
      const token = tokenOf(index);
      const item = el(
        "li",
        { title: token ? tokenFactsLine(token) : "" },
        span(axis.labels[index], "tok"),
        token ? tokenBadge(token) : null,
        span(formatValue(weight), "value"),
        span(`${other}=${axis.positions[index]}`, "pos"),
      );
      return item;
    }),
  );
  refs.focusList.dataset.index = String(target.index);
}

/** A tooltip of the view's own, for pages that give none. */
export function makeTooltip(panel) {
  const element = el("div", { className: "tooltip", attrs: { role: "tooltip" }, hidden: true });
  panel.append(element);
  return {
    element,
    show(nodes, x, y) {
      element.replaceChildren(...nodes);
      element.hidden = false;
      element.style.left = `${x + 14}px`;
      element.style.top = `${y + 14}px`;
    },
    hide() {
      element.hidden = true;
    },
  };
}
