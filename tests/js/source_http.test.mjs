// Unit tests for the HTTP data source (lib/source_http.js) against a stand-in fetch: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

const { createHttpSource } = await import("../../src/visualizeai/web/static/js/lib/source_http.js");
const { ApiError } = await import("../../src/visualizeai/web/static/js/lib/api.js");

const halves = (...values) => new Uint16Array(values).buffer; // float16 bit patterns, little-endian host

function respond(body, headers = {}, status = 200) {
  return new Response(body, { status, headers });
}

function fakeFetch(handler) {
  const seen = [];
  globalThis.fetch = async (url, init) => {
    seen.push(String(url));
    return handler(new URL(String(url), "http://app"), init);
  };
  return seen;
}

const META = { key: "k1", n: 4, layers: 2, heads: 3, tokens: [] };

test("tile asks for the block and decodes values, ranges and pooling from the headers", async () => {
  const seen = fakeFetch(() =>
    respond(halves(0x3c00, 0x3800, 0x0000, 0x3400), {
      "X-Shape": "2,2", "X-Dtype": "float16", "X-Exact": "false", "X-Pool": "max", "X-Rows": "0:4", "X-Cols": "1:3",
    }),
  );
  const source = createHttpSource(META);
  const tile = await source.tile({ layer: 1, head: null, rows: [0, 4], cols: [1, 3], size: 2, pool: "max" });
  assert.equal(seen[0], "/api/v1/analyses/k1/tile?layer=1&rows=0%3A4&cols=1%3A3&size=2&pool=max");
  assert.deepEqual(tile.shape, [2, 2]);
  assert.deepEqual(Array.from(tile.values), [1, 0.5, 0, 0.25]);
  assert.deepEqual([tile.rows, tile.cols, tile.pooled, tile.pool], [[0, 4], [1, 3], true, "max"]);
});

test("row and topKeys read their endpoints", async () => {
  const seen = fakeFetch((url) =>
    url.pathname.endsWith("/row")
      ? respond(halves(0x3800, 0x3800, 0, 0), { "X-Shape": "4", "X-Dtype": "float16" })
      : respond(JSON.stringify({ rows: [1, 3], layer: 0, head: 2, n: 4, keys: [{ index: 0, weight: 0.7 }] })),
  );
  const source = createHttpSource(META);
  assert.deepEqual(Array.from(await source.row({ layer: 0, head: 2, row: 3 })), [0.5, 0.5, 0, 0]);
  assert.deepEqual(await source.topKeys({ layer: 0, head: 2, rows: [1, 3], k: 5 }), [{ index: 0, weight: 0.7 }]);
  assert.equal(seen[0], "/api/v1/analyses/k1/row?row=3&layer=0&head=2");
  assert.equal(seen[1], "/api/v1/analyses/k1/top-keys?rows=1%3A3&layer=0&head=2&k=5");
});

test("thumbnails of one layer, also from a server that sends every layer", async () => {
  const all = new Uint8Array(2 * 3 * 2 * 2).map((_, i) => i);
  fakeFetch(() => respond(all, { "X-Shape": "2,3,2,2", "X-Dtype": "uint8" }));
  const got = await createHttpSource(META).thumbnails({ layer: 1, size: 2 });
  assert.deepEqual([got.heads, got.size], [3, 2]);
  assert.deepEqual(Array.from(got.pixels), Array.from(all.subarray(12, 24)));
  fakeFetch(() => respond(all.subarray(12, 24), { "X-Shape": "3,2,2", "X-Dtype": "uint8" }));
  assert.deepEqual(Array.from((await createHttpSource(META).thumbnails({ layer: 1, size: 2 })).pixels), Array.from(all.subarray(12, 24)));
});

test("thumbnails carry each head's maximum from X-Maxima, cut to the layer", async () => {
  const all = new Uint8Array(2 * 3 * 2 * 2);
  fakeFetch(() => respond(all, { "X-Shape": "2,3,2,2", "X-Dtype": "uint8", "X-Maxima": "0.5,0.25,1,0.125,0.75,0.5" }));
  const got = await createHttpSource(META).thumbnails({ layer: 1, size: 2, pool: "max" });
  assert.deepEqual(Array.from(got.maxima), [0.125, 0.75, 0.5]);
  fakeFetch(() => respond(all.subarray(12, 24), { "X-Shape": "3,2,2", "X-Dtype": "uint8", "X-Maxima": "0.125,0.75,0.5" }));
  assert.deepEqual(Array.from((await createHttpSource(META).thumbnails({ layer: 1, size: 2 })).maxima), [0.125, 0.75, 0.5]);
  fakeFetch(() => respond(all.subarray(12, 24), { "X-Shape": "3,2,2", "X-Dtype": "uint8", "X-Maxima": "x,1,2" }));
  assert.equal((await createHttpSource(META).thumbnails({ layer: 0, size: 2 })).maxima, null); // malformed: none
});

test("a refusal carries the server's detail and status", async () => {
  fakeFetch(() => respond(JSON.stringify({ detail: "Rollout of 20,000 tokens would cost 8e12, over 4e9." }), {}, 400));
  const err = await createHttpSource(META).rollout(null).catch((e) => e);
  assert.ok(err instanceof ApiError);
  assert.equal(err.status, 400);
  assert.match(err.message, /would cost 8e12/);
});

test("a dropped analysis is run again once, shared, and the request repeated with the new key", async () => {
  const seen = fakeFetch((url) =>
    url.pathname.includes("/k1/")
      ? respond(JSON.stringify({ detail: "gone" }), {}, 404)
      : respond(halves(0x3c00), { "X-Shape": "1", "X-Dtype": "float16" }),
  );
  let reruns = 0;
  const source = createHttpSource(META, { rerun: async () => (reruns++, { ...META, key: "k2" }) });
  const [a, b] = await Promise.all([source.row({ layer: 0, head: 0, row: 0 }), source.row({ layer: 0, head: 1, row: 0 })]);
  assert.deepEqual([Array.from(a), Array.from(b), reruns, source.key], [[1], [1], 1, "k2"]);
  assert.equal(seen.filter((u) => u.includes("/k2/")).length, 2);
});

test("analyze asks for the brief answer only when told to", async () => {
  const { analyze } = await import("../../src/visualizeai/web/static/js/lib/api.js");
  const seen = fakeFetch(() => respond(JSON.stringify({ key: "k2", n: 4 })));
  assert.deepEqual(await analyze("m", "some text", { brief: true }), { key: "k2", n: 4 });
  await analyze("", "some text");
  assert.deepEqual(seen, ["/api/v1/analyze?brief=true", "/api/v1/analyze"]);
});
