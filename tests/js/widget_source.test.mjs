// Unit tests for the notebook widget's data source over anywidget model messages: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createModelSource, SourceError } from "../../src/visualizeai/web/static/js/widget/source.js";

/** An anywidget-like model; `answer(content)` → [reply, buffers] | null (no reply), delivered to every listener. */
function fakeModel(answer, state = { info: { n: 3, layers: 1, heads: 1 } }) {
  const listeners = [];
  const model = {
    sent: [],
    get: (name) => state[name],
    on: (name, cb) => name === "msg:custom" && listeners.push(cb),
    off: (name, cb) => listeners.splice(listeners.indexOf(cb), 1),
    send(content) {
      model.sent.push(content);
      const got = answer(content);
      if (got) queueMicrotask(() => listeners.slice().forEach((cb) => cb(...got)));
    },
    listeners,
  };
  return model;
}

const half = (...values) => new DataView(new Uint16Array(values).buffer); // float16 bit patterns

test("a tile reply decodes its float16 buffer; the request names the block", async () => {
  const model = fakeModel((c) => [
    { type: "tile", id: c.id, rows: [0, 1], cols: [0, 2], shape: [1, 2], pooled: false, pool: "mean" },
    [half(0x3c00, 0x3800)],
  ]);
  const source = createModelSource(model);
  const tile = await source.tile({ layer: 0, head: null, rows: [0, 1], cols: [0, 2], size: 8 });
  assert.deepEqual(Array.from(tile.values), [1, 0.5]);
  assert.deepEqual(tile.shape, [1, 2]);
  assert.equal(tile.pooled, false);
  const { id, ...request } = model.sent[0];
  assert.deepEqual(request, { type: "tile", layer: 0, head: null, rows: [0, 1], cols: [0, 2], size: 8, pool: "mean" });
  assert.equal(typeof id, "string");
});

test("a row reply is exact float32; thumbnails are uint8; an error reply rejects with its message", async () => {
  const row = new Float32Array([0.1, 0.2, 0.7]);
  const model = fakeModel((c) => {
    if (c.type === "row") return [{ type: "row", id: c.id }, [new DataView(row.buffer)]];
    if (c.type === "thumbnails") return [{ type: "thumbnails", id: c.id, heads: 1, size: 2, maxima: [0.5] }, [new Uint8Array([0, 9, 255, 1])]];
    return [{ type: "error", id: c.id, message: "Layer 4 is out of range" }, []];
  });
  const source = createModelSource(model);
  assert.deepEqual(Array.from(await source.row({ layer: 0, head: 0, row: 2 })), Array.from(row));
  const thumbs = await source.thumbnails({ layer: 0, size: 2 });
  assert.deepEqual([thumbs.heads, thumbs.size, Array.from(thumbs.pixels), Array.from(thumbs.maxima)], [1, 2, [0, 9, 255, 1], [0.5]]);
  await assert.rejects(source.tile({ layer: 4, head: 0 }), (err) => err instanceof SourceError && err.message === "Layer 4 is out of range");
});

test("two views of one model never take each other's replies", async () => {
  let n = 0;
  const model = fakeModel((c) => [{ type: "row", id: c.id }, [new DataView(new Float32Array([++n]).buffer)]]);
  const a = createModelSource(model);
  const b = createModelSource(model);
  const [ra, rb] = await Promise.all([a.row({ layer: 0, head: 0, row: 0 }), b.row({ layer: 0, head: 0, row: 0 })]);
  assert.deepEqual([ra[0], rb[0]], [1, 2]);
  assert.notEqual(model.sent[0].id, model.sent[1].id);
});

test("an aborted request rejects with AbortError and its late reply is dropped; close stops listening", async () => {
  let deliver;
  const model = fakeModel((c) => {
    deliver = () => model.listeners.slice().forEach((cb) => cb({ type: "row", id: c.id }, [new DataView(new Float32Array([1]).buffer)]));
    return null;
  });
  const source = createModelSource(model);
  const controller = new AbortController();
  const pending = source.row({ layer: 0, head: 0, row: 0 }, controller.signal);
  controller.abort();
  await assert.rejects(pending, { name: "AbortError" });
  deliver(); // nothing waits for it any more
  await assert.rejects(source.row({ layer: 0, head: 0, row: 0 }, controller.signal), { name: "AbortError" });
  const open = source.row({ layer: 0, head: 0, row: 1 });
  source.close();
  await assert.rejects(open, { name: "AbortError" });
  assert.equal(model.listeners.length, 0);
});
