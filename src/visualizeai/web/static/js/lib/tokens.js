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
