// ctx.source over attention held in memory (the standalone page): the same interface as lib/source_http.js,
// answered from dense float16 data [included layers, heads, n, n] with the tiles API's bins and pooling
// (lib/tiles.js poolBlock), so the same views draw it.

import { float16ToFloat32 } from "../lib/float16.js";
import { poolBlock } from "../lib/tiles.js";

/**
 * A data source over `halves` (a Uint8Array of little-endian float16, C order [included, heads, n, n]) for
 * the analysis `info` ({n, heads, included_layers, tokens, …}). Layers are model layer numbers; only the
 * included ones can be asked for.
 */
export function createDenseSource(info, halves) {
  const { n, heads } = info;
  const included = info.included_layers;
  const perHead = n * n;
  const decoded = new Map(); // "layer:head" → Float32Array(n·n), decoded on first use

  function slot(layer) {
    const at = included.indexOf(layer);
    if (at < 0) throw new Error(`Layer ${layer} is not in this file (it holds layers ${included.join(", ")}).`);
    return at;
  }

  /** One head (or the mean of a layer's heads, head null; or of every included layer, layer null). */
  function matrix(layer, head) {
    const id = `${layer}:${head}`;
    let values = decoded.get(id);
    if (values) return values;
    if (layer === null || layer === undefined) values = meanOf(included.map((l) => matrix(l, head)));
    else if (head === null || head === undefined) values = meanOf(Array.from({ length: heads }, (_, h) => matrix(layer, h)));
    else {
      const offset = ((slot(layer) * heads + head) * perHead) * 2;
      values = float16ToFloat32(halves.subarray(offset, offset + perHead * 2));
    }
    decoded.set(id, values);
    return values;
  }

  function meanOf(list) {
    const out = new Float32Array(perHead);
    for (const m of list) for (let i = 0; i < perHead; i++) out[i] += m[i];
    for (let i = 0; i < perHead; i++) out[i] /= list.length;
    return out;
  }

  /** Answer like a server: a rejected promise, never a synchronous throw, for a layer not in the file. */
  const answer = (compute) => {
    try {
      return Promise.resolve(compute());
    } catch (err) {
      return Promise.reject(err);
    }
  };

  return {
    info,
    key: info.key,

    tile({ layer = null, head = null, rows = [0, n], cols = [0, n], size = 256, pool = "mean" }) {
      return answer(() => poolBlock(matrix(layer, head), n, rows, cols, size, pool));
    },

    row({ layer = null, head = null, row }) {
      return answer(() => matrix(layer, head).slice(row * n, (row + 1) * n));
    },

    topKeys({ layer = null, head = null, rows, k = 16 }) {
      return answer(() => topKeysOf(matrix(layer, head), rows, k));
    },

    /** One layer's heads pooled to s × s, each scaled to its own maximum and quantised to 0…255. */
    thumbnails({ layer, size = 48, pool = "mean" }) {
      return answer(() => thumbnailsOf(layer, size, pool));
    },

    head(layer, head) {
      return answer(() => matrix(layer, head));
    },
  };

  function topKeysOf(m, rows, k) {
    const [a, b] = rows;
    const mean = new Float64Array(n);
    for (let r = a; r < b; r++) for (let j = 0; j < n; j++) mean[j] += m[r * n + j];
    const keys = Array.from(mean, (sum, index) => ({ index, weight: sum / (b - a) }));
    keys.sort((x, y) => y.weight - x.weight || x.index - y.index);
    return keys.slice(0, k);
  }

  function thumbnailsOf(layer, size, pool) {
    const s = Math.min(size, n);
    const pixels = new Uint8Array(heads * s * s);
    const maxima = new Float32Array(heads); // what 255 stands for in each
    for (let h = 0; h < heads; h++) {
      const { values } = poolBlock(matrix(layer, h), n, [0, n], [0, n], s, pool);
      let max = 0;
      for (const v of values) if (v > max) max = v;
      maxima[h] = max;
      for (let p = 0; p < values.length; p++) pixels[h * s * s + p] = max > 0 ? Math.round((255 * values[p]) / max) : 0;
    }
    return { heads, size: s, pixels, maxima };
  }
}
