// A layers × heads grid of one statistic per head and the helpers of a sortable table of heads, shared by the
// Atlas view and the corpus page.

import { colorOf } from "./color.js";

/** Short column titles for the table; the select shows the full names. */
export const STAT_LABELS = {
  entropy: ["Entropy", "entropy"],
  mean_distance: ["Distance", "mean distance"],
  special_share: ["Special", "on special tokens"],
  punctuation_share: ["Punct.", "on punctuation"],
  self_share: ["Self", "on itself"],
  previous_share: ["Previous", "on the previous token"],
  next_share: ["Next", "on the next token"],
  sink_share: ["First", "on the first token (sink)"],
};

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * The header row of a table of heads sorted by a column: one `buttonClass` button per `[name, title]` of
 * `columns` (its data-sort names the column), aria-sort on the column `sort` is by; `decorate(th, button, name)`
 * adds what else a table wants on each header cell.
 */
export function sortHeaderRow(columns, sort, buttonClass, decorate = () => {}) {
  const headRow = element("tr");
  for (const [name, title] of columns) {
    const th = element("th");
    th.scope = "col";
    const button = element("button", buttonClass, title);
    button.type = "button";
    button.dataset.sort = name;
    th.append(button);
    if (sort.by === name) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
    decorate(th, button, name);
    headRow.append(th);
  }
  return headRow;
}

/** Every [layer, head] sorted by `value(layer, head)` (`descending` or not), ties in layer, head order. */
export function sortedHeads(layers, heads, descending, value) {
  const rows = [];
  for (let l = 0; l < layers; l++) for (let h = 0; h < heads; h++) rows.push([l, h]);
  rows.sort((x, y) => {
    const a = value(...x);
    const b = value(...y);
    if (a !== b) return descending ? b - a : a - b;
    return x[0] - y[0] || x[1] - y[1]; // ties in layer, head order
  });
  return rows;
}

/** How a statistic is written in a cell: shares as two decimals, others with three significant digits. */
export function formatStat(name, value) {
  if (!Number.isFinite(value)) return String(value);
  if (name.endsWith("_share")) return value.toFixed(2);
  return value >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

/**
 * The colour domain [0, top] of a statistic: entropy 0–ln n (uniform attention), the others 0–their largest
 * value, so that the heads that stand out do (the legend gives the range).
 */
export function statDomain(name, values, n) {
  if (name === "entropy" && n > 1) return Math.log(n);
  let max = 0;
  for (const row of values) for (const v of row) if (v > max) max = v;
  return max > 0 ? max : 1;
}

/**
 * Fill `container` with a layers × heads grid of buttons, one per head, coloured by `values[layer][head]` under
 * `colorScale`, with "Head h" column and "Layer l" row headers. Cells are `button.atlas-cell` with
 * `data-layer`, `data-head`, `data-value`; the value is written in the cell when `cellSize` leaves room.
 * `label(layer, head, value)` gives each cell's accessible name; clicks are the caller's (event delegation).
 * Returns {cells: [[button]], setCurrent(layer, head)}.
 */
export function drawAtlasGrid(container, { values, colorScale, cellSize, format = (v) => String(v), label }) {
  const layers = values.length;
  const heads = layers ? values[0].length : 0;
  container.classList.add("atlas-grid");
  container.style.setProperty("--atlas-cell", `${cellSize}px`);
  container.style.setProperty("--atlas-heads", String(heads));
  const nodes = [element("div", "atlas-corner")];
  for (let h = 0; h < heads; h++) nodes.push(element("div", "atlas-col", String(h)));
  const cells = [];
  for (let l = 0; l < layers; l++) {
    nodes.push(element("div", "atlas-row", `Layer ${l}`));
    const row = [];
    for (let h = 0; h < heads; h++) {
      const value = values[l][h];
      const [r, g, b] = colorOf(colorScale, value);
      const cell = element("button", "atlas-cell", cellSize >= 40 ? format(value) : "");
      cell.type = "button";
      cell.dataset.layer = String(l);
      cell.dataset.head = String(h);
      cell.dataset.value = String(value);
      cell.style.backgroundColor = `rgb(${r}, ${g}, ${b})`;
      // dark text on light cells, white on dark ones (relative luminance)
      cell.classList.toggle("dark", 0.2126 * r + 0.7152 * g + 0.0722 * b < 140);
      cell.setAttribute("aria-label", label ? label(l, h, value) : `Layer ${l}, head ${h}: ${format(value)}`);
      row.push(cell);
      nodes.push(cell);
    }
    cells.push(row);
  }
  container.replaceChildren(...nodes);
  container.dataset.count = String(layers * heads);
  return {
    cells,
    setCurrent(layer, head) {
      for (const row of cells) {
        for (const cell of row) {
          const on = Number(cell.dataset.layer) === layer && Number(cell.dataset.head) === head;
          cell.classList.toggle("current", on);
          if (on) cell.setAttribute("aria-current", "true");
          else cell.removeAttribute("aria-current");
        }
      }
    },
  };
}
