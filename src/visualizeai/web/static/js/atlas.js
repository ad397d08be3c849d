// Head atlas: one statistic of every head (GET /head-stats: entropy, mean distance, shares of attention on special
// tokens, punctuation, self, previous, next and first token) as a layers × heads grid of coloured cells, and a
// table of all heads and all statistics, sortable by any column. Clicking a head (a cell or a table row) opens it
// in the Heatmap. The grid is drawn by drawAtlasGrid, exported for other pages (the corpus summary).

import { fetchHeadStats } from "./api.js";
import { drawLegend, makeColorScale } from "./colorscale.js";
import { span } from "./tooltip.js";

/** Shared controls this view uses: none (it shows every layer and head). */
export const controls = [];

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

const DEFAULT_STAT = "previous_share";
const MIN_CELL = 30; // CSS px
const MAX_CELL = 64;
const ROW_HEADER = 64;
const GAP = 3;

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

/** `[r, g, b]` of `value` under a colorscale.js scale (its lookup table). */
export function colorOf(colorScale, value) {
  const last = colorScale.lut.length / 4 - 1;
  let idx = value > 0 ? (colorScale.unit(value) * last + 0.5) | 0 : 0;
  if (idx > last) idx = last;
  return [colorScale.lut[4 * idx], colorScale.lut[4 * idx + 1], colorScale.lut[4 * idx + 2]];
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

export function mount(panel, ctx) {
  panel.classList.add("atlas-panel");
  const toolbar = element("div", "view-toolbar");
  const caption = element("p", "view-caption");
  caption.id = "atlas-caption";
  const statControl = element("div", "control");
  const statLabel = element("label", "", "Statistic");
  statLabel.htmlFor = "atlas-stat";
  const statSelect = element("select");
  statSelect.id = "atlas-stat";
  statSelect.setAttribute("aria-describedby", "atlas-description");
  statControl.append(statLabel, statSelect);
  toolbar.append(caption, statControl);
  const description = element("p", "hint atlas-description");
  description.id = "atlas-description";

  const body = element("div", "atlas-body");
  const gridBox = element("div", "atlas-grid-box");
  const grid = element("div");
  grid.id = "atlas-grid";
  grid.dataset.state = "empty";
  grid.setAttribute("role", "group");
  grid.setAttribute("aria-label", "Heads by layer and head, coloured by the statistic");
  const legendBox = element("div", "atlas-legend");
  const legend = element("canvas");
  legend.id = "atlas-legend";
  legend.setAttribute("aria-hidden", "true");
  legendBox.append(legend);
  const gridHint = element("p", "hint", "Click a head to open it in the Heatmap.");
  gridBox.append(grid, legendBox, gridHint);

  const tableBox = element("div", "atlas-table-box");
  const table = element("table", "atlas-table");
  table.id = "atlas-table";
  const tableCaption = element("caption", "", "All heads; click a column title to sort, a row to open the head.");
  const thead = element("thead");
  const tbody = element("tbody");
  table.append(tableCaption, thead, tbody);
  tableBox.append(table);
  body.append(gridBox, tableBox);
  panel.replaceChildren(toolbar, description, body);

  let shown = null; // {meta, stats, drawn}
  let stat = DEFAULT_STAT;
  let sort = { by: DEFAULT_STAT, descending: true };
  let request = 0;
  const statsCache = new Map(); // analysis key → Promise<HeadStats>

  function loadStats(meta) {
    let entry = statsCache.get(meta.key);
    if (!entry) {
      entry = ctx.withKey((key) => fetchHeadStats(key));
      entry.catch(() => statsCache.delete(meta.key));
      statsCache.clear();
      statsCache.set(meta.key, entry);
    }
    return entry;
  }

  function fillStatSelect(stats) {
    statSelect.replaceChildren(
      ...stats.names.map((name) => {
        const option = element("option", "", (STAT_LABELS[name] || [name, name])[1]);
        option.value = name;
        option.title = stats.descriptions[name] || "";
        return option;
      }),
    );
    if (!stats.names.includes(stat)) stat = stats.names[0];
    statSelect.value = stat;
  }

  function cellSize(meta) {
    const room = Math.min(panel.clientWidth - 8, 900) - ROW_HEADER - GAP * (meta.heads + 1);
    return Math.max(MIN_CELL, Math.min(MAX_CELL, Math.floor(room / meta.heads)));
  }

  function paintGrid() {
    const { meta, stats } = shown;
    const values = stats.values[stat];
    const top = statDomain(stat, values, meta.n);
    const colorScale = makeColorScale(top, { interpolator: window.d3.interpolateViridis });
    shown.drawn = drawAtlasGrid(grid, {
      values,
      colorScale,
      cellSize: cellSize(meta),
      format: (v) => formatStat(stat, v),
      label: (l, h, v) => `Layer ${l}, head ${h}: ${STAT_LABELS[stat]?.[1] || stat} ${formatStat(stat, v)}`,
    });
    drawLegend(legend, colorScale, { width: 240 });
    description.replaceChildren(
      span(`${(STAT_LABELS[stat] || [stat, stat])[1]}: `, "atlas-stat-name"),
      span(stats.descriptions[stat] || ""),
    );
    grid.dataset.stat = stat;
    const state = ctx.store.get();
    shown.drawn.setCurrent(state.layer, state.head);
  }

  function fillTable() {
    const { stats } = shown;
    const columns = [
      ["layer", "Layer"],
      ["head", "Head"],
      ...stats.names.map((n) => [n, (STAT_LABELS[n] || [n])[0]]),
    ];
    const headRow = sortHeaderRow(columns, sort, "atlas-sort", (th, button, name) => {
      if (stats.descriptions[name]) button.title = stats.descriptions[name];
      th.classList.toggle("chosen", name === stat);
    });
    thead.replaceChildren(headRow);
    const key = (l, h) => (sort.by === "layer" ? l : sort.by === "head" ? h : stats.values[sort.by][l][h]);
    const rows = sortedHeads(stats.layers, stats.heads, sort.descending, key);
    const state = ctx.store.get();
    tbody.replaceChildren(
      ...rows.map(([l, h]) => {
        const tr = element("tr");
        tr.dataset.layer = String(l);
        tr.dataset.head = String(h);
        tr.tabIndex = 0;
        tr.classList.toggle("current", l === state.layer && h === state.head);
        tr.append(element("td", "num", String(l)), element("td", "num", String(h)));
        for (const name of stats.names) {
          const td = element("td", "num", formatStat(name, stats.values[name][l][h]));
          td.classList.toggle("chosen", name === stat);
          tr.append(td);
        }
        return tr;
      }),
    );
    table.dataset.sort = `${sort.by}:${sort.descending ? "desc" : "asc"}`;
  }

  async function update(state) {
    const { meta } = state;
    if (!meta) return;
    if (shown && shown.meta === meta) {
      shown.drawn.setCurrent(state.layer, state.head);
      return;
    }
    const mine = ++request;
    const started = performance.now();
    grid.dataset.state = "loading";
    const stats = await loadStats(meta);
    if (mine !== request) return;
    shown = { meta, stats, drawn: null };
    fillStatSelect(stats);
    if (!stats.names.includes(sort.by) && sort.by !== "layer" && sort.by !== "head") {
      sort = { by: stat, descending: true };
    }
    paintGrid();
    fillTable();
    caption.textContent = `Head atlas · ${meta.layers} layers × ${meta.heads} heads · ${meta.n} tokens`;
    grid.dataset.totalMs = String(Math.round((performance.now() - started) * 10) / 10);
    grid.dataset.state = "ready";
    window.__viz = { view: "atlas", meta, stat, stats };
  }

  function chooseStat(name) {
    if (!shown || !shown.stats.names.includes(name)) return;
    stat = name;
    statSelect.value = name;
    paintGrid();
    fillTable();
    window.__viz = { view: "atlas", meta: shown.meta, stat, stats: shown.stats };
  }

  function open(layer, head) {
    ctx.tooltip.hide();
    ctx.store.set({ layer, head, view: "heatmap", meanHeads: false, meanLayers: false });
  }

  const onStat = () => {
    sort = { by: statSelect.value, descending: true };
    chooseStat(statSelect.value);
  };
  const onGridClick = (event) => {
    const cell = event.target.closest ? event.target.closest("button.atlas-cell") : null;
    if (cell && grid.contains(cell)) open(Number(cell.dataset.layer), Number(cell.dataset.head));
  };
  const onGridHover = (event) => {
    const cell = event.target.closest ? event.target.closest("button.atlas-cell") : null;
    if (!cell || !shown) {
      ctx.tooltip.hide();
      return;
    }
    const value = Number(cell.dataset.value);
    ctx.tooltip.show(
      [
        span(`Layer ${cell.dataset.layer} · head ${cell.dataset.head}`, "value"),
        element("div", "", `${(STAT_LABELS[stat] || [stat, stat])[1]}: ${formatStat(stat, value)}`),
        element("div", "pos", "Click to open in the Heatmap"),
      ],
      event.clientX,
      event.clientY,
    );
  };
  const onLeave = () => ctx.tooltip.hide();
  const onTableClick = (event) => {
    const sortButton = event.target.closest ? event.target.closest("button.atlas-sort") : null;
    if (sortButton) {
      const by = sortButton.dataset.sort;
      // a second click reverses; a statistic sorts largest first, layer and head in their own order
      const descending = sort.by === by ? !sort.descending : by !== "layer" && by !== "head";
      sort = { by, descending };
      if (shown && shown.stats.names.includes(by)) chooseStat(by);
      else if (shown) fillTable();
      return;
    }
    const tr = event.target.closest ? event.target.closest("tbody tr") : null;
    if (tr) open(Number(tr.dataset.layer), Number(tr.dataset.head));
  };
  const onTableKey = (event) => {
    const tr = event.target.closest ? event.target.closest("tbody tr") : null;
    if (tr && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      open(Number(tr.dataset.layer), Number(tr.dataset.head));
    }
  };
  let lastWidth = panel.clientWidth;
  const resize = new ResizeObserver(() => {
    if (shown && panel.clientWidth !== lastWidth) {
      lastWidth = panel.clientWidth;
      paintGrid();
    }
  });
  resize.observe(panel);
  statSelect.addEventListener("change", onStat);
  grid.addEventListener("click", onGridClick);
  grid.addEventListener("pointermove", onGridHover);
  grid.addEventListener("pointerleave", onLeave);
  table.addEventListener("click", onTableClick);
  table.addEventListener("keydown", onTableKey);

  return {
    update,
    unmount() {
      request++;
      resize.disconnect();
      statSelect.removeEventListener("change", onStat);
      grid.removeEventListener("click", onGridClick);
      grid.removeEventListener("pointermove", onGridHover);
      grid.removeEventListener("pointerleave", onLeave);
      table.removeEventListener("click", onTableClick);
      table.removeEventListener("keydown", onTableKey);
      ctx.tooltip.hide();
    },
  };
}
