// Corpus atlas page: a summary.parquet of `visualizeai corpus` (read by POST /corpus/summary) as a layers × heads
// grid coloured by the corpus mean of one statistic (drawn by lib/headgrid.js drawAtlasGrid), a sortable list of the
// heads, and the chosen head's mean, standard deviation and count for every statistic. With the run's
// extremes.parquet (POST /corpus/extremes), the chosen head's texts where the statistic is highest and lowest,
// each opening its analysis at that layer and head. Text only via textContent.

import { ApiError, analysisPath, analyze, readCorpusExtremes, readCorpusQKMap, readCorpusSummary } from "../lib/api.js";
import { drawLegend } from "../lib/canvas.js";
import { interpolator, makeColorScale } from "../lib/color.js";
import { createTooltip, span } from "../lib/dom.js";
import { STAT_LABELS, drawAtlasGrid, formatStat, sortHeaderRow, sortedHeads, statDomain } from "../lib/headgrid.js";
import { mountCorpusQKMap } from "../views/corpusqk.js";

const DEFAULT_STAT = "previous_share";
const MIN_CELL = 30; // CSS px
const MAX_CELL = 64;
const ROW_HEADER = 64;
const GAP = 3;

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

const statTitle = (name) => (STAT_LABELS[name] || [name, name])[1];
const statShort = (name) => (STAT_LABELS[name] || [name])[0];
const SNIPPET_CHARS = 160;

/** Entries of `extremes` for one statistic, layer and head, by side, in rank order. */
export function headExtremes(extremes, stat, layer, head) {
  const out = { high: [], low: [] };
  if (!extremes) return out;
  for (const e of extremes.entries) {
    if (e.statistic === stat && e.layer === layer && e.head === head && out[e.side]) out[e.side].push(e);
  }
  out.high.sort((a, b) => a.rank - b.rank);
  out.low.sort((a, b) => a.rank - b.rank);
  return out;
}

const show = (name, value) => (value === null || value === undefined || !Number.isFinite(value) ? "—" : formatStat(name, value));

