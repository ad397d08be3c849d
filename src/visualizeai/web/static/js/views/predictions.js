// Predictions of the model's LM head, shown above the views: top-k per [MASK] (masked LMs) or for the next token
// (causal LMs) with probability bars, and per layer the tokens that position attends to most. Masked positions
// are outlined in the heatmap (ctx.marks.rowMarks). Click-to-mask: clicking a token in the strip here, or
// double-clicking a token label of the heatmap (a whole word when words are merged), replaces its characters
// with [MASK] and opens the analysis of the new text (ctx.openText: analysed by POST, then its keyed page; the
// back button returns to the old one). The panel collapses to one line (its state is kept in localStorage).

import { interpolator } from "../lib/color.js";
import { span } from "../lib/dom.js";
import { tokenBadge } from "../lib/token_badge.js";
import { tokenFactsLine } from "../lib/tokens.js";

export const MASK = "[MASK]";

/** `text` with the characters of `token` ({start, end}) replaced by [MASK]. */
export function maskedText(text, token) {
  return text.slice(0, token.start) + MASK + text.slice(token.end);
}

/** Whether clicking `token` can mask it: a real token (not special), with characters, not already a mask. */
export function maskable(meta, token) {
  return !token.special && token.end > token.start && !isMask(meta, token.index);
}

function isMask(meta, index) {
  return (meta.predictions || []).some((p) => p.kind === "mask" && p.position === index);
}

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children);
  return node;
}

/** A candidate as a person reads it: surrounding whitespace trimmed, blank tokens made visible. */
function shownToken(token) {
  const trimmed = token.trim();
  if (trimmed) return trimmed;
  return token.includes("\n") ? "⏎" : "␣";
}

function percent(score) {
  const value = score * 100;
  if (value >= 10) return `${value.toFixed(1)}%`;
  if (value >= 0.01) return `${value.toPrecision(2)}%`;
  return `${value.toExponential(1)}%`;
}

function candidateList(prediction) {
  const list = el("ol", "pred-list");
  for (const c of prediction.candidates) {
    const bar = el("span", "pred-bar");
    const fill = el("span", "pred-bar-fill");
    fill.style.width = `${Math.max(0, Math.min(1, c.score)) * 100}%`;
    bar.append(fill);
    // a byte-level piece of a character decodes to "�" on its own: show the bytes (<0xF0>) so candidates differ
    const partial = c.token.includes("\uFFFD") && Boolean(c.readable);
    const token = span(shownToken(partial ? c.readable : c.token), "pred-token");
    token.title = `${JSON.stringify(c.token)} · id ${c.token_id}${c.readable ? ` · model read ${JSON.stringify(c.readable)}` : ""}`;
    if (c.readable && c.readable.trim() !== c.token.trim()) {
      // the decoded token hides what the model predicted (a partial character): say it differs
      const badge = span("≠", "tok-badge");
      badge.title = token.title;
      badge.dataset.badge = "differs";
      token.append(badge);
    }
    const item = el("li", "", token, bar, span(percent(c.score), "pred-score"));
    item.dataset.tokenId = String(c.token_id);
    item.dataset.score = String(c.score);
    list.append(item);
  }
  return list;
}

function focusTable(meta, prediction, store, signal) {
  const table = el("table", "pred-focus-table");
  const caption = el("caption", "", "What it attends to in each layer (mean over heads)");
  const body = el("tbody");
  prediction.focus.forEach((keys, layer) => {
    const button = el("button", "pred-layer", `Layer ${layer}`);
    button.type = "button";
    button.title = `Show layer ${layer} in the views`;
    button.addEventListener("click", () => store.set({ layer }), { signal });
    const chips = el("div", "pred-keys");
    for (const key of keys) {
      const token = meta.tokens[key.index];
      const chip = el("span", `pred-key${token.special ? " special" : ""}`);
      chip.append(span(token.display, "tok"), ...[tokenBadge(token)].filter(Boolean), span(key.weight.toFixed(2), "w"));
      chip.title = `k=${key.index}: ${key.weight.toPrecision(4)}\n${tokenFactsLine(token)}`;
      chip.style.background = interpolator("blues")(0.08 + 0.72 * key.weight);
      if (key.weight > 0.55) chip.classList.add("dark");
      chips.append(chip);
    }
    body.append(el("tr", "", el("th", "", button), el("td", "", chips)));
  });
  table.append(caption, body);
  return table;
}

function card(meta, prediction, store, signal) {
  const token = meta.tokens[prediction.position];
  const title = el("h3", "pred-title");
  if (prediction.kind === "mask") {
    title.append("Guesses for ", span(token.display, "tok mask"), span(` position ${prediction.position}`, "pos"));
  } else {
    title.append("Next token after ", span(token.display, "tok"), ...[tokenBadge(token)].filter(Boolean), span(` position ${prediction.position}`, "pos"));
  }
  title.title = tokenFactsLine(token);
  const article = el(
    "article",
    "pred-card",
    title,
    el("div", "pred-body", candidateList(prediction), focusTable(meta, prediction, store, signal)),
  );
  article.dataset.position = String(prediction.position);
  article.dataset.kind = prediction.kind;
  return article;
}

