// Unit tests for token groups and labels (lib/tokens.js): `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  describeAxis,
  identityGroups,
  parseTokenGroups,
  positionName,
  snippet,
  tokenFacts,
  tokenFactsLine,
  tokenLabel,
} from "../../src/visualizeai/web/static/js/lib/tokens.js";

test("parses single positions, ranges and split groups", () => {
  assert.deepEqual(parseTokenGroups("0,1-3,5+7-8,12"), [[0], [1, 2, 3], [5, 7, 8], [12]]);
  assert.deepEqual(parseTokenGroups(""), []);
  assert.deepEqual(parseTokenGroups(null), []);
});

test("refuses malformed entries", () => {
  assert.throws(() => parseTokenGroups("1,x"), /Bad X-Tokens entry "x"/);
  assert.throws(() => parseTokenGroups("3-1"), /Bad X-Tokens entry/);
});

test("labels come from the server's token info; blank ones are made visible", () => {
  assert.equal(tokenLabel({ display: "cat" }), "cat");
  assert.equal(tokenLabel({ display: "cat", label: "Ġcat" }), "Ġcat"); // the server's label wins
  assert.equal(tokenLabel({ display: "  " }), "␣␣");
  assert.equal(tokenLabel({ display: "\n\n\n\n" }), "␣␣␣");
  assert.equal(tokenLabel({ display: "" }), "∅");
  assert.equal(tokenLabel(undefined), "∅");
});

const META = {
  text: "un believably good",
  tokens: [
    { display: "[CLS]", special: true, start: 0, end: 0 },
    { display: "un", special: false, start: 0, end: 2 },
    { display: "believ", special: false, start: 3, end: 9 },
    { display: "ably", special: false, start: 9, end: 13 },
    { display: "good", special: false, start: 14, end: 18 },
  ],
};

test("describeAxis names merged words by the text they cover and keeps special flags", () => {
  const axis = describeAxis(META, [[0], [1], [2, 3], [4]]);
  assert.deepEqual(axis.labels, ["[CLS]", "un", "believably", "good"]);
  assert.deepEqual(axis.special, [true, false, false, false]);
  assert.deepEqual(axis.positions, ["0", "1", "2–3", "4"]);
  assert.deepEqual(describeAxis(META, identityGroups(5)).labels, ["[CLS]", "un", "believ", "ably", "good"]);
});

test("positionName writes runs and gaps", () => {
  assert.equal(positionName([3, 4, 5, 7]), "3–5+7");
  assert.equal(positionName([9]), "9");
});

test("snippet gives the text around a token", () => {
  assert.deepEqual(snippet(META, 2, 3), { before: "un ", token: "believ", after: "abl" });
  assert.deepEqual(snippet(META, 0), { before: "", token: "[CLS]", after: "" });
});

test("token facts name the raw token, its id, its span and what the model read", () => {
  const unk = { raw: "[UNK]", display: "🙂", readable: "[UNK]", id: 100, unknown: true, start: 6, end: 8 };
  assert.deepEqual(tokenFacts(unk), { raw: "[UNK]", id: 100, span: "6–8", readable: "[UNK]", unknown: true, differs: true });
  assert.equal(tokenFactsLine(unk), 'raw "[UNK]" · id 100 · chars 6–8 · unknown token');
  const accent = { raw: "naive", display: "naïve", readable: "naive", id: 15743, start: 9, end: 14 };
  assert.equal(tokenFactsLine(accent), 'raw "naive" · id 15743 · chars 9–14 · model read "naive"');
  const piece = { raw: "##ps", display: "ps", readable: "ps", id: 4523, start: 3, end: 5 };
  assert.equal(tokenFacts(piece).differs, false);
  assert.equal(tokenFactsLine(piece), 'raw "##ps" · id 4523 · chars 3–5');
  const partial = { raw: "ð", display: "", readable: "<0xF0>", id: 27, start: 5, end: 6 };
  assert.equal(tokenFactsLine(partial), 'raw "ð" · id 27 · chars 5–6 · model read "<0xF0>"');
  const cls = { raw: "[CLS]", display: "[CLS]", readable: "[CLS]", id: 101, special: true, start: 0, end: 0 };
  assert.equal(tokenFactsLine(cls), 'raw "[CLS]" · id 101');
  assert.equal(tokenFactsLine({ raw: "x", display: "x", start: 0, end: 1 }), 'raw "x" · chars 0–1'); // no id: old file
  const space = { raw: "Ġ", display: "␣", readable: " ", id: 220, start: 3, end: 4 }; // a lone space (GPT-2)
  assert.equal(tokenFacts(space).differs, false);
});
