// Unit tests for the permalink state of the analysis page: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

// state.js reads window.location and writes window.history: a minimal stand-in.
const page = { href: "http://app/analysis?text=Hi&model=m" };
globalThis.window = {
  get location() {
    const url = new URL(page.href);
    return { href: url.href, search: url.search };
  },
  history: {
    replaceState(_state, _title, url) {
      page.href = String(url);
    },
  },
};

const { bindUrl, createStore, formatZoom, parseZoom, readUrlState, viewQuery } = await import("../../src/visualizeai/web/static/js/lib/state.js");

test("reads every view option and ignores malformed values", () => {
  const search = "?layer=3&head=7&view=headview&scale=log&gamma=0.35&mean_heads=1&hide_special=1&merge_words=0";
  assert.deepEqual(readUrlState(search), {
    layer: 3, head: 7, view: "headview", scale: "log", gamma: 0.35, meanHeads: true, hideSpecial: true,
    mergeWords: false,
  });
  const bad = "?layer=-1&head=x&view=%3Cb%3E&scale=Log!&gamma=0&mean_layers=yes";
  assert.deepEqual(readUrlState(bad), {});
});

test("bindUrl writes the view into the query and reading it back gives the same state", () => {
  const store = createStore({ layer: 0, head: 0, view: "heatmap" });
  const stop = bindUrl(store);
  store.set({ layer: 2, head: 5, scale: "log", norm: "layer", hideSpecial: true, mergeWords: false });
  const url = new URL(page.href);
  assert.equal(url.searchParams.has("text"), false); // the text never stays in the URL
  assert.equal(url.searchParams.has("model"), false);
  assert.equal(url.searchParams.get("scale"), "log");
  assert.equal(url.searchParams.get("norm"), "layer");
  assert.equal(url.searchParams.get("hide_special"), "1");
  assert.equal(url.searchParams.has("merge_words"), false); // defaults stay out of the link
  const { layer, head, view, scale, norm, hideSpecial } = store.get();
  assert.deepEqual(readUrlState(url.search), { layer, head, view, scale, norm, hideSpecial });
  store.set({ scale: "sqrt", norm: "matrix", hideSpecial: false }); // the defaults
  assert.equal(new URL(page.href).searchParams.has("scale"), false);
  assert.equal(new URL(page.href).searchParams.has("norm"), false);
  assert.equal(new URL(page.href).searchParams.has("hide_special"), false);
  stop();
});

test("the zoom rectangle, pooling, focus and selection round-trip; malformed ones are dropped", () => {
  const search = "?zoom=10:20,0:40&pool=max&focus=12&focus_axis=col&select=3:9";
  const state = readUrlState(search);
  assert.deepEqual(state, { zoom: "10:20,0:40", pool: "max", focus: 12, focusAxis: "col", select: "3:9" });
  assert.deepEqual(parseZoom(state.zoom), { rows: [10, 20], cols: [0, 40] });
  assert.equal(formatZoom({ rows: [1, 2], cols: [3, 4] }), "1:2,3:4");
  assert.deepEqual(readUrlState(viewQuery(state)), state);
  assert.deepEqual(readUrlState("?zoom=20:10,0:4&pool=avg&focus=-1&select=5:5&focus_axis=x"), {});
  assert.equal(parseZoom("1:2"), null);
});

test("bindUrl moves the page to a keyed path and keeps other parameters", () => {
  page.href = "http://app/analysis?text=Secret&model=m&key=abc&utm=1";
  const store = createStore({ layer: 1, head: 2, view: "overview" });
  const stop = bindUrl(store, { path: "/analysis/abcdef" });
  const url = new URL(page.href);
  assert.equal(url.pathname, "/analysis/abcdef");
  assert.equal(url.search.includes("Secret"), false);
  assert.equal(url.searchParams.get("utm"), "1");
  assert.equal(url.searchParams.get("view"), "overview");
  stop();
});
