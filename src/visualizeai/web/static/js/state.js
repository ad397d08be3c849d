// A small store for the analysis page: the analysis metadata and what is being looked at.
// Everything that decides what the page shows (layer, head, view, colour scale, view options) lives in the URL
// query (history.replaceState), so the address bar is a permalink: reloading or sharing it restores the view.

const parseIndex = (raw) => (/^\d+$/.test(raw) ? Number.parseInt(raw, 10) : undefined);
const parseWord = (raw) => (/^[a-z][a-z0-9-]*$/.test(raw) ? raw : undefined);
const parseFlag = (raw) => (raw === "1" ? true : raw === "0" ? false : undefined);
const parsePositive = (raw) => {
  const value = Number.parseFloat(raw);
  return /^\d*\.?\d+$/.test(raw) && value > 0 && value <= 100 ? value : undefined;
};

/**
 * Store key → [query parameter, parse(raw) → value | undefined, default]. A value equal to its default is left
 * out of the URL (flags are written as 1). A view option that should survive a reload gets one line here.
 */
const URL_FIELDS = {
  layer: ["layer", parseIndex, undefined],
  head: ["head", parseIndex, undefined],
  view: ["view", parseWord, undefined],
  scale: ["scale", parseWord, "linear"], // colour scale of the heatmap (colorscale.js COLOR_MODES)
  gamma: ["gamma", parsePositive, 0.5], // exponent of the "power" colour scale
  meanHeads: ["mean_heads", parseFlag, false], // view options (viewoptions.js)
  meanLayers: ["mean_layers", parseFlag, false],
  hideSpecial: ["hide_special", parseFlag, false],
  mergeWords: ["merge_words", parseFlag, false],
};
const URL_KEYS = Object.keys(URL_FIELDS);

/** Read the view state from a query string; missing or malformed values are left out. */
export function readUrlState(search = window.location.search) {
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

/**
 * Create the store. State: {meta: AnalysisMeta|null, layer: int, head: int, view: string}, plus the view
 * options of URL_FIELDS (scale, gamma, meanHeads, …) once something sets them.
 * Subscribers are called as fn(state, previous) after every change.
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
 * Keep the view state of `store` (URL_FIELDS) in the page URL (other query parameters are left alone), starting
 * now. Returns a function that stops it.
 */
export function bindUrl(store) {
  const write = (state) => {
    const url = new URL(window.location.href);
    for (const key of URL_KEYS) writeParam(url.searchParams, key, state[key]);
    if (url.href !== window.location.href) window.history.replaceState(null, "", url);
  };
  write(store.get());
  return store.subscribe((state, previous) => {
    if (URL_KEYS.some((k) => state[k] !== previous[k])) write(state);
  });
}
