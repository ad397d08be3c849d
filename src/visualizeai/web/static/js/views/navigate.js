// Navigation in a long text, a part of the heatmap's panel: find a word or phrase (every match marked on both
// axes, previous/next, the count), jump to a token position, and pick a range of query rows to list the keys
// they attend to most, each with the text around it. The heatmap passes the functions that act on it.

import { el, span } from "../lib/dom.js";
import { formatValue } from "../lib/color.js";
import { tokenBadge } from "../lib/token_badge.js";
import { snippet, tokenFactsLine, tokenLabel } from "../lib/tokens.js";

const MAX_MATCHES = 10000;
const TOP_KEYS = 10;
const SNIPPET_CHARS = 36;

/**
 * Token positions [a, b) of every occurrence of `query` in the analysed text (case-insensitive), at most
 * `limit`, as [{chars: [s, e], tokens: [a, b]}]. Tokens are found by their character offsets; an analysis
 * without text is searched token by token.
 */
export function findMatches(info, query, limit = MAX_MATCHES) {
  const needle = query.trim().toLowerCase();
  if (!needle || !info) return [];
  const tokens = info.tokens || [];
  const out = [];
  if (typeof info.text !== "string" || !info.text) {
    for (let i = 0; i < tokens.length && out.length < limit; i++) {
      if (tokenLabel(tokens[i]).toLowerCase().includes(needle)) out.push({ chars: null, tokens: [i, i + 1] });
    }
    return out;
  }
  // non-special tokens in order of their offsets, for binary search
  const starts = [];
  const ends = [];
  const index = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.special || !(t.end > t.start)) continue;
    starts.push(t.start);
    ends.push(t.end);
    index.push(i);
  }
  const haystack = info.text.toLowerCase();
  let from = 0;
  while (out.length < limit) {
    const s = haystack.indexOf(needle, from);
    if (s < 0) break;
    const e = s + needle.length;
    from = s + Math.max(1, needle.length);
    // first token ending after s, last token starting before e
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid] > s) hi = mid;
      else lo = mid + 1;
    }
    const first = lo;
    if (first >= starts.length || starts[first] >= e) continue; // inside text no token covers
    let last = first;
    while (last + 1 < starts.length && starts[last + 1] < e) last++;
    out.push({ chars: [s, e], tokens: [index[first], index[last] + 1] });
  }
  return out;
}

function field(id, label, input) {
  return el("label", { className: "nav-field", attrs: { for: id } }, span(label), input);
}

/**
 * Mount the navigation into `root`. `api`: {signal (the view's lifetime), info() → analysis meta,
 * setMatches(matches, current), jump(position), selectRows(a, b), topKeys([a, b], k, signal) → Promise of
 * [{index, weight}], focusKey(index)}. Returns {reset(), showSelection([a, b] | null)}.
 */
