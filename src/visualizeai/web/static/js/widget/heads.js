// The widget's All heads view: every head of the selected layer as a thumbnail (pooled on the kernel, each scaled
// to its own maximum), the selected head marked; clicking a thumbnail opens that head in the heatmap (ctx.select).
// Same contract as the page's views: mount(panel, ctx) -> {update(state), unmount()}, data only via ctx.source.

import { setupCanvas } from "../lib/canvas.js";
import { makeColorScale, paintValues } from "../lib/color.js";
import { el } from "../lib/dom.js";

const THUMB = 48; // pooled cells per side (the thumbnails request's size)
const SHOWN = 72; // CSS px per thumbnail

export function mount(panel, ctx) {
  const { source } = ctx;
  const controller = new AbortController();
  const { signal } = controller;
  const title = el("div", { className: "vai-heads-title" });
  const grid = el("div", { className: "vai-heads-grid", attrs: { role: "group" } });
  panel.append(title, grid);
  let shownLayer; // layer whose thumbnails are in the grid
  let request = null;

  grid.addEventListener(
    "click",
    (event) => {
      const button = event.target.closest("button[data-head]");
      if (button) ctx.select({ head: Number(button.dataset.head), view: "heatmap" });
    },
    { signal },
  );

  function mark(head) {
    for (const button of grid.querySelectorAll("button[data-head]")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.head) === head));
    }
  }

  async function load(state) {
    if (request) request.abort();
    request = new AbortController();
    const mine = request;
    if (state.layer === null) {
      shownLayer = null;
      title.textContent = "All heads: pick a layer to see its heads.";
      grid.replaceChildren();
      panel.dataset.state = "empty";
      return;
    }
    panel.dataset.state = "loading";
    title.textContent = `All heads of layer ${state.layer}`;
    let thumbs;
    try {
      thumbs = await source.thumbnails({ layer: state.layer, size: THUMB, pool: state.pool }, mine.signal);
    } catch (err) {
      if (err.name === "AbortError") return;
      title.textContent = err.message;
      panel.dataset.state = "error";
      return;
    }
    if (mine.signal.aborted || signal.aborted) return;
    const scale = makeColorScale(255);
    const cells = thumbs.size * thumbs.size;
    const buttons = [];
    for (let h = 0; h < thumbs.heads; h++) {
      const canvas = el("canvas");
      const { ctx: g } = setupCanvas(canvas, SHOWN, SHOWN);
      const image = new ImageData(thumbs.size, thumbs.size);
      paintValues(image, thumbs.pixels.subarray(h * cells, (h + 1) * cells), scale);
      const bitmap = document.createElement("canvas");
      bitmap.width = bitmap.height = thumbs.size;
      bitmap.getContext("2d").putImageData(image, 0, 0);
      g.imageSmoothingEnabled = false;
      g.drawImage(bitmap, 0, 0, SHOWN, SHOWN);
      buttons.push(
        el(
          "button",
          { title: `Layer ${state.layer}, head ${h}`, dataset: { head: h }, attrs: { type: "button" } },
          canvas,
          el("span", { text: `head ${h}` }),
        ),
      );
    }
    grid.replaceChildren(...buttons);
    shownLayer = state.layer;
    Object.assign(panel.dataset, { state: "drawn", layer: state.layer, pool: state.pool });
  }

  let shownPool;
  return {
    update(state) {
      const reload = state.layer !== shownLayer || state.pool !== shownPool;
      shownPool = state.pool;
      const done = reload ? load(state) : Promise.resolve();
      return done.then(() => mark(state.head));
    },
    unmount() {
      controller.abort();
      if (request) request.abort();
      panel.replaceChildren();
    },
  };
}
