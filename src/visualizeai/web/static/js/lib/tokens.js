// Token labels. A token's text comes from the server's token info (`label` when the server sends one, else
// `display`, the characters it covers); the client only makes blank labels visible. Merged words are named by
// the text they cover, as the server's groups (X-Tokens) say.

/** A token's label text, with blank tokens made visible ("␣", "∅"). */
export function tokenLabel(token) {
  const text = token && typeof token.label === "string" ? token.label : token && typeof token.display === "string" ? token.display : "";
  if (text.trim() !== "") return text;
  return text.length ? "␣".repeat(Math.min(text.length, 3)) : "∅";
}

/** The axis of the full token sequence: one group per token. */
export function identityGroups(n) {
  return Array.from({ length: n }, (_, i) => [i]);
}

/** Parse an X-Tokens header ("0,1-3,5+7") into arrays of token positions ([[0], [1, 2, 3], [5, 7]]). */
export function parseTokenGroups(header) {
  if (!header) return [];
  return header.split(",").map((entry) => {
    const positions = [];
    for (const run of entry.split("+")) {
      const [a, b = a] = run.split("-").map((s) => Number.parseInt(s, 10));
      if (!Number.isInteger(a) || !Number.isInteger(b) || b < a) throw new Error(`Bad X-Tokens entry "${entry}".`);
      for (let i = a; i <= b; i++) positions.push(i);
    }
    return positions;
  });
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
    if (group.length > 1 && !first.special && last.end > first.start && typeof meta.text === "string") {
      label = meta.text.slice(first.start, last.end);
      if (label.trim() === "") label = group.map((i) => tokenLabel(meta.tokens[i])).join("");
    }
    labels.push(label);
    special.push(group.every((i) => meta.tokens[i].special));
    positions.push(positionName(group));
  }
  return { labels, special, positions };
}

/** The text around token `index` (`chars` characters each side, by offsets into meta.text), for snippets. */
export function snippet(meta, index, chars = 40) {
  const token = meta.tokens[index];
  if (!token || typeof meta.text !== "string" || token.special) return { before: "", token: tokenLabel(token), after: "" };
  return {
    before: meta.text.slice(Math.max(0, token.start - chars), token.start),
    token: meta.text.slice(token.start, token.end) || tokenLabel(token),
    after: meta.text.slice(token.end, token.end + chars),
  };
}

const WHITESPACE_SHOWN = "␣"; // how the server shows a token of whitespace alone (models.tokens.WHITESPACE_TOKEN)

/** Whether the vocabulary form `readable` reads as the text `shown` (spaces around it and a whitespace-only
 * token shown as "␣" aside). */
function sameReading(readable, shown) {
  const r = readable.trim();
  const s = shown.trim();
  return r === s || (r === "" && (s === "" || s === WHITESPACE_SHOWN));
}

/**
 * What the model saw for one token, for tooltips and token lists: `{raw, id, span, readable, unknown, differs}`.
 * `raw` is the vocabulary string, `id` its vocabulary id (null when not known, as in old saved files), `span`
 * "19–20" (characters of meta.text it covers; "" for special tokens that cover none), `readable` the vocabulary
 * form decoded by the server (bytes of a partial character as <0xE2>), `unknown` the tokenizer's unknown token,
 * and `differs` whether that form differs from the text shown (an accent stripped, a case folded, [UNK]).
 */
export function tokenFacts(token) {
  const t = token || {};
  const readable = typeof t.readable === "string" ? t.readable : null;
  const shown = typeof t.display === "string" ? t.display : "";
  const covers = Number.isInteger(t.start) && Number.isInteger(t.end) && t.end > t.start;
  return {
    raw: typeof t.raw === "string" ? t.raw : "",
    id: Number.isInteger(t.id) ? t.id : null,
    span: covers ? `${t.start}–${t.end}` : "",
    readable,
    unknown: Boolean(t.unknown),
    differs: Boolean(t.unknown) || (readable !== null && !t.special && !sameReading(readable, shown)),
  };
}

/** One line naming what the model saw: `raw "##ps" · id 8827 · chars 12–14 · model read "ps"`. */
export function tokenFactsLine(token) {
  const f = tokenFacts(token);
  const parts = [`raw ${JSON.stringify(f.raw)}`];
  if (f.id !== null) parts.push(`id ${f.id}`);
  if (f.span) parts.push(`chars ${f.span}`);
  if (f.unknown) parts.push("unknown token");
  else if (f.differs) parts.push(`model read ${JSON.stringify(f.readable)}`);
  return parts.join(" · ");
}
