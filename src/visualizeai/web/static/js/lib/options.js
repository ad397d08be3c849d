// The shared view options (mean over heads, mean over layers, hide special tokens, merge subwords) as they
// live in the store: meanHeads, meanLayers, hideSpecial, mergeWords. The server applies them (GET /attention
// with agg, hide_special, merge_words); the page keeps the checkboxes in step (pages/analysis.js).

export const OPTION_KEYS = ["meanHeads", "meanLayers", "hideSpecial", "mergeWords"];

/** True when one of `keys` (default: all options) differs between two store states. */
export function optionsChanged(state, previous, keys = OPTION_KEYS) {
  return keys.some((k) => Boolean(state[k]) !== Boolean(previous[k]));
}

/** The server's `agg` for the mean checkboxes. */
export function aggregateOf(state) {
  if (state.meanHeads && state.meanLayers) return "mean_all";
  if (state.meanHeads) return "mean_heads";
  if (state.meanLayers) return "mean_layers";
  return "none";
}

/** True when the view shows the plain per-head matrix over every token (the cached fast path). */
export function isPlain(state, { aggregate = true } = {}) {
  return !state.hideSpecial && !state.mergeWords && (!aggregate || aggregateOf(state) === "none");
}
