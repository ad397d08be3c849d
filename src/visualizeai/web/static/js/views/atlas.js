// Head atlas: one statistic of every head (GET /head-stats: entropy, mean distance, shares of attention on special
// tokens, punctuation, self, previous, next and first token) as a layers × heads grid of coloured cells, and a
// table of all heads and all statistics, sortable by any column. Clicking a head (a cell or a table row) opens it
// in the Heatmap. The grid and table helpers are shared with the corpus page (lib/headgrid.js). A long input
// whose statistics the server refuses (work budget) shows the server's message with its figures.

import { drawLegend } from "../lib/canvas.js";
import { colorOf, interpolator, makeColorScale } from "../lib/color.js";
import { showRefusal, span } from "../lib/dom.js";
import { colorBarItems } from "../lib/figure.js";
import { STAT_LABELS, drawAtlasGrid, formatStat, sortHeaderRow, sortedHeads, statDomain } from "../lib/headgrid.js";

/** Shared controls this view uses: none (it shows every layer and head). */
export const controls = [];

/** What the keys do on this tab (the page writes the hint). */
export const keys = [[["Enter"], "open the head of the focused table row in the Heatmap"]];

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

export function mount(panel, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
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
  const refusal = element("div", "alert alert-warning view-refusal");
  refusal.hidden = true;
  panel.replaceChildren(toolbar, refusal, description, body);

  let shown = null; // {meta, stats, drawn}
  let stat = DEFAULT_STAT;
  let sort = { by: DEFAULT_STAT, descending: true };
  let request = 0;
  const statsCache = new Map(); // analysis key → Promise<HeadStats>

  function loadStats(meta) {
    let entry = statsCache.get(meta.key);
    if (!entry) {
      entry = ctx.source.headStats();
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
    const colorScale = makeColorScale(top, { interpolator: interpolator("viridis") });
    shown.colorScale = colorScale;
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
    let stats;
    try {
      stats = await loadStats(meta);
    } catch (err) {
      if (mine !== request) return;
      if (!showRefusal(refusal, err, "head statistics")) throw err;
      grid.dataset.state = "refused";
      body.hidden = true;
      return;
    }
    if (mine !== request) return;
    refusal.hidden = true;
    body.hidden = false;
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
    ctx.expose({ view: "atlas", meta, stat, stats });
  }

  function chooseStat(name) {
    if (!shown || !shown.stats.names.includes(name)) return;
    stat = name;
    statSelect.value = name;
    paintGrid();
    fillTable();
    ctx.expose({ view: "atlas", meta: shown.meta, stat, stats: shown.stats });
  }

  /** The grid as a scene for the Export menu: one cell per head with its value, layer and head labels. */
  function figureScene() {
    if (!shown || !shown.colorScale || grid.dataset.state !== "ready") return null;
    const { meta, stats, colorScale } = shown;
    const values = stats.values[stat];
    const cell = 44;
    const left = 58;
    const top = 18;
    const labels = [];
    const cells = [];
    for (let h = 0; h < meta.heads; h++) {
      labels.push({ type: "text", x: left + h * (cell + GAP) + cell / 2, y: 8, text: `H${h}`, size: 11, fill: "#64748b", anchor: "middle" });
    }
    values.forEach((row, l) => {
      const y = top + l * (cell + GAP);
      labels.push({ type: "text", x: left - 8, y: y + cell / 2, text: `Layer ${l}`, size: 11, fill: "#64748b", anchor: "end" });
      row.forEach((value, h) => {
        const [r, g, b] = colorOf(colorScale, value);
        const x = left + h * (cell + GAP);
        const dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 140;
        cells.push(
          { type: "rect", x, y, w: cell, h: cell, fill: `rgb(${r}, ${g}, ${b})` },
          { type: "text", x: x + cell / 2, y: y + cell / 2, text: formatStat(stat, value), size: 10, anchor: "middle", fill: dark ? "#ffffff" : "#1e293b" },
        );
      });
    });
    const gridHeight = top + values.length * (cell + GAP);
    const gridWidth = left + meta.heads * (cell + GAP);
    const [short, name] = STAT_LABELS[stat] || [stat, stat];
    return {
      caption: `${caption.textContent} · statistic: ${short}`,
      name: `atlas-${stat.replace(/_/g, "-")}`,
      scene: {
        subtitle: `${short}: ${stats.descriptions[stat] || name}`,
        width: Math.max(gridWidth, left + 440),
        height: gridHeight + 34,
        items: [
          { type: "group", role: "labels", items: labels },
          { type: "group", role: "cells", items: cells },
          ...colorBarItems(colorScale, left, gridHeight + 6, 240, { title: name }),
        ],
      },
    };
  }
  ctx.setFigure?.(figureScene);

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
  statSelect.addEventListener("change", onStat, { signal });
  grid.addEventListener("click", onGridClick, { signal });
  grid.addEventListener("pointermove", onGridHover, { signal });
  grid.addEventListener("pointerleave", onLeave, { signal });
  table.addEventListener("click", onTableClick, { signal });
  table.addEventListener("keydown", onTableKey, { signal });

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
