// Unit tests for the float16 decoder of the browser client: `node --test tests/js/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { float16ToFloat32 } from "../../src/visualizeai/web/static/js/lib/float16.js";

function bytesOf(...halves) {
  const bytes = new Uint8Array(halves.length * 2);
  halves.forEach((h, i) => {
    bytes[2 * i] = h & 0xff; // little-endian
    bytes[2 * i + 1] = h >> 8;
  });
  return bytes.buffer;
}

test("decodes normal, signed and extreme values exactly", () => {
  const out = float16ToFloat32(bytesOf(0x3c00, 0xc000, 0x3555, 0x7bff, 0x0400, 0x0000, 0x8000));
  assert.deepEqual(Array.from(out), [1, -2, 0.333251953125, 65504, 2 ** -14, 0, -0]);
  assert.ok(Object.is(out[6], -0));
});

test("decodes subnormals, infinities and NaN", () => {
  const out = float16ToFloat32(bytesOf(0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00));
  assert.equal(out[0], 2 ** -24);
  assert.equal(out[1], 1023 * 2 ** -24);
  assert.equal(out[2], Infinity);
  assert.equal(out[3], -Infinity);
  assert.ok(Number.isNaN(out[4]));
});

test("reads a view at an odd byte offset and rejects an odd byte count", () => {
  const buffer = new Uint8Array([0xaa, 0x00, 0x3c, 0x00, 0x38]).buffer;
  assert.deepEqual(Array.from(float16ToFloat32(new Uint8Array(buffer, 1, 4))), [1, 0.5]);
  assert.throws(() => float16ToFloat32(new Uint8Array(buffer, 0, 3)), /odd number of bytes/);
});

test("base64Bytes reads base64 with line breaks, and decodes to the same halves", async () => {
  const { base64Bytes } = await import("../../src/visualizeai/web/static/js/lib/float16.js");
  const bytes = base64Bytes("ADwA\nwA==");
  assert.deepEqual(Array.from(bytes), [0x00, 0x3c, 0x00, 0xc0]);
  assert.deepEqual(Array.from(float16ToFloat32(bytes)), [1, -2]);
});