export function mountNavigate(root, api) {
  const on = (target, type, fn) => target.addEventListener(type, fn, { signal: api.signal });
  const button = (id, text) => el("button", { className: "button small secondary", text, attrs: { type: "button", id } });
  const find = el("input", {
    attrs: { type: "search", id: "find-input", placeholder: "a word or phrase", autocomplete: "off" },
  });
  const prev = button("find-prev", "Previous");
  const next = button("find-next", "Next");
  const count = el("span", { className: "hint find-count", attrs: { id: "find-count", "aria-live": "polite" } });
  const jump = el("input", { attrs: { type: "number", id: "jump-input", min: "0", step: "1" } });
  const jumpGo = el("button", { className: "button small secondary", text: "Go", attrs: { type: "button", id: "jump-go" } });
  const from = el("input", { attrs: { type: "number", id: "range-from", min: "0", step: "1" } });
  const to = el("input", { attrs: { type: "number", id: "range-to", min: "1", step: "1" } });
  const rangeGo = button("range-go", "Top keys");
  const status = el("p", { className: "hint", attrs: { id: "range-status", "aria-live": "polite" } });
  const list = el("ol", { className: "range-keys", attrs: { id: "range-keys" } });
  root.replaceChildren(
    el(
      "div",
      { className: "nav-row" },
      field("find-input", "Find", find),
      prev,
      next,
      count,
      field("jump-input", "Jump to token", jump),
      jumpGo,
    ),
    el(
      "div",
      { className: "nav-row" },
      field("range-from", "Query rows from", from),
      field("range-to", "to (exclusive)", to),
      rangeGo,
      el("span", { className: "hint", text: "or drag along the row labels" }),
    ),
    status,
    list,
  );

  let matches = [];
  let current = -1;
  let lastQuery = "";
  let request = null;

  function showCount() {
    if (!lastQuery) count.textContent = "";
    else if (!matches.length) count.textContent = "no matches";
    else if (current < 0) {
      count.textContent = `${matches.length.toLocaleString("en")}${matches.length >= MAX_MATCHES ? "+" : ""} matches`;
    }
    else count.textContent = `${current + 1} of ${matches.length.toLocaleString("en")}`;
    root.dataset.matches = String(matches.length);
    root.dataset.current = current >= 0 ? String(current) : "";
    prev.disabled = next.disabled = !matches.length;
  }

  function search() {
    const query = find.value;
    if (query === lastQuery) return;
    lastQuery = query.trim() ? query : "";
    matches = lastQuery ? findMatches(api.info(), lastQuery) : [];
    current = -1;
    showCount();
    api.setMatches(matches, current);
  }

  function step(delta) {
    search();
    if (!matches.length) return;
    current = current < 0 ? (delta > 0 ? 0 : matches.length - 1) : (current + delta + matches.length) % matches.length;
    showCount();
    api.setMatches(matches, current);
  }

  let typing = null;
  on(find, "input", () => {
    clearTimeout(typing);
    typing = setTimeout(search, 150);
  });
  on(find, "keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    clearTimeout(typing);
    step(event.shiftKey ? -1 : 1);
  });
  on(prev, "click", () => step(-1));
  on(next, "click", () => step(1));

  function doJump() {
    const info = api.info();
    const position = Number.parseInt(jump.value, 10);
    if (!info || !Number.isInteger(position)) return;
    api.jump(Math.min(Math.max(position, 0), info.n - 1));
  }
  on(jumpGo, "click", doJump);
  on(jump, "keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      doJump();
    }
  });

  function rangeFromInputs() {
    const info = api.info();
    const a = Number.parseInt(from.value, 10);
    let b = Number.parseInt(to.value, 10);
    if (!info || !Number.isInteger(a)) return;
    if (!Number.isInteger(b) || b <= a) b = a + 1;
    api.selectRows(Math.max(0, a), Math.min(info.n, b));
  }
  on(rangeGo, "click", rangeFromInputs);
  for (const input of [from, to]) {
    on(input, "keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        rangeFromInputs();
      }
    });
  }

  /** List the strongest keys of the mean over query rows [a, b), each with the text around it. */
  async function showSelection(selection) {
    if (request) request.abort();
    list.replaceChildren();
    if (!selection) {
      status.textContent = "";
      delete list.dataset.rows;
      list.dataset.state = "empty";
      return;
    }
    const [a, b] = selection;
    from.value = String(a);
    to.value = String(b);
    list.dataset.state = "loading";
    status.textContent = `Strongest keys of query rows ${a}–${b - 1} (their mean)…`;
    request = new AbortController();
    const signal = request.signal;
    let keys;
    try {
      keys = await api.topKeys([a, b], TOP_KEYS, signal);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      status.textContent = err.message || String(err);
      list.dataset.state = "error";
      return;
    }
    if (signal.aborted) return;
    const info = api.info();
    status.textContent = `Strongest keys of query rows ${a}–${b - 1} (the mean of ${b - a} row${b - a === 1 ? "" : "s"}):`;
    list.replaceChildren(
      ...keys.map(({ index, weight }) => {
        const s = snippet(info, index, SNIPPET_CHARS);
        const item = el(
          "li",
          { dataset: { index, weight } },
          el(
            "button",
            { className: "range-key", attrs: { type: "button", title: `Show key ${index}\n${tokenFactsLine(info.tokens[index])}` } },
            span(formatValue(weight), "value"),
            span(`k=${index}`, "pos"),
            el(
              "span",
              { className: "snippet" },
              span(s.before.replace(/\s+/g, " ")),
              el("mark", { text: s.token }),
              ...[tokenBadge(info.tokens[index])].filter(Boolean),
              span(s.after.replace(/\s+/g, " ")),
            ),
          ),
        );
        on(item.firstChild, "click", () => api.focusKey(index));
        return item;
      }),
    );
    list.dataset.rows = `${a}:${b}`;
    list.dataset.state = "ready";
  }

  return {
    reset() {
      lastQuery = "";
      find.value = "";
      matches = [];
      current = -1;
      showCount();
      showSelection(null);
    },
    showSelection,
  };
}
