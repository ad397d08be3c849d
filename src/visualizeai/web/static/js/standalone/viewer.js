// The viewer of a standalone VisualizeAI export: one HTML file, no network, no dependencies.
// visualizeai/standalone.py inlines this file into the export. The data sits in two non-executable blocks:
//   <script type="application/json" id="viz-meta">        tokens, shape, model, included layers, …
//   <script type="application/octet-stream" id="viz-attention">  base64 of little-endian float16,
//        C order, shape [included layers, heads, n, n] (rows = queries, columns = keys)
// Tokens reach the page only through textContent and canvas fillText, never as HTML.
(function () {
  "use strict";

  const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  // ColorBrewer "Blues" (9 classes), interpolated linearly: the same table as matplotlib's "Blues".
  const BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"];
  const LUT_SIZE = 256;
  const LOG_DECADES = 3;
  const SCALES = { linear: "linear", sqrt: "square root", log: "log (3 decades)" };
  const MAX_CELL = 40;
  const MAX_LABEL_WIDTH = 130;
  const LABEL_GAP = 6;
  const NICE_STEPS = [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500];
  const THUMB = 48; // thumbnail resolution in the all-heads overview

  const $ = (id) => document.getElementById(id);

  // ---- data ------------------------------------------------------------------------------------------

  function readMeta() {
    return JSON.parse($("viz-meta").textContent);
  }

  function readHalves(block) {
    const text = block.textContent.replace(/\s+/g, "");
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    const halves = new Uint16Array(bytes.length / 2);
    for (let i = 0; i < halves.length; i++) halves[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    return halves;
  }

  function halfToFloat(h) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x03ff;
    if (exponent === 0) return sign * fraction * 2 ** -24;
    if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }

  const HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) HALF[h] = halfToFloat(h);

  // ---- colours ---------------------------------------------------------------------------------------

  function hexToRgb(hex) {
    const v = Number.parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  const LUT = (() => {
    const stops = BLUES.map(hexToRgb);
    const lut = new Uint8ClampedArray(LUT_SIZE * 4);
    for (let i = 0; i < LUT_SIZE; i++) {
      const t = (i / (LUT_SIZE - 1)) * (stops.length - 1);
      const k = Math.min(Math.floor(t), stops.length - 2);
      const f = t - k;
      for (let c = 0; c < 3; c++) lut[4 * i + c] = Math.round(stops[k][c] + (stops[k + 1][c] - stops[k][c]) * f);
      lut[4 * i + 3] = 255;
    }
    return lut;
  })();

  /** value → position on the colour bar in [0, 1], as on the web page and in the figures. */
  function unitFunction(scale, max) {
    const top = max > 0 ? max : 1;
    if (scale === "sqrt") return (v) => Math.sqrt(Math.min(Math.max(v / top, 0), 1));
    if (scale === "log") return (v) => (v > 0 ? Math.min(Math.max(Math.log10(v / top) / LOG_DECADES + 1, 0), 1) : 0);
    return (v) => Math.min(Math.max(v / top, 0), 1);
  }

  function paint(image, values, unit) {
    const out = image.data;
    for (let p = 0, q = 0; p < values.length; p++, q += 4) {
      const v = values[p];
      const o = (v > 0 ? Math.round(unit(v) * (LUT_SIZE - 1)) : 0) << 2;
      out[q] = LUT[o];
      out[q + 1] = LUT[o + 1];
      out[q + 2] = LUT[o + 2];
      out[q + 3] = 255;
    }
  }

  // ---- drawing helpers -------------------------------------------------------------------------------

  function setupCanvas(canvas, width, height) {
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    canvas.width = Math.max(1, Math.round(width * dpr));
    canvas.height = Math.max(1, Math.round(height * dpr));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  function tokenLabel(token) {
    const text = token.display;
    if (text.trim() !== "") return text;
    return text.length ? "␣".repeat(Math.min(text.length, 3)) : "∅";
  }

  function fitText(ctx, text, maxWidth) {
    if (ctx.measureText(text).width <= maxWidth) return text;
    const chars = Array.from(text);
    let lo = 0;
    let hi = chars.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(`${chars.slice(0, mid).join("")}…`).width <= maxWidth) lo = mid;
      else hi = mid - 1;
    }
    return `${chars.slice(0, lo).join("")}…`;
  }

  function span(text, className) {
    const el = document.createElement("span");
    if (className) el.className = className;
    el.textContent = text;
    return el;
  }

  function option(value, label) {
    const el = document.createElement("option");
    el.value = String(value);
    el.textContent = label;
    return el;
  }

  // ---- the viewer ------------------------------------------------------------------------------------

  const meta = readMeta();
  const halves = readHalves($("viz-attention"));
  const n = meta.n;
  const heads = meta.heads;
  const layers = meta.included_layers; // model layer numbers present in the data, in order
  if (halves.length !== layers.length * heads * n * n) {
    throw new Error(`attention data has ${halves.length} values, expected ${layers.length}×${heads}×${n}×${n}`);
  }
  const labels = meta.tokens.map(tokenLabel);
  const special = meta.tokens.map((t) => Boolean(t.special));

  const ui = {
    layer: $("layer"),
    head: $("head"),
    scale: $("scale"),
    wrap: $("heatmap-wrap"),
    canvas: $("heatmap"),
    overlay: $("overlay"),
    legend: $("legend"),
    tooltip: $("tooltip"),
    overview: $("overview-grid"),
  };

  const state = { layer: layers[0], head: 0, scale: meta.scale in SCALES ? meta.scale : "linear" };
  let shown = null; // {matrix, max, layout}

  function headMatrix(layer, head) {
    const slot = layers.indexOf(layer);
    const base = (slot * heads + head) * n * n;
    const out = new Float32Array(n * n);
    for (let i = 0; i < out.length; i++) out[i] = HALF[halves[base + i]];
    return out;
  }

  function readHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const layer = Number.parseInt(params.get("layer"), 10);
    const head = Number.parseInt(params.get("head"), 10);
    if (layers.includes(layer)) state.layer = layer;
    if (head >= 0 && head < heads) state.head = head;
    if (params.get("scale") in SCALES) state.scale = params.get("scale");
  }

  function writeHash() {
    const hash = `#layer=${state.layer}&head=${state.head}&scale=${state.scale}`;
    try {
      window.history.replaceState(null, "", hash);
    } catch {
      // sandboxed frames (notebooks) may refuse; the view itself is unaffected
    }
  }

  function layout(ctx, width) {
    const room = Math.max(120, Math.min(width, 980));
    let margin = 80;
    let plan = null;
    for (let pass = 0; pass < 2; pass++) {
      let cell = Math.min((room - margin - 10) / n, MAX_CELL);
      const dpr = window.devicePixelRatio || 1;
      if (cell * dpr >= 3) cell = Math.floor(cell * dpr) / dpr;
      const font = Math.max(9, Math.min(12, Math.floor(cell * 0.62)));
      const step = NICE_STEPS.find((s) => s >= Math.ceil((font + 3) / cell)) ?? Math.ceil(n / 10);
      ctx.font = `${font}px ${FONT}`;
      let widest = 0;
      for (const label of labels) widest = Math.max(widest, ctx.measureText(label).width);
      plan = { cell, font, step };
      margin = Math.ceil(Math.min(widest, MAX_LABEL_WIDTH)) + LABEL_GAP + 4;
    }
    const grid = plan.cell * n;
    return { ...plan, left: margin, top: margin, grid, width: Math.ceil(margin + grid + 6), height: Math.ceil(margin + grid + 6) };
  }

  function drawLabel(ctx, lay, axis, i, color, blank) {
    const centre = (i + 0.5) * lay.cell;
    ctx.save();
    if (axis === "row") ctx.translate(lay.left - LABEL_GAP, lay.top + centre);
    else {
      ctx.translate(lay.left + centre, lay.top - LABEL_GAP);
      ctx.rotate(-Math.PI / 2);
    }
    ctx.textAlign = axis === "row" ? "right" : "left";
    ctx.textBaseline = "middle";
    if (blank) {
      const slot = lay.left - LABEL_GAP;
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(axis === "row" ? -slot : -2, -lay.font * 0.8, slot + 2, lay.font * 1.6);
    }
    ctx.fillStyle = color;
    ctx.fillText(fitText(ctx, labels[i], lay.left - LABEL_GAP - 4), 0, 0);
    ctx.restore();
  }

  function drawHeatmap() {
    const matrix = headMatrix(state.layer, state.head);
    let max = 0;
    for (let i = 0; i < matrix.length; i++) if (matrix[i] > max) max = matrix[i];
    const measure = ui.canvas.getContext("2d");
    const lay = layout(measure, ui.wrap.clientWidth || 800);
    const ctx = setupCanvas(ui.canvas, lay.width, lay.height);
    setupCanvas(ui.overlay, lay.width, lay.height);
    const cells = document.createElement("canvas");
    cells.width = n;
    cells.height = n;
    const cctx = cells.getContext("2d");
    const image = cctx.createImageData(n, n);
    paint(image, matrix, unitFunction(state.scale, max));
    cctx.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cells, lay.left, lay.top, lay.grid, lay.grid);
    ctx.strokeStyle = "rgba(15, 23, 42, 0.28)";
    ctx.strokeRect(lay.left - 0.5, lay.top - 0.5, lay.grid + 1, lay.grid + 1);
    ctx.font = `${lay.font}px ${FONT}`;
    for (let i = 0; i < n; i += lay.step) {
      const color = special[i] ? "#94a3b8" : "#1e293b";
      drawLabel(ctx, lay, "row", i, color, false);
      drawLabel(ctx, lay, "col", i, color, false);
    }
    shown = { matrix, max, layout: lay };
    drawLegend(max);
    ui.canvas.setAttribute("aria-label", `Attention heatmap, layer ${state.layer}, head ${state.head}`);
    ui.canvas.dataset.layer = String(state.layer);
    ui.canvas.dataset.head = String(state.head);
    ui.canvas.dataset.state = "ready";
    window.__viz = { view: "standalone", layer: state.layer, head: state.head, n, matrix, cellBox };
  }

  function drawLegend(max) {
    const width = 240;
    const ctx = setupCanvas(ui.legend, width, 34);
    const pad = 10;
    const bar = width - 2 * pad;
    for (let x = 0; x < bar; x++) {
      const o = Math.round((x / (bar - 1)) * (LUT_SIZE - 1)) << 2;
      ctx.fillStyle = `rgb(${LUT[o]}, ${LUT[o + 1]}, ${LUT[o + 2]})`;
      ctx.fillRect(pad + x, 2, 1.5, 12);
    }
    ctx.strokeStyle = "rgba(15, 23, 42, 0.25)";
    ctx.strokeRect(pad + 0.5, 2.5, bar - 1, 11);
    const top = max > 0 ? max : 1;
    const unit = unitFunction(state.scale, top);
    const ticks =
      state.scale === "log" ? [top / 1000, top / 100, top / 10, top] : [0, top / 4, top / 2, (3 * top) / 4, top];
    ctx.fillStyle = "#475569";
    ctx.font = `10px ${FONT}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    let lastRight = -Infinity;
    for (const t of ticks) {
      const x = pad + unit(t) * (bar - 1);
      const label = Number(t.toPrecision(2)).toString();
      const w = ctx.measureText(label).width;
      const cx = Math.min(Math.max(x, w / 2 + 1), width - w / 2 - 1);
      if (cx - w / 2 < lastRight + 4) continue;
      ctx.fillRect(Math.round(x), 14, 1, 4);
      ctx.fillText(label, cx, 20);
      lastRight = cx + w / 2;
    }
  }

  function cellBox(q, k) {
    if (!shown) return null;
    const rect = ui.canvas.getBoundingClientRect();
    const { left, top, cell } = shown.layout;
    return { x: rect.left + left + (k + 0.5) * cell, y: rect.top + top + (q + 0.5) * cell };
  }

  function drawHover(cell) {
    const lay = shown.layout;
    const ctx = setupCanvas(ui.overlay, lay.width, lay.height);
    if (!cell) return;
    const size = lay.cell;
    ctx.fillStyle = size >= 6 ? "rgba(234, 88, 12, 0.10)" : "rgba(234, 88, 12, 0.35)";
    if (size >= 6) {
      ctx.fillRect(lay.left, lay.top + cell.row * size, lay.grid, size);
      ctx.fillRect(lay.left + cell.col * size, lay.top, size, lay.grid);
    }
    ctx.strokeStyle = "#ea580c";
    ctx.lineWidth = 2;
    const box = Math.max(size, 6);
    ctx.strokeRect(lay.left + (cell.col + 0.5) * size - box / 2, lay.top + (cell.row + 0.5) * size - box / 2, box, box);
    ctx.font = `600 ${lay.font}px ${FONT}`;
    drawLabel(ctx, lay, "row", cell.row, "#ea580c", true);
    drawLabel(ctx, lay, "col", cell.col, "#ea580c", true);
  }

  function onPointer(event) {
    if (!shown) return;
    const rect = ui.canvas.getBoundingClientRect();
    const { left, top, cell } = shown.layout;
    const col = Math.floor((event.clientX - rect.left - left) / cell);
    const row = Math.floor((event.clientY - rect.top - top) / cell);
    if (row < 0 || col < 0 || row >= n || col >= n) {
      onLeave();
      return;
    }
    drawHover({ row, col });
    const value = shown.matrix[row * n + col];
    const tip = ui.tooltip;
    tip.dataset.q = String(row);
    tip.dataset.k = String(col);
    tip.dataset.value = String(value);
    const line = (...parts) => {
      const div = document.createElement("div");
      div.append(...parts);
      return div;
    };
    tip.replaceChildren(
      line(span(meta.tokens[row].display, "tok"), span(" → "), span(meta.tokens[col].display, "tok")),
      line(span(value.toPrecision(4), "value")),
      line(span(`q=${row} k=${col}`, "pos")),
    );
    tip.hidden = false;
    const box = tip.getBoundingClientRect();
    let x = event.clientX + 14;
    let y = event.clientY + 14;
    if (x + box.width > window.innerWidth - 4) x = event.clientX - 14 - box.width;
    if (y + box.height > window.innerHeight - 4) y = event.clientY - 14 - box.height;
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${Math.max(4, y)}px`;
  }

  function onLeave() {
    if (shown) drawHover(null);
    ui.tooltip.hidden = true;
  }

  // ---- all-heads overview ----------------------------------------------------------------------------

  function thumbnail(layer, head, size) {
    const base = (layers.indexOf(layer) * heads + head) * n * n;
    const sums = new Float32Array(size * size);
    const counts = new Float32Array(size * size);
    for (let i = 0; i < n; i++) {
      const bi = Math.floor((i * size) / n);
      for (let j = 0; j < n; j++) {
        const b = bi * size + Math.floor((j * size) / n);
        sums[b] += HALF[halves[base + i * n + j]];
        counts[b] += 1;
      }
    }
    let max = 0;
    for (let b = 0; b < sums.length; b++) {
      sums[b] /= counts[b] || 1;
      if (sums[b] > max) max = sums[b];
    }
    return { values: sums, max };
  }

  function buildOverview() {
    const size = Math.min(THUMB, n);
    const rows = [];
    for (const layer of layers) {
      const row = document.createElement("div");
      row.className = "overview-row";
      row.append(span(`Layer ${layer}`, "overview-label"));
      for (let head = 0; head < heads; head++) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "thumb";
        button.dataset.layer = String(layer);
        button.dataset.head = String(head);
        button.title = `Layer ${layer}, head ${head}`;
        button.setAttribute("aria-label", `Layer ${layer}, head ${head}`);
        const canvas = document.createElement("canvas");
        canvas.width = size;
        canvas.height = size;
        const { values, max } = thumbnail(layer, head, size);
        const ctx = canvas.getContext("2d");
        const image = ctx.createImageData(size, size);
        paint(image, values, unitFunction("linear", max));
        ctx.putImageData(image, 0, 0);
        button.append(canvas, span(String(head), "thumb-head"));
        button.addEventListener("click", () => select(layer, head));
        row.append(button);
      }
      rows.push(row);
    }
    ui.overview.replaceChildren(...rows);
    markCurrent();
  }

  function markCurrent() {
    for (const button of ui.overview.querySelectorAll(".thumb")) {
      const on = Number(button.dataset.layer) === state.layer && Number(button.dataset.head) === state.head;
      button.setAttribute("aria-pressed", String(on));
    }
  }

  function showPredictions() {
    const list = $("predictions");
    if (!Array.isArray(meta.predictions) || !meta.predictions.length) return;
    list.replaceChildren(
      ...meta.predictions.map((p) => {
        const item = document.createElement("li");
        const at = meta.tokens[p.position].display;
        item.append(span(p.kind === "next" ? `Next token after “${at}”: ` : `Mask at position ${p.position}: `));
        p.candidates.slice(0, 5).forEach((c, i) => {
          item.append(span(c.token, "tok"), span(` ${(100 * c.score).toFixed(1)}%${i < 4 ? ", " : ""}`));
        });
        return item;
      }),
    );
    list.hidden = false;
  }

  // ---- controls --------------------------------------------------------------------------------------

  function select(layer, head) {
    state.layer = layer;
    state.head = head;
    ui.layer.value = String(layer);
    ui.head.value = String(head);
    refresh();
  }

  function refresh() {
    writeHash();
    drawHeatmap();
    markCurrent();
  }

  ui.layer.replaceChildren(...layers.map((l) => option(l, String(l))));
  ui.head.replaceChildren(...Array.from({ length: heads }, (_, h) => option(h, String(h))));
  ui.scale.replaceChildren(...Object.entries(SCALES).map(([value, label]) => option(value, label)));
  readHash();
  ui.layer.value = String(state.layer);
  ui.head.value = String(state.head);
  ui.scale.value = state.scale;
  ui.layer.addEventListener("change", () => select(Number(ui.layer.value), state.head));
  ui.head.addEventListener("change", () => select(state.layer, Number(ui.head.value)));
  ui.scale.addEventListener("change", () => {
    state.scale = ui.scale.value;
    refresh();
  });
  ui.wrap.addEventListener("pointermove", onPointer);
  ui.wrap.addEventListener("pointerleave", onLeave);
  let lastWidth = ui.wrap.clientWidth;
  window.addEventListener("resize", () => {
    if (ui.wrap.clientWidth !== lastWidth) {
      lastWidth = ui.wrap.clientWidth;
      drawHeatmap();
    }
  });

  for (const el of document.querySelectorAll("[data-text]")) el.textContent = meta[el.dataset.text] ?? "";
  showPredictions();
  drawHeatmap();
  // The overview costs a pass over all included heads: draw it after the first heatmap is on screen.
  setTimeout(() => {
    buildOverview();
    document.body.dataset.overview = "ready";
  }, 0);
})();
