// The view state of a page and its place in the URL.
// Everything that decides what the page shows (view, layer, head, zoom rectangle, pooling, focus, colour scale,
// view options) lives in the URL query (history.replaceState), so the address bar is a permalink: reloading or
// sharing it restores the view. The analysis itself is addressed by its key in the path (/analysis/{key}); the
// text never goes into the URL: bindUrl removes a legacy ?text= (and ?key=) as soon as it writes.

const parseIndex = (raw) => (/^\d+$/.test(raw) ? Number.parseInt(raw, 10) : undefined);
const parseWord = (raw) => (/^[a-z][a-z0-9_-]*$/.test(raw) && raw.length <= 32 ? raw : undefined);
const parseFlag = (raw) => (raw === "1" ? true : raw === "0" ? false : undefined);
const parsePositive = (raw) => {
  const value = Number.parseFloat(raw);
  return /^\d*\.?\d+$/.test(raw) && value > 0 && value <= 100 ? value : undefined;
};
const parseChoice = (...choices) => (raw) => (choices.includes(raw) ? raw : undefined);
const parseFraction = (raw) => {
  const value = Number.parseFloat(raw);
  return /^\d*\.?\d+$/.test(raw) && value >= 0 && value <= 1 ? value : undefined;
};
const parseTopK = (raw) => {
  const value = parseIndex(raw);
  return value >= 1 && value <= 20 ? value : undefined;
};
const pinString = (raw) => (/^[qk]:\d{1,9}$/.test(raw) ? raw : undefined);
const headList = (raw) => (raw === "none" || (/^\d{1,4}(,\d{1,4}){0,1023}$/.test(raw)) ? raw : undefined);

/** "a:b" with integers 0 ≤ a < b → [a, b]; anything else → undefined. */
export function parseRange(raw) {
  const m = /^(\d{1,9}):(\d{1,9})$/.exec(String(raw));
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[2]);
  return a < b ? [a, b] : undefined;
}

/** [a, b] → "a:b". */
export function formatRange([a, b]) {
  return `${a}:${b}`;
}

/** A zoom rectangle "a:b,c:d" (query rows a…b−1, key columns c…d−1) → {rows: [a, b], cols: [c, d]}, or null. */
export function parseZoom(raw) {
  const parts = String(raw ?? "").split(",");
  if (parts.length !== 2) return null;
  const rows = parseRange(parts[0]);
  const cols = parseRange(parts[1]);
  return rows && cols ? { rows, cols } : null;
}

/** {rows, cols} → "a:b,c:d" (the form the store and the URL hold). */
export function formatZoom({ rows, cols }) {
  return `${formatRange(rows)},${formatRange(cols)}`;
}

const zoomString = (raw) => (parseZoom(raw) ? raw : undefined);
const rangeString = (raw) => (parseRange(raw) ? raw : undefined);

/**
 * Store key → [query parameter, parse(raw) → value | undefined, default]. A value equal to its default is left
 * out of the URL (flags are written as 1). A view option that should survive a reload gets one line here.
 * Values are strings, numbers or booleans (the store compares with ===): zoom and select are strings.
 */
const URL_FIELDS = {
  layer: ["layer", parseIndex, undefined],
  head: ["head", parseIndex, undefined],
  view: ["view", parseWord, undefined],
  scale: ["scale", parseWord, "sqrt"], // colour scale of every figure (color.js COLOR_MODES, DEFAULT_MODE)
  norm: ["norm", parseChoice("matrix", "layer", "absolute"), "matrix"], // what 1 on the colour bar is (NORMALISATIONS)
  gamma: ["gamma", parsePositive, 0.5], // exponent of the "power" colour scale
  meanHeads: ["mean_heads", parseFlag, false], // shared view options
  meanLayers: ["mean_layers", parseFlag, false],
  hideSpecial: ["hide_special", parseFlag, false],
  mergeWords: ["merge_words", parseFlag, false],
  zoom: ["zoom", zoomString, undefined], // the heatmap's visible rectangle, "a:b,c:d" (parseZoom)
  pool: ["pool", parseChoice("mean", "max"), undefined], // pooling of zoomed-out tiles
  focus: ["focus", parseIndex, undefined], // the focused query token
  focusAxis: ["focus_axis", parseChoice("row", "col"), undefined],
  select: ["select", rangeString, undefined], // a selected range of query rows, "a:b"
  // Head view: its selected heads ("0,3,5", "none"; every head when absent), its line threshold and top-k, and
  // its pinned token ("q:3" a query, "k:3" a key: a displayed index; a token position on long inputs).
  headviewHeads: ["heads", headList, undefined],
  headviewThreshold: ["threshold", parseFraction, undefined],
  headviewTopk: ["topk", parseTopK, undefined],
  headviewPin: ["pin", pinString, undefined],
};
export const URL_KEYS = Object.keys(URL_FIELDS);

/** Query parameters that never stay in the address bar of an analysis page: the text and its inputs. */
const INPUT_PARAMS = ["text", "model", "key"];

/** Read the view state from a query string; missing or malformed values are left out. */
export function readUrlState(search = globalThis.location ? globalThis.location.search : "") {
  const params = new URLSearchParams(search);
  const out = {};
  for (const [key, [name, parse]] of Object.entries(URL_FIELDS)) {
    const raw = params.get(name);
    const value = raw === null ? undefined : parse(raw);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function writeParam(params, key, value) {
  const [name, , fallback] = URL_FIELDS[key];
  if (value === undefined || value === null || value === fallback) params.delete(name);
  else params.set(name, value === true ? "1" : String(value));
}

/** The view state of `state` as a query string (without "?"): only URL_FIELDS, defaults left out. */
export function viewQuery(state) {
  const params = new URLSearchParams();
  for (const key of URL_KEYS) writeParam(params, key, state[key]);
  return params.toString();
}

/**
 * Create the store. State: {meta: AnalysisMeta|null, layer: int, head: int, view: string}, plus the view
 * options of URL_FIELDS once something sets them. Subscribers are called as fn(state, previous) after every
 * change.
 */
export function createStore(initial = {}) {
  let state = { meta: null, layer: 0, head: 0, view: "heatmap", ...initial };
  const listeners = new Set();

  return {
    get() {
      return state;
    },
    /** Merge `patch` into the state; notify only when something changed. */
    set(patch) {
      const previous = state;
      const next = { ...state, ...patch };
      if (Object.keys(next).every((k) => next[k] === previous[k])) return;
      state = next;
      for (const fn of [...listeners]) fn(state, previous);
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/**
 * Keep the view state of `store` (URL_FIELDS) in the page URL, starting now; other query parameters are left
 * alone except the inputs (text, model, key), which are removed. `path`: the path to show (e.g.
 * /analysis/{key}); default the current one. Returns a function that stops it.
 */
export function bindUrl(store, { path } = {}) {
  const write = (state) => {
    const url = new URL(window.location.href);
    if (path) url.pathname = path;
    for (const name of INPUT_PARAMS) url.searchParams.delete(name);
    for (const key of URL_KEYS) writeParam(url.searchParams, key, state[key]);
    if (url.href !== window.location.href) window.history.replaceState(null, "", url);
  };
  write(store.get());
  return store.subscribe((state, previous) => {
    if (URL_KEYS.some((k) => state[k] !== previous[k])) write(state);
  });
}
