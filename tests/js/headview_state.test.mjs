// The Head view's permalink fields (lib/state.js URL_FIELDS) and its head-list helpers: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

const JS = "../../src/visualizeai/web/static/js";
const { readUrlState, viewQuery } = await import(`${JS}/lib/state.js`);
const { formatHeadList, parseHeadList } = await import(`${JS}/views/headview.js`);

test("the head view's selection, threshold, top-k and pin round-trip through the query", () => {
  const state = { view: "headview", layer: 2, headviewHeads: "1,4", headviewThreshold: 0.2, headviewTopk: 5, headviewPin: "k:3" };
  const query = viewQuery(state);
  assert.equal(query, "layer=2&view=headview&heads=1%2C4&threshold=0.2&topk=5&pin=k%3A3");
  assert.deepEqual(readUrlState(`?${query}`), state);
  assert.deepEqual(readUrlState("?heads=none&threshold=0&pin=q:0"), { headviewHeads: "none", headviewThreshold: 0, headviewPin: "q:0" });
});

test("malformed head view fields are ignored", () => {
  assert.deepEqual(readUrlState("?heads=1,,2&threshold=1.5&topk=0&pin=x:3"), {});
  assert.deepEqual(readUrlState("?heads=%3Cb%3E&threshold=-1&topk=21&pin=q:-1"), {});
});

test("a head list names the heads the model has, in order; every head is the default", () => {
  assert.deepEqual(parseHeadList("4,1,4", 12), [1, 4]);
  assert.deepEqual(parseHeadList("none", 12), []);
  assert.equal(parseHeadList("13,20", 12), null); // none of them exists: every head
  assert.equal(parseHeadList(undefined, 12), null);
  assert.equal(formatHeadList([0, 1, 2], 3), undefined);
  assert.equal(formatHeadList([], 3), "none");
  assert.equal(formatHeadList([0, 2], 3), "0,2");
});
