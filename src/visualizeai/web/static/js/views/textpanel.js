// The text panel, a part of the heatmap's panel: the whole input as running text, each token shaded by how
// much the focused query token attends to it ("what does this token read"). Virtualised: the text is cut into
// lines once, and only the lines in the scrolled window are in the DOM, so 32k tokens scroll like 100.

import { el, span } from "../lib/dom.js";
import { formatValue } from "../lib/color.js";
import { tokenFacts, tokenFactsLine, tokenLabel } from "../lib/tokens.js";

const LINE_HEIGHT = 22; // CSS px, fixed so a line's place is its index times this
const VIEW_LINES = 12;
const OVERSCAN = 4;
const CHAR_PX = 7.6; // average width of a character of the panel's font, for cutting lines
const SHADE = [234, 88, 12];

/**
 * Cut the tokens of `info` into lines of at most `chars` characters (at token boundaries, and after a
 * newline): [{tokens: [i, …], pieces: [{index, text} | {text}]}], where pieces without an index are the text
 * between tokens. Special tokens (no characters) appear under their label.
 */
export function layoutLines(info, chars) {
  const text = typeof info.text === "string" ? info.text : "";
  const lines = [];
  let current = { tokens: [], pieces: [], length: 0 };
  let cursor = 0;
  const push = () => {
    lines.push(current);
    current = { tokens: [], pieces: [], length: 0 };
  };
  const add = (piece, length) => {
    // break before a piece that starts a word; inside a word only when the line is far too long
    const over = current.length + length > chars;
    const wordStart = /^\s/.test(piece.text) || piece.index === undefined;
    if (current.pieces.length && over && (wordStart || current.length + length > chars * 1.25)) push();
    current.pieces.push(piece);
    if (piece.index !== undefined) current.tokens.push(piece.index);
    current.length += length;
  };
  info.tokens.forEach((token, index) => {
    const has = text && !token.special && token.end > token.start;
    if (!has) {
      add({ index, text: tokenLabel(token), special: true }, tokenLabel(token).length + 1);
      return;
    }
    if (token.start > cursor) {
      const gap = text.slice(cursor, token.start);
      for (const [k, part] of gap.split("\n").entries()) {
        if (k > 0) push();
        if (part) add({ text: part }, part.length);
      }
    }
    const body = text.slice(token.start, token.end);
    const parts = body.split("\n");
    // a token holding newlines: its text on this line, the line broken after it
    add({ index, text: parts.join(" ") }, body.length);
    if (parts.length > 1) push();
    cursor = Math.max(cursor, token.end);
  });
  if (current.pieces.length) push();
  return lines;
}

/**
 * Mount the panel into `root`. `api`: {signal, info() → analysis meta, focus() → token position or null,
 * row(position, signal) → Promise<Float32Array(n)>, pick(position)}. Returns {update(force)}: call it when the
 * focus changes, with `force` when what is shown changes.
 */
