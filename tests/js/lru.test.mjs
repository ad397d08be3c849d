// Unit tests for the client caches (lib/lru.js): `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { cachedLoad, createLru } from "../../src/visualizeai/web/static/js/lib/lru.js";

test("cachedLoad keeps the newest `limit` requests and forgets failures", async () => {
  const cache = new Map();
  let calls = 0;
  const load = (v) => () => {
    calls++;
    return Promise.resolve(v);
  };
  await cachedLoad(cache, 2, "a", load(1));
  await cachedLoad(cache, 2, "b", load(2));
  await cachedLoad(cache, 2, "a", load(99)); // hit: refreshed, not loaded again
  await cachedLoad(cache, 2, "c", load(3)); // evicts b, the oldest
  assert.equal(calls, 3);
  assert.deepEqual([...cache.keys()], ["a", "c"]);
  const failing = cachedLoad(cache, 2, "x", () => Promise.reject(new Error("boom")));
  await assert.rejects(failing, /boom/);
  assert.equal(cache.has("x"), false);
});

test("createLru evicts by total cost, oldest first; get refreshes", () => {
  const lru = createLru(10, (v) => v.length);
  lru.set("a", "xxxx");
  lru.set("b", "xxxx");
  assert.equal(lru.get("a"), "xxxx"); // a is now the newest
  lru.set("c", "xxxx"); // 12 > 10: b goes
  assert.deepEqual(lru.keys(), ["a", "c"]);
  assert.equal(lru.cost, 8);
  lru.set("huge", "x".repeat(11)); // costlier than the whole cache: not kept
  assert.equal(lru.has("huge"), false);
  lru.set("a", "xx"); // replacing updates the cost
  assert.equal(lru.cost, 6);
  lru.delete("c");
  assert.deepEqual(lru.keys(), ["a"]);
  lru.clear();
  assert.equal(lru.size, 0);
});
