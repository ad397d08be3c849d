// The vector views' endpoints (GET /analyses/{key}/qk-map and /neuron, JSON; see web/api_vectors.py) and the
// two data-source methods that read them. Errors arrive as ApiError with the server's `detail` (409: the
// analysis holds weights only; 400/422: out of range or malformed), like every other call of lib/api.js.

import { ApiError } from "./api.js";

const BASE = "/api/v1";

/** The `detail` of an error answer as one readable sentence (FastAPI validation errors joined). */
export function errorDetail(body, fallback) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail
      .map((e) => (e && e.msg ? `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}` : String(e)))
      .join("; ");
  }
  return fallback;
}

async function getJson(path, signal) {
  let response;
  try {
    response = await fetch(BASE + path, { headers: { Accept: "application/json" }, signal });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`Could not reach the server (${err && err.message ? err.message : err}).`, 0);
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // not JSON: the status line says it
    }
    throw new ApiError(errorDetail(body, `${response.status} ${response.statusText}`.trim()), response.status);
  }
  return response.json();
}

const analysis = (key) => `/analyses/${encodeURIComponent(key)}`;

/**
 * A head's queries and keys in one 2-D map: {method, positions, queries: [[x, y]], keys: [[x, y]], explained,
 * translated}. `maxPoints` (optional) samples long texts evenly.
 */
export function fetchQkMap(key, { layer, head, maxPoints }, { signal } = {}) {
  const query = new URLSearchParams({ layer: String(layer), head: String(head) });
  if (maxPoints !== undefined && maxPoints !== null) query.set("max_points", String(maxPoints));
  return getJson(`${analysis(key)}/qk-map?${query}`, signal);
}

/**
 * Why query `query` weighs its keys: {layer, head, query_index, query: [d], scaling, softcap, keys: [{index,
 * vector, products, logit, weight, visible}]}. `keys` (optional): the key positions to explain.
 */
export function fetchNeuron(key, { layer, head, query, keys }, { signal } = {}) {
  const params = new URLSearchParams({ layer: String(layer), head: String(head), query: String(query) });
  if (Array.isArray(keys) && keys.length) params.set("keys", keys.join(","));
  return getJson(`${analysis(key)}/neuron?${params}`, signal);
}

/**
 * Give a data source (lib/source_http.js) the vector views' methods, reading the source's current key:
 *   source.qkMap({layer, head, maxPoints}, signal), source.neuron({layer, head, query, keys}, signal).
 * Returns the same source.
 */
export function withVectors(source) {
  source.qkMap = (params, signal) => fetchQkMap(source.key, params, { signal });
  source.neuron = (params, signal) => fetchNeuron(source.key, params, { signal });
  return source;
}
