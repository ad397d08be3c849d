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

/**
 * Attention as a view displays it (GET /attention with view options; see docs/wire-format.md).
 * `params`: {layer, head, agg: "none"|"mean_heads"|"mean_layers"|"mean_all", hideSpecial, mergeWords}; leave
 * layer/head undefined to keep that axis (or when it is averaged). Resolves to {shape, data: Float32Array,
 * groups, renormalized}: `groups[i]` lists the token positions that displayed row/column i stands for.
 */
export async function fetchAttention(key, params, { signal } = {}) {
  const query = new URLSearchParams();
  if (params.layer !== undefined && params.layer !== null) query.set("layer", String(params.layer));
  if (params.head !== undefined && params.head !== null) query.set("head", String(params.head));
  if (params.agg && params.agg !== "none") query.set("agg", params.agg);
  if (params.hideSpecial) query.set("hide_special", "true");
  if (params.mergeWords) query.set("merge_words", "true");
  const result = await binary(`/analyses/${encodeURIComponent(key)}/attention?${query}`, "float16", signal);
  const groups = parseTokenGroups(result.headers.get("X-Tokens"));
  const m = result.shape[result.shape.length - 1];
  if (groups.length !== m) throw new ApiError(`Server named ${groups.length} token groups for ${m} rows.`, 200);
  return {
    shape: result.shape,
    data: result.data,
    groups,
    renormalized: result.headers.get("X-Renormalized") === "true",
  };
}

/** Parse an X-Tokens header ("0,1-3,5+7") into arrays of token positions ([[0], [1, 2, 3], [5, 7]]). */
export function parseTokenGroups(header) {
  if (!header) return [];
  return header.split(",").map((entry) => {
    const positions = [];
    for (const run of entry.split("+")) {
      const [a, b = a] = run.split("-").map((s) => Number.parseInt(s, 10));
      if (!Number.isInteger(a) || !Number.isInteger(b) || b < a) throw new ApiError(`Bad X-Tokens entry "${entry}".`, 0);
      for (let i = a; i <= b; i++) positions.push(i);
    }
    return positions;
  });
}

/** Thumbnails of every head: {shape: [layers, heads, s, s], data: Uint8Array} (255 = that head's maximum). */
export async function fetchThumbnails(key, size, { signal } = {}) {
  const path = `/analyses/${encodeURIComponent(key)}/thumbnails?size=${size}`;
  return binary(path, "uint8", signal);
}

/**
 * Attention rollout (GET /rollout): {shape: [n, n], data: Float32Array} for `layer`, or [layers, n, n] for
 * every layer when `layer` is null.
 */
export async function fetchRollout(key, layer, { signal } = {}) {
  const query = layer === null || layer === undefined ? "" : `?layer=${layer}`;
  return binary(`/analyses/${encodeURIComponent(key)}/rollout${query}`, "float16", signal);
}

/**
 * Attention flow at `layer` (GET /flow): {shape: [n, n], data: Float32Array}. Rejects at once with an ApiError
 * (status 400) whose message gives the bound and why when the input is too long for flow.
 */
export async function fetchFlow(key, layer, { signal } = {}) {
  return binary(`/analyses/${encodeURIComponent(key)}/flow?layer=${layer}`, "float16", signal);
}

/**
 * Where attention flow is allowed (GET /flow-limits): {max_tokens, reference_layers, layers: [{layer, allowed,
 * reason}]}; `reason` says, for people, why flow at that layer would be refused (the bound and why).
 */
export async function fetchFlowLimits(key, { signal } = {}) {
  const response = await request(`/analyses/${encodeURIComponent(key)}/flow-limits`, {
    headers: { Accept: "application/json" },
    signal,
  });
  return response.json();
}

/** Per-head statistics (GET /head-stats): {layers, heads, names, descriptions, values: {name: [[…]]}}. */
export async function fetchHeadStats(key, { signal } = {}) {
  const response = await request(`/analyses/${encodeURIComponent(key)}/head-stats`, {
    headers: { Accept: "application/json" },
    signal,
  });
  return response.json();
}

/**
 * Two analyses side by side (GET /compare; see docs/wire-format.md). `params`: {mode: "sentences"|"models",
 * keyA, keyB, layer, head (null = mean of the layer's heads), layerB?, headB?}. Resolves to the CompareResponse
 * with each `matrix` (a.matrix, b.matrix, difference) decoded to {shape, data: Float32Array}.
 */
