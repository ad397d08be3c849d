// Unit tests for the heatmap's find (views/navigate.js) and the text panel's lines (views/textpanel.js):
// `node --test tests/js/navigate.test.mjs`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { findMatches } from "../../src/visualizeai/web/static/js/views/navigate.js";
import { layoutLines } from "../../src/visualizeai/web/static/js/views/textpanel.js";

// "<s>" + "The cat sat. The Cat ran." cut as byte-level BPE does (leading spaces in the tokens)
const text = "The cat sat. The Cat ran.";
const pieces = ["The", " cat", " sat", ".", " The", " Cat", " r", "an", "."];
function infoOf(t, parts) {
  const tokens = [{ index: 0, display: "<s>", special: true, start: 0, end: 0 }];
  let at = 0;
  for (const p of parts) {
    tokens.push({ index: tokens.length, display: p, special: false, start: at, end: at + p.length });
    at += p.length;
  }
  return { text: t, tokens, n: tokens.length };
}
const info = infoOf(text, pieces);

test("find: every occurrence, case-insensitive, as the tokens covering it", () => {
  const found = findMatches(info, "cat");
  assert.deepEqual(
    found.map((m) => m.tokens),
    [[2, 3], [6, 7]],
  );
  assert.deepEqual(found[0].chars, [4, 7]);
  // a phrase across tokens, and one that starts inside a token
  assert.deepEqual(findMatches(info, "cat sat").map((m) => m.tokens), [[2, 4]]);
  assert.deepEqual(findMatches(info, "ran.").map((m) => m.tokens), [[7, 10]]);
  assert.deepEqual(findMatches(info, "at").map((m) => m.tokens), [[2, 3], [3, 4], [6, 7]]);
  assert.deepEqual(findMatches(info, "  "), []);
  assert.deepEqual(findMatches(info, "dog"), []);
  assert.equal(findMatches(info, "t", 2).length, 2); // at most `limit`
});

test("find: text past the analysed tokens (truncated input) is not matched", () => {
  const cut = infoOf(text + " The cat again.", pieces);
  assert.equal(findMatches(cut, "cat").length, 2);
});

test("find without text looks at token labels", () => {
  const bare = { tokens: info.tokens, n: info.n };
  assert.deepEqual(findMatches(bare, "the").map((m) => m.tokens), [[1, 2], [5, 6]]);
});

test("lines: every token once, in order, cut at word starts and after newlines", () => {
  const long = infoOf("aa bb\ncc dd ee", ["aa", " bb", "\n", "cc", " dd", " ee"]);
  const lines = layoutLines(long, 6);
  const tokens = lines.flatMap((l) => l.tokens);
  assert.deepEqual(tokens, [0, 1, 2, 3, 4, 5, 6]);
  // the special token and "aa bb" then the newline token breaks; "cc dd" fits 6, " ee" goes on
  assert.deepEqual(
    lines.map((l) => l.pieces.map((p) => p.text).join("")),
    ["<s>aa", " bb ", "cc dd", " ee"],
  );
  const many = infoOf("x".repeat(10), Array.from({ length: 10 }, () => "x"));
  // no word starts: a line is cut only when 25% over
  assert.ok(layoutLines(many, 4).every((l) => l.pieces.map((p) => p.text).join("").length <= 5));
});
