// The one module that talks to the server (API v1, see docs/wire-format.md).
// Metadata arrives as JSON; attention matrices as raw little-endian float16, thumbnails as uint8.

const BASE = "/api/v1";

/** An error from the API, carrying the server's `detail` text and the HTTP status (0: no response). */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function request(path, init = {}) {
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`Could not reach the server (${err && err.message ? err.message : err}).`, 0);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

async function errorFrom(response) {
  let detail = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (typeof body.detail === "string") {
      detail = body.detail;
    } else if (Array.isArray(body.detail)) {
      // FastAPI request-validation errors: [{loc, msg, type}, …]
      detail = body.detail
        .map((e) => (e && e.msg ? `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}` : String(e)))
        .join("; ");
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(detail, response.status);
}

/**
 * Run `text` through `model` (null or "" = the server's default model).
 * @returns {Promise<object>} AnalysisMeta: {key, model, text, n, layers, heads, tokens, truncation, cached, timings}
 */
export async function analyze(model, text, { signal } = {}) {
  const response = await request("/analyze", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ model: model ? model : null, text }),
    signal,
  });
  return response.json();
}

/** One head's attention: {shape: [n, n], data: Float32Array} (row = query, column = key). */
export async function fetchHead(key, layer, head, { signal } = {}) {
  const path = `/analyses/${encodeURIComponent(key)}/attention?layer=${layer}&head=${head}`;
  return binary(path, "float16", signal);
}

/** All heads of one layer: {shape: [heads, n, n], data: Float32Array}. */
export async function fetchLayer(key, layer, { signal } = {}) {
  const path = `/analyses/${encodeURIComponent(key)}/attention?layer=${layer}`;
  return binary(path, "float16", signal);
}

/** Thumbnails of every head: {shape: [layers, heads, s, s], data: Uint8Array} (255 = that head's maximum). */
export async function fetchThumbnails(key, size, { signal } = {}) {
  const path = `/analyses/${encodeURIComponent(key)}/thumbnails?size=${size}`;
  return binary(path, "uint8", signal);
}

async function binary(path, dtype, signal) {
  const response = await request(path, { headers: { Accept: "application/octet-stream" }, signal });
  const buffer = await response.arrayBuffer();
  const shape = parseShape(response.headers.get("X-Shape"));
  const sentType = response.headers.get("X-Dtype");
  if (sentType && sentType !== dtype) {
    throw new ApiError(`Expected ${dtype} data from the server, got ${sentType}.`, response.status);
  }
  const data = dtype === "float16" ? float16ToFloat32(buffer) : new Uint8Array(buffer);
  if (shape) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new ApiError(`Server sent ${data.length} values for shape [${shape.join(", ")}].`, response.status);
    }
  }
  return { shape: shape || [data.length], data };
}

function parseShape(header) {
  if (!header) return null;
  const dims = header.split(",").map((s) => Number.parseInt(s.trim(), 10));
  return dims.every((d) => Number.isInteger(d) && d >= 0) ? dims : null;
}

// ---- float16 decoding ---------------------------------------------------------------------------------

let HALF_TABLE = null; // Float32Array(65536): every float16 bit pattern → its float32 value

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x03ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function halfTable() {
  if (HALF_TABLE === null) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = halfToFloat(h);
  }
  return HALF_TABLE;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decode little-endian IEEE float16 values (an ArrayBuffer or a view of one) into a Float32Array.
 * Exact: every float16 value is representable as a float32.
 */
export function float16ToFloat32(bufferOrView) {
  const bytes =
    bufferOrView instanceof ArrayBuffer
      ? new Uint8Array(bufferOrView)
      : new Uint8Array(bufferOrView.buffer, bufferOrView.byteOffset, bufferOrView.byteLength);
  if (bytes.byteLength % 2 !== 0) throw new ApiError("float16 data has an odd number of bytes.", 0);
  const count = bytes.byteLength / 2;
  const table = halfTable();
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 2 === 0) {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = table[halves[i]];
  } else {
    for (let i = 0; i < count; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  }
  return out;
}