function init() {
  const app = $("corpus-app");
  if (!app) return;
  const maxBytes = Number(app.dataset.maxBytes) || Infinity;
  const input = $("summary-file");
  const statusBox = $("corpus-status");
  const statusText = $("corpus-status-text");
  const errorBox = $("corpus-error");
  const result = $("corpus-result");
  const select = $("corpus-stat");
  const grid = $("corpus-grid");
  const legend = $("corpus-legend");
  const list = $("corpus-list");
  const tooltip = createTooltip($("tooltip"));

  let data = null; // the CorpusSummaryResponse
  let extremes = null; // the CorpusExtremesResponse, when its file is loaded
  const extremesInput = $("extremes-file");
  let qkMap = null; // the CorpusQKMapResponse, when its file is loaded
  const qkInput = $("qk-file");
  const qkView = mountCorpusQKMap($("corpus-qk-map"), tooltip);
  let stat = DEFAULT_STAT;
  let sort = { by: "mean", descending: true };
  let selected = null; // [layer, head]
  let drawn = null;
  let request = 0;

  function publish() {
    window.visualizeai = {
      page: "corpus",
      summary: data,
      extremes,
      qkMap,
      qkPoint: (i) => qkView.pointAt(i),
      stat,
      sort: { ...sort },
      selected,
    };
  }

  function fail(message) {
    statusBox.hidden = true;
    errorBox.textContent = message;
    errorBox.hidden = false;
    grid.dataset.state = data ? "ready" : "empty";
  }

  async function load(file) {
    errorBox.hidden = true;
    if (!file) return;
    if (file.size > maxBytes) {
      fail(`${file.name} is ${file.size.toLocaleString()} bytes; the limit is ${maxBytes.toLocaleString()}.`);
      return;
    }
    const mine = ++request;
    statusText.textContent = `Reading ${file.name}…`;
    statusBox.hidden = false;
    grid.dataset.state = "loading";
    let summary;
    try {
      summary = await readCorpusSummary(file);
    } catch (err) {
      if (mine === request) fail(err instanceof ApiError ? err.message : `Could not read the file (${err}).`);
      return;
    }
    if (mine !== request) return;
    statusBox.hidden = true;
    data = summary;
    if (!data.statistics.includes(stat)) stat = data.statistics[0];
    selected = null;
    sort = { by: "mean", descending: true };
    fillMeta();
    fillSelect();
    result.hidden = false;
    paint();
    choose(null);
    grid.dataset.state = "ready";
  }

  function fillMeta() {
    const rows = [
      ["Model", data.model || "unknown"],
      ["Texts", data.texts === null ? "unknown" : data.texts.toLocaleString()],
      ["Heads", `${data.layers} layers × ${data.heads} heads`],
    ];
    if (data.truncated_texts) rows.push(["Truncated", `${data.truncated_texts.toLocaleString()} texts`]);
    if (data.skipped) rows.push(["Empty, skipped", data.skipped.toLocaleString()]);
    $("corpus-meta").replaceChildren(
      ...rows.map(([term, value]) => {
        const div = element("div");
        div.append(element("dt", "", term), element("dd", "", value));
        return div;
      }),
    );
  }

  function fillSelect() {
    select.replaceChildren(
      ...data.statistics.map((name) => {
        const option = element("option", "", statTitle(name));
        option.value = name;
        option.title = data.descriptions[name] || "";
        return option;
      }),
    );
    select.value = stat;
  }

  function cellSize() {
    const box = grid.parentElement.clientWidth || 600;
    const room = Math.min(box, 760) - ROW_HEADER - GAP * (data.heads + 1);
    return Math.max(MIN_CELL, Math.min(MAX_CELL, Math.floor(room / data.heads)));
  }

  function paint() {
    const values = data.mean[stat].map((row) => row.map((v) => (v === null ? Number.NaN : v)));
    const colorScale = makeColorScale(statDomain(stat, values, 0), { interpolator: interpolator("viridis") });
    drawn = drawAtlasGrid(grid, {
      values,
      colorScale,
      cellSize: cellSize(),
      format: (v) => show(stat, v),
      label: (l, h, v) => `Layer ${l}, head ${h}: mean ${statTitle(stat)} ${show(stat, v)}`,
    });
    drawLegend(legend, colorScale, { width: 240 });
    $("corpus-legend-title").textContent = `Corpus mean of ${statTitle(stat)}`;
    $("corpus-description").replaceChildren(
      span(`${statTitle(stat)}: `, "corpus-stat-name"),
      span(data.descriptions[stat] || ""),
    );
    grid.dataset.stat = stat;
    if (selected) drawn.setCurrent(...selected);
    fillList();
    fillDetail();
    publish();
  }

  function fillList() {
    const columns = [
      ["layer", "Layer"],
      ["head", "Head"],
      ["mean", `Mean ${statShort(stat).toLowerCase()}`],
      ["std", "Std"],
      ["count", "Texts"],
    ];
    list.tHead.replaceChildren(sortHeaderRow(columns, sort, "corpus-sort"));
    const value = (l, h) => {
      if (sort.by === "layer") return l;
      if (sort.by === "head") return h;
      const v = data[sort.by][stat][l][h];
      return v === null ? -Infinity : v; // heads without a value sort last when descending
    };
    const rows = sortedHeads(data.layers, data.heads, sort.descending, value);
    list.tBodies[0].replaceChildren(
      ...rows.map(([l, h]) => {
        const tr = element("tr");
        tr.dataset.layer = String(l);
        tr.dataset.head = String(h);
        tr.tabIndex = 0;
        tr.classList.toggle("current", selected !== null && selected[0] === l && selected[1] === h);
        tr.append(
          element("td", "num", String(l)),
          element("td", "num", String(h)),
          element("td", "num", show(stat, data.mean[stat][l][h])),
          element("td", "num", show(stat, data.std[stat][l][h])),
          element("td", "num", data.count[stat][l][h].toLocaleString()),
        );
        return tr;
      }),
    );
    list.dataset.sort = `${sort.by}:${sort.descending ? "desc" : "asc"}`;
  }

  /**
   * Read an optional file of the run (`read`: its api.js reader) into the section `boxId`; `take(answer)` keeps
   * it (null when it failed) and `fill()` draws it. The limit and the server's refusals are said as for the summary.
   */
  async function loadOptional(file, read, boxId, take, fill) {
    errorBox.hidden = true;
    if (!file) return;
    if (file.size > maxBytes) {
      fail(`${file.name} is ${file.size.toLocaleString()} bytes; the limit is ${maxBytes.toLocaleString()}.`);
      return;
    }
    const box = $(boxId);
    box.dataset.state = "loading";
    try {
      take(await read(file));
    } catch (err) {
      take(null);
      box.dataset.state = "error";
      fail(err instanceof ApiError ? err.message : `Could not read the file (${err}).`);
      return;
    }
    fill();
    publish();
  }

  function fillQKMap() {
    const box = $("corpus-qk");
    box.hidden = !qkMap;
    if (!qkMap) return;
    const [l, h] = selected || [0, 0];
    if (l >= qkMap.layers || h >= qkMap.heads) {
      qkView.clear();
      box.dataset.state = "other-model";
      return;
    }
    qkView.show(qkMap, l, h);
    box.dataset.state = "ready";
  }

  /** One entry of a head's list: its value, where it is in the corpus, a snippet and an Open button. */
  function extremeItem(e, layer, head) {
    const li = element("li");
    li.dataset.textIndex = String(e.text_index);
    li.dataset.value = String(e.value);
    const text = extremes.texts[e.text];
    const where = e.window ? `text ${e.text_index}, window ${e.window}` : `text ${e.text_index}`;
    const snippet = text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS)}…` : text;
    const open = element("button", "button secondary small", "Open analysis");
    open.type = "button";
    open.title = `Analyse this text with ${extremes.model || "the default model"} at layer ${layer}, head ${head}`;
    open.addEventListener("click", () => openText(open, text, layer, head));
    li.append(
      element("span", "extreme-value", show(stat, e.value)),
      element("span", "extreme-where", `${where} · ${e.n_tokens.toLocaleString()} tokens${e.text_cut ? " · cut" : ""}`),
      element("span", "extreme-snippet", snippet),
      open,
    );
    return li;
  }

  async function openText(button, text, layer, head) {
    button.disabled = true;
    button.textContent = "Analysing…";
    try {
      const meta = await analyze(extremes.model, text, { brief: true });
      const query = new URLSearchParams({ view: "heatmap", layer: String(layer), head: String(head) });
      window.location.assign(analysisPath(meta.key, query));
    } catch (err) {
      button.disabled = false;
      button.textContent = "Open analysis";
      fail(err instanceof ApiError ? err.message : `Could not analyse the text (${err}).`);
    }
  }

  function fillExtremes() {
    const box = $("corpus-extremes");
    box.hidden = !extremes;
    if (!extremes) return;
    const note = $("corpus-extremes-note");
    if (data && (extremes.layers !== data.layers || extremes.heads !== data.heads || extremes.model !== data.model)) {
      note.textContent = `This extremes file is of ${extremes.model || "another model"} (${extremes.layers} × ${extremes.heads}), not of the summary's model.`;
    } else {
      note.textContent = "";
    }
    if (!selected) {
      $("corpus-extremes-title").textContent = "Choose a head for the texts where it is most extreme";
      $("corpus-extremes-high").replaceChildren();
      $("corpus-extremes-low").replaceChildren();
      box.dataset.state = "ready";
      return;
    }
    const [l, h] = selected;
    const lists = headExtremes(extremes, stat, l, h);
    $("corpus-extremes-title").textContent = `Most extreme texts of layer ${l}, head ${h}: ${statTitle(stat)}`;
    $("corpus-extremes-high").replaceChildren(...lists.high.map((e) => extremeItem(e, l, h)));
    $("corpus-extremes-low").replaceChildren(...lists.low.map((e) => extremeItem(e, l, h)));
    box.dataset.state = "ready";
    box.dataset.head = `${l}:${h}`;
    box.dataset.stat = stat;
  }

  function fillDetail() {
    const title = $("corpus-detail-title");
    const table = $("corpus-detail-table");
    fillExtremes();
    fillQKMap();
    if (!selected) {
      title.textContent = "No head chosen";
      table.hidden = true;
      return;
    }
    const [l, h] = selected;
    title.textContent = `Layer ${l} · head ${h}`;
    table.tBodies[0].replaceChildren(
      ...data.statistics.map((name) => {
        const tr = element("tr");
        tr.dataset.stat = name;
        tr.classList.toggle("chosen", name === stat);
        const th = element("th", "", statTitle(name));
        th.scope = "row";
        th.title = data.descriptions[name] || "";
        tr.append(
          th,
          element("td", "num", show(name, data.mean[name][l][h])),
          element("td", "num", show(name, data.std[name][l][h])),
          element("td", "num", data.count[name][l][h].toLocaleString()),
        );
        return tr;
      }),
    );
    table.hidden = false;
  }

  function choose(head) {
    selected = head;
    if (drawn) {
      if (head) drawn.setCurrent(...head);
      else drawn.setCurrent(-1, -1);
    }
    for (const tr of list.tBodies[0].rows) {
      tr.classList.toggle(
        "current",
        head !== null && Number(tr.dataset.layer) === head[0] && Number(tr.dataset.head) === head[1],
      );
    }
    fillDetail();
    publish();
  }

  input.addEventListener("change", () => load(input.files && input.files[0]));
  extremesInput.addEventListener("change", () =>
    loadOptional(extremesInput.files && extremesInput.files[0], readCorpusExtremes, "corpus-extremes", (got) => {
      extremes = got;
    }, fillExtremes),
  );
  qkInput.addEventListener("change", () =>
    loadOptional(qkInput.files && qkInput.files[0], readCorpusQKMap, "corpus-qk", (got) => {
      qkMap = got;
    }, fillQKMap),
  );
  select.addEventListener("change", () => {
    stat = select.value;
    paint();
  });
  grid.addEventListener("click", (event) => {
    const cell = event.target.closest ? event.target.closest("button.atlas-cell") : null;
    if (cell && grid.contains(cell)) choose([Number(cell.dataset.layer), Number(cell.dataset.head)]);
  });
  grid.addEventListener("pointermove", (event) => {
    const cell = event.target.closest ? event.target.closest("button.atlas-cell") : null;
    if (!cell || !data) {
      tooltip.hide();
      return;
    }
    const l = Number(cell.dataset.layer);
    const h = Number(cell.dataset.head);
    tooltip.show(
      [
        span(`Layer ${l} · head ${h}`, "value"),
        element("div", "", `${statTitle(stat)}: ${show(stat, data.mean[stat][l][h])} ± ${show(stat, data.std[stat][l][h])}`),
        element("div", "pos", `over ${data.count[stat][l][h].toLocaleString()} texts`),
      ],
      event.clientX,
      event.clientY,
    );
  });
  grid.addEventListener("pointerleave", () => tooltip.hide());
  list.addEventListener("click", (event) => {
    const button = event.target.closest ? event.target.closest("button.corpus-sort") : null;
    if (button) {
      const by = button.dataset.sort;
      sort = sort.by === by ? { by, descending: !sort.descending } : { by, descending: by !== "layer" && by !== "head" };
      fillList();
      publish();
      return;
    }
    const tr = event.target.closest ? event.target.closest("tbody tr") : null;
    if (tr) choose([Number(tr.dataset.layer), Number(tr.dataset.head)]);
  });
  list.addEventListener("keydown", (event) => {
    const tr = event.target.closest ? event.target.closest("tbody tr") : null;
    if (tr && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      choose([Number(tr.dataset.layer), Number(tr.dataset.head)]);
    }
  });
  let lastWidth = grid.parentElement.clientWidth;
  new ResizeObserver(() => {
    if (data && grid.parentElement.clientWidth !== lastWidth) {
      lastWidth = grid.parentElement.clientWidth;
      paint();
    }
  }).observe(grid.parentElement);
  publish();
}

init();
