// A small store for the analysis page: the analysis metadata and what is being looked at.
// Layer, head and view live in the URL query (history.replaceState), so the address bar is a permalink.

const URL_KEYS = ["layer", "head", "view"];

/** Read layer, head and view from a query string; missing or malformed values are left out. */
export function readUrlState(search = window.location.search) {
  const params = new URLSearchParams(search);
  const out = {};
  for (const key of ["layer", "head"]) {
    const raw = params.get(key);
    if (raw !== null && /^\d+$/.test(raw)) out[key] = Number.parseInt(raw, 10);
  }
  const view = params.get("view");
  if (view && /^[a-z][a-z0-9-]*$/.test(view)) out.view = view;
  return out;
}

/**
 * Create the store. State: {meta: AnalysisMeta|null, layer: int, head: int, view: string}.
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
 * Keep layer, head and view of `store` in the page URL (other query parameters are left alone), starting now.
 * Returns a function that stops it.
 */
export function bindUrl(store) {
  const write = (state) => {
    const url = new URL(window.location.href);
    for (const key of URL_KEYS) url.searchParams.set(key, String(state[key]));
    if (url.href !== window.location.href) window.history.replaceState(null, "", url);
  };
  write(store.get());
  return store.subscribe((state, previous) => {
    if (URL_KEYS.some((k) => state[k] !== previous[k])) write(state);
  });
}
