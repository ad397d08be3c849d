// Unit tests for token groups and labels (lib/tokens.js): `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  describeAxis,
  identityGroups,
  parseTokenGroups,
  positionName,
  snippet,
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
