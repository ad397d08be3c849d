// View options shared by several views, and the token axis they produce.
//
// The checkboxes in #controls ("Mean over heads", "Mean over layers", "Hide special tokens", "Merge subwords
// into words") live in the store as meanHeads, meanLayers, hideSpecial, mergeWords. A view that uses them lists
// the control groups "aggregate" and/or "tokens" in its `controls`, calls bindOptions(store) on mount and
// re-renders when optionsChanged(state, previous) says so. The server applies the options (GET /attention with
// agg, hide_special, merge_words) and names the token positions of each displayed row (X-Tokens).

const CHECKBOXES = {
  meanHeads: "mean-heads",
  meanLayers: "mean-layers",
  hideSpecial: "hide-special",
  mergeWords: "merge-words",
};
export const OPTION_KEYS = Object.keys(CHECKBOXES);

let boundStore = null;

/** Keep the option checkboxes and the store in step (once per store; later calls do nothing). */
export function bindOptions(store) {
  if (boundStore === store) return;
  boundStore = store;
  const sync = (state) => {
    for (const [key, id] of Object.entries(CHECKBOXES)) {
      const box = document.getElementById(id);
      if (box) box.checked = Boolean(state[key]);
    }
    const note = document.getElementById("renormalized-note");
    if (note) note.hidden = !state.hideSpecial;
  };
  for (const [key, id] of Object.entries(CHECKBOXES)) {
    const box = document.getElementById(id);
    if (box) box.addEventListener("change", () => store.set({ [key]: box.checked }));
  }
  store.subscribe((state, previous) => {
    if (OPTION_KEYS.some((k) => state[k] !== previous[k])) sync(state);
  });
  sync(store.get());
}

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

/** A token's label text: its display form, with blank tokens made visible. */
export function tokenLabel(token) {
  const text = token && typeof token.display === "string" ? token.display : "";
  if (text.trim() !== "") return text;
  return text.length ? "␣".repeat(Math.min(text.length, 3)) : "∅";
}

/** The axis of the full token sequence: one group per token. */
export function identityGroups(n) {
  return Array.from({ length: n }, (_, i) => [i]);
}

/**
 * Labels, special flags and position names for displayed groups of tokens. A merged word is labelled with the
 * text it covers (offsets into meta.text), so "un ##bel ##ie ##va ##bly" reads "unbelievably".
 */
export function describeAxis(meta, groups) {
  const labels = [];
  const special = [];
  const positions = [];
  for (const group of groups) {
    const first = meta.tokens[group[0]];
    const last = meta.tokens[group[group.length - 1]];
    let label = tokenLabel(first);
    if (group.length > 1 && !first.special && last.end > first.start) {
      label = meta.text.slice(first.start, last.end);
      if (label.trim() === "") label = group.map((i) => tokenLabel(meta.tokens[i])).join("");
    }
    labels.push(label);
    special.push(group.every((i) => meta.tokens[i].special));
    positions.push(positionName(group));
  }
  return { labels, special, positions };
}

/** "5", or "3–7" for a run of positions, or "3–4+7". */
export function positionName(group) {
  const runs = [];
  for (const i of group) {
    const run = runs[runs.length - 1];
    if (run && i === run[1] + 1) run[1] = i;
    else runs.push([i, i]);
  }
  return runs.map(([a, b]) => (a === b ? String(a) : `${a}–${b}`)).join("+");
}