export async function fetchComparison(params, { signal } = {}) {
  const query = new URLSearchParams({ mode: params.mode, key_a: params.keyA, key_b: params.keyB });
  query.set("layer", String(params.layer));
  if (params.head !== null && params.head !== undefined) query.set("head", String(params.head));
  if (params.layerB !== null && params.layerB !== undefined) query.set("layer_b", String(params.layerB));
  if (params.headB !== null && params.headB !== undefined) query.set("head_b", String(params.headB));
  const response = await request(`/compare?${query}`, { headers: { Accept: "application/json" }, signal });
  const body = await response.json();
  const decode = (encoded) => {
    if (encoded.dtype !== "float16") throw new ApiError(`Expected float16 data, got ${encoded.dtype}.`, 200);
    const data = float16ToFloat32(base64Bytes(encoded.data));
    if (data.length !== encoded.shape.reduce((a, b) => a * b, 1)) {
      throw new ApiError(`Server sent ${data.length} values for shape [${encoded.shape.join(", ")}].`, 200);
    }
    return { shape: encoded.shape, data };
  };
  body.a.matrix = decode(body.a.matrix);
  body.b.matrix = decode(body.b.matrix);
  body.difference = decode(body.difference);
  return body;
}

/** AnalysisMeta of an analysis the server holds, by key (an opened saved analysis, a ?key= permalink). */
export async function fetchAnalysis(key, { signal } = {}) {
  const response = await request(`/analyses/${encodeURIComponent(key)}`, {
    headers: { Accept: "application/json" },
    signal,
  });
  return response.json();
}

/** Open a saved analysis (a .npz File): uploads it (multipart, field "file") and resolves to its AnalysisMeta. */
export async function openSaved(file, { signal } = {}) {
  const body = new FormData();
  body.append("file", file, file.name || "analysis.npz");
  const response = await request("/analyses", {
    method: "POST",
    headers: { Accept: "application/json" },
    body,
    signal,
  });
  return response.json();
}

/**
 * The URL that downloads analysis `key` as `format` (npz, json, html, png, svg); `params` as in GET
 * /analyses/{key}/export (layer, head, layers, scale). For links: the browser fetches it, not this module.
 */
export function exportUrl(key, format, params = {}) {
  const query = new URLSearchParams({ format });
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  return `${BASE}/analyses/${encodeURIComponent(key)}/export?${query}`;
}

/**
 * Generate text from `text` with a causal LM and stream it (POST /generate, text/event-stream; see
 * docs/wire-format.md). `params`: {model, text, max_new_tokens, mode: "greedy"|"sample", seed}.
 * `onEvent(name, data)` is called for "start", each "token" and "done" as they arrive; a token's
 * `attention` becomes {shape: [layers, heads, t], bytes: Uint8Array} (little-endian float16: decode the part
 * you need with float16ToFloat32). Resolves after "done"; rejects with ApiError for a 4xx before the stream,
 * an "error" event, or a stream that ends early (AbortError when `signal` aborts).
 */
export async function generate(params, { signal, onEvent } = {}) {
  const response = await request("/generate", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ ...params, model: params.model ? params.model : null }),
    signal,
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let finished = false;
  const handle = (block) => {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (name === "error") throw new ApiError(payload.detail || "Generation failed.", response.status);
    if (name === "token" && payload.attention) {
      const { shape, dtype, data: encoded } = payload.attention;
      if (dtype !== "float16") throw new ApiError(`Expected float16 attention, got ${dtype}.`, response.status);
      payload.attention = { shape, bytes: base64Bytes(encoded) };
    }
    if (name === "done") finished = true;
    if (onEvent) onEvent(name, payload);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let at = buffer.indexOf("\n\n");
    while (at >= 0) {
      handle(buffer.slice(0, at));
      buffer = buffer.slice(at + 2);
      at = buffer.indexOf("\n\n");
    }
  }
  if (buffer.trim()) handle(buffer);
  if (!finished) throw new ApiError("The generation stream ended before it was done.", response.status);
}

function base64Bytes(text) {
  const binaryString = atob(text);
  const bytes = new Uint8Array(binaryString.length);
  for (let i = 0; i < binaryString.length; i++) bytes[i] = binaryString.charCodeAt(i);
  return bytes;
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
  return { shape: shape || [data.length], data, headers: response.headers };
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

/**
 * Read a corpus summary (the summary.parquet of `visualizeai corpus`, a File or Blob) on the server: POST
 * /corpus/summary with the file as the raw body; nothing is stored. Resolves to {model, revision, texts, skipped,
 * truncated_texts, layers, heads, statistics, descriptions, mean, std, count}, where mean/std/count map each
 * statistic to a [layers][heads] array (null where there is no value).
 */
export async function readCorpusSummary(file, { signal } = {}) {
  const response = await request("/corpus/summary", {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", Accept: "application/json" },
    body: file,
    signal,
  });
  return response.json();
}
