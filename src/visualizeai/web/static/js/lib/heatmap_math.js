// The deep-zoom heatmap's pure rules (js/views/heatmap.js): what a state selects, the caption, the label step
// of the axes, strips and top keys of a matrix held whole, displayed rows of token positions, the order in
// which neighbouring heads are fetched ahead, and where a cell or a label is on the screen. No DOM.

import { labelFont } from "./matrix.js";
import { aggregateOf } from "./options.js";
import { cellSize } from "./viewport.js";

export { labelFont };

const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000];

/** The smallest "nice" step (1, 2, 4, 5, 10, …, 10,000, then multiples of 10,000) that is at least `minimum`. */
export function niceStep(minimum) {
  return NICE_STEPS.find((s) => s >= minimum) ?? Math.ceil(minimum / 10000) * 10000;
}

/** Every how many rows a label is written for cells of `cell` CSS px (1: every row). */
export function axisStep(cell) {
  return niceStep(Math.ceil((labelFont(cell) + 3) / cell));
}

/** Layer and head of the tiles API for a state, null where averaged, and the aggregate ("none", "mean_…"). */
export function selectionOf(state) {
  const agg = aggregateOf(state);
  return {
    agg,
    layer: agg === "none" || agg === "mean_heads" ? state.layer : null,
    head: agg === "none" || agg === "mean_layers" ? state.head : null,
  };
}

/** "Layer 3 · head 2 · 16,000 tokens", the words for what is shown. */
export function caption(sel, info, n, transformed) {
  const parts = [];
  if (sel.agg === "none") parts.push(`Layer ${sel.layer} · head ${sel.head}`);
  else if (sel.agg === "mean_heads") parts.push(`Layer ${sel.layer} · mean of ${info.heads} heads`);
  else if (sel.agg === "mean_layers") parts.push(`Head ${sel.head} · mean over ${info.layers} layers`);
  else parts.push(`Mean of all ${info.layers * info.heads} heads`);
  parts.push(`${n.toLocaleString("en")} ${transformed && transformed.mergeWords ? "words" : "tokens"}`);
  if (transformed && transformed.hideSpecial) parts.push("special tokens hidden, rows renormalised");
  return parts.join(" · ");
}

/** Row (axis "row") or column `index` of a dense n × n matrix. */
export function denseStrip(data, n, { axis, index }) {
  const strip = new Float32Array(n);
  for (let j = 0; j < n; j++) strip[j] = axis === "row" ? data[index * n + j] : data[j * n + index];
  return strip;
}

/** The `k` largest of `values` as [{index, weight}], largest first (ties: the lower index first). */
export function topOf(values, k) {
  const best = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (best.length === k && !(v > best[k - 1].weight)) continue;
    let at = best.length;
    while (at > 0 && v > best[at - 1].weight) at--;
    best.splice(at, 0, { index: i, weight: v });
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * The `k` keys rows [a, b) of a dense n × n matrix attend to most on average, as [{index, weight}] with
 * `index` the first token position of the key's group (`groups[i]`: the positions displayed row i stands for).
 */
export function denseTopKeys(data, n, [a, b], k, groups) {
  const mean = new Float32Array(n);
  for (let r = a; r < b; r++) for (let j = 0; j < n; j++) mean[j] += data[r * n + j];
  for (let j = 0; j < n; j++) mean[j] /= b - a;
  return topOf(mean, k).map(({ index, weight }) => ({ index: groups[index][0], weight }));
}

/** Displayed rows [a, b) covering token positions [p, q) (`groups` null: rows are positions). */
export function displayedRange(groups, [p, q]) {
  if (!groups) return [p, q];
  let a = -1;
  let b = -1;
  groups.forEach((g, i) => {
    if (g.some((t) => t >= p && t < q)) {
      if (a < 0) a = i;
      b = i + 1;
    }
  });
  return a < 0 ? [0, 1] : [a, b];
}

/**
 * The heads whose tiles are fetched ahead once (layer, head) is drawn, most likely next first: the next and
 * previous head (← →), then the same head in the next and previous layer (↑ ↓); only those that exist.
 */
export function neighbourHeads({ layer, head }, layers, heads) {
  const around = [
    [layer, head + 1],
    [layer, head - 1],
    [layer + 1, head],
    [layer - 1, head],
  ];
  return around.filter(([l, h]) => l >= 0 && h >= 0 && l < layers && h < heads);
}

/** The point in the grid (CSS px from its top-left corner) of the centre of displayed cell (q, k), or null
 * outside the visible grid. */
export function cellCentre(view, grid, n, q, k) {
  const cell = cellSize(view, grid, n);
  const x = (k + 0.5 - view.x0) * cell;
  const y = (q + 0.5 - view.y0) * cell;
  return x < 0 || y < 0 || x > grid || y > grid ? null : { x, y };
}

/** Where along its axis (CSS px from the grid's edge) the label of displayed row/column `i` is, or null. */
export function labelAlong(view, grid, n, axis, i) {
  const along = (i + 0.5 - (axis === "row" ? view.y0 : view.x0)) * cellSize(view, grid, n);
  return along < 0 || along > grid ? null : along;
}