export function mountTextPanel(root, api) {
  const on = (target, type, fn, opts = {}) => target.addEventListener(type, fn, { ...opts, signal: api.signal });
  const title = el("h3", { className: "text-panel-title", text: "The text" });
  const hint = el("p", {
    className: "hint",
    attrs: { id: "text-panel-hint" },
    text: "Focus a query token (click a cell, a row label or a word here) to shade the text by what it attends to.",
  });
  const spacer = el("div", { className: "text-panel-spacer" });
  const box = el(
    "div",
    {
      className: "text-panel-scroll",
      attrs: { id: "text-panel", tabindex: "0", "aria-label": "The text, shaded by attention" },
    },
    spacer,
  );
  box.style.height = `${LINE_HEIGHT * VIEW_LINES}px`;
  root.replaceChildren(title, hint, box);

  let info = null;
  let lines = [];
  let lineOf = new Int32Array(0); // token → its line
  let chars = 0;
  let weights = null; // Float32Array(n) of the focused row
  let strongest = 0;
  let focus = null;
  let request = null;
  let frame = false;

  function rebuild() {
    info = api.info();
    if (!info) return;
    chars = Math.max(20, Math.floor((box.clientWidth - 24) / CHAR_PX));
    lines = layoutLines(info, chars);
    lineOf = new Int32Array(info.n);
    lines.forEach((l, k) => {
      for (const i of l.tokens) lineOf[i] = k;
    });
    spacer.style.height = `${lines.length * LINE_HEIGHT}px`;
    box.dataset.lines = String(lines.length);
    render();
  }

  function shade(index) {
    if (!weights || !(strongest > 0)) return null;
    const w = weights[index];
    if (!(w > 0)) return null;
    return Math.sqrt(Math.min(1, w / strongest)); // √ keeps weak attention visible
  }

  function render() {
    frame = false;
    const first = Math.max(0, Math.floor(box.scrollTop / LINE_HEIGHT) - OVERSCAN);
    const last = Math.min(lines.length, Math.ceil((box.scrollTop + box.clientHeight) / LINE_HEIGHT) + OVERSCAN);
    const nodes = [];
    for (let k = first; k < last; k++) {
      const row = el("div", { className: "text-line", dataset: { line: k } });
      row.style.top = `${k * LINE_HEIGHT}px`;
      for (const piece of lines[k].pieces) {
        if (piece.index === undefined) {
          row.append(piece.text);
          continue;
        }
        const tok = span(piece.text, piece.special ? "tp-tok special" : "tp-tok");
        tok.dataset.index = String(piece.index);
        const token = info.tokens[piece.index];
        tok.title = tokenFactsLine(token);
        if (tokenFacts(token).differs) tok.classList.add("differs"); // the model read another form (CSS marks it)
        const alpha = shade(piece.index);
        if (alpha !== null) {
          tok.style.backgroundColor = `rgba(${SHADE[0]}, ${SHADE[1]}, ${SHADE[2]}, ${(0.08 + 0.8 * alpha).toFixed(3)})`;
          tok.dataset.weight = String(weights[piece.index]);
          tok.title = `k=${piece.index}: ${formatValue(weights[piece.index])}\n${tok.title}`;
        }
        if (piece.index === focus) tok.classList.add("focused");
        row.append(tok);
      }
      nodes.push(row);
    }
    spacer.replaceChildren(...nodes);
    box.dataset.rendered = String(nodes.length);
    box.dataset.first = String(first);
  }

  function scheduleRender() {
    if (frame) return;
    frame = true;
    requestAnimationFrame(render);
  }

  function scrollToToken(index) {
    if (!lines.length || index === null || index >= lineOf.length) return;
    const y = lineOf[index] * LINE_HEIGHT;
    if (y < box.scrollTop || y > box.scrollTop + box.clientHeight - LINE_HEIGHT) {
      box.scrollTop = Math.max(0, y - box.clientHeight / 2);
    }
  }

  /** Follow the focus; `force` when what is shown changed (another head: the same focus, another row). */
  async function update(force = false) {
    const now = api.info();
    if (!now) return;
    if (now !== info || !lines.length) rebuild();
    const next = api.focus();
    if (!force && next === focus && (weights || next === null)) return;
    focus = next;
    if (request) request.abort();
    weights = null;
    strongest = 0;
    box.dataset.focus = focus === null ? "" : String(focus);
    if (focus === null) {
      box.dataset.state = "plain";
      title.textContent = "The text";
      hint.hidden = false;
      render();
      return;
    }
    box.dataset.state = "loading";
    title.replaceChildren(
      span("The text, shaded by what "),
      span(tokenLabel(info.tokens[focus]), "tok"),
      span(` (q=${focus}) attends to`),
      span(` · ${tokenFactsLine(info.tokens[focus])}`, "tp-facts"),
    );
    hint.hidden = true;
    scrollToToken(focus);
    request = new AbortController();
    const signal = request.signal;
    try {
      const row = await api.row(focus, signal);
      if (signal.aborted) return;
      weights = row;
      strongest = 0;
      for (let i = 0; i < row.length; i++) if (row[i] > strongest) strongest = row[i];
    } catch (err) {
      if (err && err.name === "AbortError") return;
      hint.hidden = false;
      hint.textContent = err.message || String(err);
      box.dataset.state = "error";
      return;
    }
    render();
    box.dataset.state = "ready";
  }

  on(box, "scroll", scheduleRender, { passive: true });
  on(box, "click", (event) => {
    const tok = event.target.closest && event.target.closest(".tp-tok");
    if (tok) api.pick(Number(tok.dataset.index));
  });
  const resize = new ResizeObserver(() => {
    if (info && Math.max(20, Math.floor((box.clientWidth - 24) / CHAR_PX)) !== chars) rebuild();
  });
  resize.observe(box);
  api.signal.addEventListener("abort", () => {
    resize.disconnect();
    if (request) request.abort();
  });

  return { update };
}