function tokenStrip(meta, onMask, signal) {
  const strip = el("p", "token-strip");
  strip.id = "token-strip";
  let at = 0;
  for (const token of meta.tokens) {
    if (token.special) continue;
    if (token.start > at) strip.append(meta.text.slice(at, token.start));
    const chip = el("button", "token-chip", token.display);
    chip.type = "button";
    chip.dataset.index = String(token.index);
    if (isMask(meta, token.index)) {
      chip.classList.add("mask");
      chip.disabled = true;
      chip.title = "masked";
    } else if (maskable(meta, token)) {
      chip.title = `Mask “${token.display}” and run again\n${tokenFactsLine(token)}`;
      chip.addEventListener("click", () => onMask(token.index), { signal });
    } else {
      chip.disabled = true;
      chip.title = tokenFactsLine(token);
    }
    strip.append(chip);
    const badge = tokenBadge(token);
    if (badge) strip.append(badge);
    at = Math.max(at, token.end);
  }
  if (at < meta.text.length) strip.append(meta.text.slice(at));
  return strip;
}

const COLLAPSED = "visualizeai.predictions.collapsed"; // kept across analyses, like a preference

function collapsedBefore() {
  try {
    return globalThis.localStorage.getItem(COLLAPSED) === "1";
  } catch {
    return false; // storage refused (private mode, file page): open
  }
}

function remember(open) {
  try {
    if (open) globalThis.localStorage.removeItem(COLLAPSED);
    else globalThis.localStorage.setItem(COLLAPSED, "1");
  } catch {
    // nothing to keep it in: the panel opens next time
  }
}

/** One line for the collapsed panel: the first prediction's best candidate. */
function topGuess(predictions) {
  const first = predictions[0];
  if (!first || !first.candidates || !first.candidates.length) return "";
  const best = first.candidates[0];
  const what = first.kind === "mask" ? `Best guess at position ${first.position}` : "Next token";
  return `${what}: ${shownToken(best.token)} (${percent(best.score)})`;
}

/**
 * Fill `section` for the analysis ctx.source.info and mark its rows in the heatmap. `ctx`: {source, store,
 * marks, openText(text)}. Returns {unmount()}.
 */
export function mount(section, ctx) {
  const controller = new AbortController();
  const { signal } = controller;
  const { store, marks } = ctx;
  const meta = ctx.source.info;
  const predictions = meta.predictions || [];
  const clickable = meta.model.kind === "masked-lm";

  /** Replace the characters of the tokens at `positions` (one token, or the pieces of a word) with [MASK]. */
  function maskPositions(positions) {
    const tokens = positions.map((i) => meta.tokens[i]).filter((t) => t && maskable(meta, t));
    if (!tokens.length) return;
    const chars = { start: Math.min(...tokens.map((t) => t.start)), end: Math.max(...tokens.map((t) => t.end)) };
    ctx.openText(maskedText(meta.text, chars));
  }
  const maskToken = (index) => maskPositions([index]);

  const parts = [];
  let title = null;
  let hint = null;
  if (clickable) {
    title = el("h2", "", predictions.length ? "Masked-token predictions" : "Mask a token");
    hint = el("p", "hint", "Click a token here, or double-click its heatmap label, to replace it with [MASK] and run again.");
    parts.push(tokenStrip(meta, maskToken, signal));
  } else if (predictions.length) {
    title = el("h2", "", "Next-token prediction");
  }
  if (meta.predictions_note) {
    const note = el("p", "alert alert-warning pred-note", meta.predictions_note);
    note.id = "predictions-note";
    parts.push(note);
  }
  if (predictions.length) {
    parts.push(el("div", "pred-cards", ...predictions.map((p) => card(meta, p, store, signal))));
  }
  if (!parts.length) {
    section.replaceChildren();
    section.hidden = true;
  } else {
    const body = el("div", "pred-body-wrap", ...parts);
    body.id = "predictions-body";
    const toggle = el("button", "button small secondary pred-toggle");
    toggle.type = "button";
    toggle.id = "predictions-toggle";
    toggle.setAttribute("aria-controls", body.id);
    const summary = span(topGuess(predictions), "hint pred-summary");
    summary.id = "predictions-summary";
    const head = el("div", "pred-head", title || el("h2", "", "Predictions"), hint || "", summary, toggle);
    const setOpen = (open) => {
      body.hidden = !open;
      if (hint) hint.hidden = !open;
      summary.hidden = open || !summary.textContent;
      toggle.textContent = open ? "Collapse" : "Expand";
      toggle.setAttribute("aria-expanded", String(open));
      section.dataset.collapsed = String(!open);
    };
    toggle.addEventListener("click", () => {
      const open = body.hidden;
      setOpen(open);
      remember(open);
    }, { signal });
    setOpen(!collapsedBefore());
    section.replaceChildren(head, body);
    section.hidden = false;
  }

  marks.rowMarks = (shownMeta) => (shownMeta.predictions || []).map((p) => ({ position: p.position, kind: p.kind }));
  marks.onLabelDoubleClick = clickable ? maskPositions : null;

  return {
    update() {
      return Promise.resolve();
    },
    unmount() {
      controller.abort();
      section.replaceChildren();
      section.hidden = true;
      marks.rowMarks = null;
      marks.onLabelDoubleClick = null;
    },
  };
}
