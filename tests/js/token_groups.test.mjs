// Unit tests for the X-Tokens header parser of the browser client: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseTokenGroups } from "../../src/visualizeai/web/static/js/api.js";

test("parses single positions, ranges and split groups", () => {
  assert.deepEqual(parseTokenGroups("0,1-3,5+7-8,12"), [[0], [1, 2, 3], [5, 7, 8], [12]]);
  assert.deepEqual(parseTokenGroups(""), []);
  assert.deepEqual(parseTokenGroups(null), []);
});

test("refuses malformed entries", () => {
  assert.throws(() => parseTokenGroups("1,x"), /Bad X-Tokens entry "x"/);
  assert.throws(() => parseTokenGroups("3-1"), /Bad X-Tokens entry/);
});
