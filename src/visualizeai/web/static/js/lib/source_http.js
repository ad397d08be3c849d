// ctx.source over the HTTP API: the data source every view reads through (see the front-end contract in
// pages/analysis.js). The same interface is implemented in memory for the standalone page
// (standalone/source_dense.js) and over the notebook's messages for the widget.
//
//   source.info                          the AnalysisMeta (tokens, n, layers, heads, model, …)
//   source.tile({layer, head, rows, cols, size, pool}, signal) → {rows, cols, shape, pooled, pool, values}
//   source.row({layer, head, row}, signal) → Float32Array(n)
//   source.topKeys({layer, head, rows, k}, signal) → [{index, weight}]
//   source.thumbnails({layer, size, pool}, signal) → {heads, size, pixels: Uint8Array (heads·size·size),
//                                        maxima: Float32Array (heads) what 255 stands for, or null}
// plus the endpoints of the other views: head, attention, rollout, flow, flowLimits, headStats, qkMap, neuron,
// exportUrl, generate. Every method takes an AbortSignal last (optional).

import {
  ApiError,
  exportUrl,
  fetchAttention,
  fetchFlow,
  fetchFlowLimits,
  fetchHead,
  fetchHeadStats,
  fetchNeuron,
  fetchQkMap,
  fetchRollout,
  fetchRow,
  fetchThumbnails,
  fetchTile,
  fetchTopKeys,
  generate,
} from "./api.js";
import { cachedLoad } from "./lru.js";

const HEAD_CACHE_BYTES = 64 * 2 ** 20; // dense heads kept for quick switching
const THUMB_CACHE = 256; // layers of thumbnails kept (at most 128² bytes per head)

/**
 * A data source for analysis `meta` (its key addresses every request). `rerun()` (optional) runs the same
 * input again and resolves to fresh metadata: it is called once, shared, when the server has dropped the
 * cached result (404), and the request is repeated with the new key.
 */
export function createHttpSource(meta, { rerun = null } = {}) {
  let key = meta.key;
  let rerunning = null;
  const heads = new Map(); // "layer:head" → Promise<Float32Array>, oldest first
  const thumbs = new Map(); // "layer|size|pool" → Promise of one layer's thumbnails
  const headLimit = Math.max(4, Math.floor(HEAD_CACHE_BYTES / (4 * meta.n * meta.n)));

  /** Call fetcher(key); on a 404 re-run the input once (shared) and call it again with the new key. */
  async function withKey(fetcher) {
    const used = key;
    try {
      return await fetcher(used);
    } catch (err) {
      if (!rerun || !(err instanceof ApiError) || err.status !== 404) throw err;
      if (key === used) {
        rerunning ??= rerun().then(
          (fresh) => {
            key = fresh.key;
            rerunning = null;
          },
          (failure) => {
            rerunning = null;
            throw failure;
          },
        );
        await rerunning;
      }
      return fetcher(key);
    }
  }

  const source = {
    info: meta,
    get key() {
      return key;
    },

    async tile({ layer = null, head = null, rows, cols, size = 256, pool = "mean" }, signal) {
      const tile = await withKey((k) => fetchTile(k, { layer, head, rows, cols, size, pool }, { signal }));
      return { ...tile, pooled: !tile.exact };
    },

    row({ layer = null, head = null, row }, signal) {
      return withKey((k) => fetchRow(k, { layer, head, row }, { signal }));
    },

    topKeys({ layer = null, head = null, rows, k = 16 }, signal) {
      return withKey((key_) => fetchTopKeys(key_, { layer, head, rows, k }, { signal }));
    },

    /** One layer's thumbnails; a server without the layer parameter sends every layer: the layer is cut out. */
    thumbnails({ layer, size = 48, pool = "mean" }, signal) {
      return cachedLoad(thumbs, THUMB_CACHE, `${layer}|${size}|${pool}`, async () => {
        const got = await withKey((k) => fetchThumbnails(k, size, { layer, pool, signal }));
        const s = got.shape[got.shape.length - 1];
        const perLayer = meta.heads * s * s;
        const pixels = got.shape.length === 4 ? got.data.slice(layer * perLayer, (layer + 1) * perLayer) : got.data;
        const all = parseMaxima(got.headers && got.headers.get("X-Maxima"));
        const maxima = all && got.shape.length === 4 ? all.slice(layer * meta.heads, (layer + 1) * meta.heads) : all;
        return { heads: meta.heads, size: s, pixels, maxima: maxima && maxima.length === meta.heads ? maxima : null };
      });
    },

    /** One head as a dense n × n Float32Array (short inputs only; cached). */
    head(layer, head, signal) {
      return cachedLoad(heads, headLimit, `${layer}:${head}`, async () =>
        (await withKey((k) => fetchHead(k, layer, head, { signal }))).data,
      );
    },

    /** Attention as a view displays it: see api.js fetchAttention. */
    attention(params, signal) {
      return withKey((k) => fetchAttention(k, params, { signal }));
    },

    rollout(layer, signal) {
      return withKey((k) => fetchRollout(k, layer, { signal }));
    },

    flow(layer, signal) {
      return withKey((k) => fetchFlow(k, layer, { signal }));
    },

    flowLimits(signal) {
      return withKey((k) => fetchFlowLimits(k, { signal }));
    },

    headStats(signal) {
      return withKey((k) => fetchHeadStats(k, { signal }));
    },

    /** The query–key map of a head (api.js fetchQkMap). */
    qkMap(params, signal) {
      return withKey((k) => fetchQkMap(k, params, { signal }));
    },

    /** The neuron view of a query (api.js fetchNeuron). */
    neuron(params, signal) {
      return withKey((k) => fetchNeuron(k, params, { signal }));
    },

    /** The URL that downloads this analysis as `format` (a link, fetched by the browser). */
    exportUrl(format, params = {}) {
      return exportUrl(key, format, params);
    },

    /** Stream a generation from `params` (see api.js generate); not tied to this analysis' key. */
    generate(params, options) {
      return generate(params, options);
    },
  };
  return source;
}

/** The X-Maxima header ("0.5,0.25,…") as a Float32Array, or null when missing or malformed. */
export function parseMaxima(header) {
  if (!header) return null;
  const values = header.split(",").map(Number);
  return values.every((v) => Number.isFinite(v) && v >= 0) ? Float32Array.from(values) : null;
}
