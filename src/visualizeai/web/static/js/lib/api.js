// The one module that calls the server (API v1, see docs/wire-format.md): fetch helpers and one function per
// endpoint. Metadata arrives as JSON; attention matrices as raw little-endian float16, thumbnails as uint8.
// Views do not call these directly: they read through ctx.source (source_http.js).

import { base64Bytes, float16ToFloat32 } from "./float16.js";
import { parseTokenGroups } from "./tokens.js";

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
 * @returns {Promise<object>} AnalysisMeta: {key, model, text, n, layers, heads, tokens, truncation, cached, timings};
 * with `brief` the AnalysisBrief instead: {key, model, n, layers, heads, truncation, cached, timings, …} without
 * the token table, for a page that opens the analysis by key and reads its metadata there (fetchAnalysis).
 */
export async function analyze(model, text, { signal, brief = false } = {}) {
  const response = await request(brief ? "/analyze?brief=true" : "/analyze", {
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

/**
 * Thumbnails (GET /thumbnails): {shape: [layers, heads, s, s], data: Uint8Array} (255 = that head's maximum),
 * or one layer's [heads, s, s] when `layer` is given. `pool`: "mean" (default) or "max".
 */
export async function fetchThumbnails(key, size, { signal, layer, pool } = {}) {
  const query = new URLSearchParams({ size: String(size) });
  if (layer !== undefined && layer !== null) query.set("layer", String(layer));
  if (pool) query.set("pool", pool);
  return binary(`/analyses/${encodeURIComponent(key)}/thumbnails?${query}`, "uint8", signal);
}

/** "a:b" for a range [a, b]. */
const range = ([a, b]) => `${a}:${b}`;

/**
 * A block of one head (GET /tile): `params` {layer, head (null: averaged), rows: [a, b], cols: [c, d], size,
 * pool}. Resolves to {rows, cols, shape: [h, w], exact, pool, values: Float32Array (h·w, row-major)}.
 */
export async function fetchTile(key, params, { signal } = {}) {
  const query = new URLSearchParams();
  if (params.layer !== undefined && params.layer !== null) query.set("layer", String(params.layer));
  if (params.head !== undefined && params.head !== null) query.set("head", String(params.head));
  if (params.rows) query.set("rows", range(params.rows));
  if (params.cols) query.set("cols", range(params.cols));
  if (params.size) query.set("size", String(params.size));
  if (params.pool) query.set("pool", params.pool);
  const result = await binary(`/analyses/${encodeURIComponent(key)}/tile?${query}`, "float16", signal);
  const parseRange = (header, fallback) => {
    const m = /^(\d+):(\d+)$/.exec(header || "");
    return m ? [Number(m[1]), Number(m[2])] : fallback;
  };
  return {
    rows: parseRange(result.headers.get("X-Rows"), params.rows),
    cols: parseRange(result.headers.get("X-Cols"), params.cols),
    shape: result.shape,
    exact: result.headers.get("X-Exact") === "true",
    pool: result.headers.get("X-Pool") || params.pool || "mean",
    values: result.data,
  };
}

/** One exact query row (GET /row): Float32Array(n) of `row`'s weights over every key. */
export async function fetchRow(key, { layer, head, row }, { signal } = {}) {
  const query = new URLSearchParams({ row: String(row) });
  if (layer !== undefined && layer !== null) query.set("layer", String(layer));
  if (head !== undefined && head !== null) query.set("head", String(head));
  return (await binary(`/analyses/${encodeURIComponent(key)}/row?${query}`, "float16", signal)).data;
}

/** The strongest keys of the mean over query rows a..b−1 (GET /top-keys): [{index, weight}], strongest first. */
export async function fetchTopKeys(key, { layer, head, rows, k }, { signal } = {}) {
  const query = new URLSearchParams({ rows: range(rows) });
  if (layer !== undefined && layer !== null) query.set("layer", String(layer));
  if (head !== undefined && head !== null) query.set("head", String(head));
  if (k) query.set("k", String(k));
  const response = await request(`/analyses/${encodeURIComponent(key)}/top-keys?${query}`, {
    headers: { Accept: "application/json" },
    signal,
  });
  return (await response.json()).keys;
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
  // A plain GET, as the analysis page's <link rel="preload" as="fetch"> asks for it, so that it is reused.
  const response = await request(`/analyses/${encodeURIComponent(key)}`, { signal });
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

/**
 * Read a corpus summary (the summary.parquet of `visualizeai corpus`, a File or Blob) on the server: POST
 * /corpus/summary with the file as the raw body; nothing is stored. Resolves to {model, revision, texts, skipped,
 * truncated_texts, layers, heads, statistics, descriptions, mean, std, count}, where mean/std/count map each
 * statistic to a [layers][heads] array (null where there is no value).
 */
export function readCorpusSummary(file, { signal } = {}) {
  return postFile("/corpus/summary", file, signal);
}

/**
 * Read the extremes.parquet of a corpus run: POST /corpus/extremes with the file as the raw body; nothing is
 * stored. Resolves to {model, revision, layers, heads, k, texts, entries}, each entry {statistic, layer, head,
 * side ("high" | "low"), rank, value, text_index, window, char_start, n_tokens, text (an index into texts),
 * text_cut}.
 */
export function readCorpusExtremes(file, { signal } = {}) {
  return postFile("/corpus/extremes", file, signal);
}

/**
 * Read the qk_map.parquet of a corpus run: POST /corpus/qk-map with the file as the raw body; nothing is
 * stored. Resolves to {model, revision, layers, heads, tokens: {text_index, window, position, piece, before,
 * after, special} (one entry per sampled token), heads_info[layer][head] {explained, translated},
 * queries[layer][head] and keys[layer][head] ([x, y] per token)}.
 */
export function readCorpusQKMap(file, { signal } = {}) {
  return postFile("/corpus/qk-map", file, signal);
}

/**
 * A head's queries and keys in one 2-D map (GET /qk-map): {method, positions, queries: [[x, y]], keys: [[x, y]],
 * explained, translated}. `maxPoints` (optional) samples long texts evenly. 409: the analysis holds weights only.
 */
export async function fetchQkMap(key, { layer, head, maxPoints }, { signal } = {}) {
  const query = new URLSearchParams({ layer: String(layer), head: String(head) });
  if (maxPoints !== undefined && maxPoints !== null) query.set("max_points", String(maxPoints));
  const response = await request(`/analyses/${encodeURIComponent(key)}/qk-map?${query}`, {
    headers: { Accept: "application/json" },
    signal,
  });
  return response.json();
}

/**
 * Why query `query` weighs its keys (GET /neuron): {layer, head, query_index, query: [d], scaling, softcap,
 * keys: [{index, vector, products, logit, weight, visible}]}. `keys` (optional): the key positions to explain.
 */
export async function fetchNeuron(key, { layer, head, query, keys }, { signal } = {}) {
  const params = new URLSearchParams({ layer: String(layer), head: String(head), query: String(query) });
  if (Array.isArray(keys) && keys.length) params.set("keys", keys.join(","));
  const response = await request(`/analyses/${encodeURIComponent(key)}/neuron?${params}`, {
    headers: { Accept: "application/json" },
    signal,
  });
  return response.json();
}

/** POST a file of a corpus run as the raw body to `path`; resolves to the server's JSON answer. */
async function postFile(path, file, signal) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", Accept: "application/json" },
    body: file,
    signal,
  });
  return response.json();
}

/** The address of the analysis page of `key`, with the view state `query` (a URLSearchParams or string). */
export function analysisPath(key, query = "") {
  const q = String(query);
  return `/analysis/${encodeURIComponent(key)}${q ? `?${q.replace(/^\?/, "")}` : ""}`;
}
