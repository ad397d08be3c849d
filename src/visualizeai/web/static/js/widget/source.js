// The widget's data source (`ctx.source` of the views): the same methods as the web page's HTTP source, carried
// by the anywidget model's custom messages to the Python kernel, which answers each request with binary buffers
// (float16 tiles, uint8 thumbnails, float32 rows; see visualizeai/notebook.py).

import { float16ToFloat32 } from "../lib/float16.js";

/** A widget request the kernel refused (bad range, over the work budget, …): `message` says why. */
export class SourceError extends Error {
  constructor(message) {
    super(message);
    this.name = "SourceError";
  }
}

function abortError() {
  return new DOMException("The request was aborted.", "AbortError");
}

/** The bytes of a message buffer (ipywidgets hands out DataViews; tests may pass ArrayBuffers or typed arrays). */
export function bufferBytes(buffer) {
  if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Float32 values of a little-endian float32 buffer, copied so they are aligned. */
function float32Of(buffer) {
  const bytes = bufferBytes(buffer);
  const out = new Float32Array(bytes.byteLength / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/**
 * A source over `model` (anywidget's model: get/on/off/send). `info` is the analysis meta the kernel put in
 * the `info` traitlet. Every method returns a Promise and takes an AbortSignal; an aborted request rejects with
 * an AbortError and its late reply is dropped. `close()` rejects what is pending and stops listening.
 */
export function createModelSource(model) {
  const pending = new Map(); // request id -> {resolve, reject, decode}
  // every view of the widget hears every reply: ids carry this source's own prefix
  const prefix = Math.random().toString(36).slice(2, 10);
  let count = 0;

  function onMessage(content, buffers) {
    if (!content || typeof content !== "object" || !pending.has(content.id)) return;
    const { resolve, reject, decode } = pending.get(content.id);
    pending.delete(content.id);
    if (content.type === "error") reject(new SourceError(content.message));
    else {
      try {
        resolve(decode(content, buffers || []));
      } catch (err) {
        reject(err);
      }
    }
  }
  model.on("msg:custom", onMessage);

  function request(content, decode, signal) {
    if (signal && signal.aborted) return Promise.reject(abortError());
    const id = `${prefix}-${++count}`;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, decode });
      if (signal) {
        signal.addEventListener(
          "abort",
          () => {
            if (pending.delete(id)) reject(abortError());
          },
          { once: true },
        );
      }
      model.send({ ...content, id });
    });
  }

  const span = (range) => (range ? [range[0], range[1]] : null);

  return {
    get info() {
      return model.get("info");
    },

    /** {rows, cols, shape, pooled, pool, values: Float32Array} of a block, exact or pooled to `size`. */
    tile({ layer, head, rows, cols, size, pool = "mean" }, signal) {
      const req = { type: "tile", layer, head, rows: span(rows), cols: span(cols), size, pool };
      return request(
        req,
        (reply, buffers) => ({
          rows: reply.rows,
          cols: reply.cols,
          shape: reply.shape,
          pooled: reply.pooled,
          pool: reply.pool,
          values: float16ToFloat32(bufferBytes(buffers[0])),
        }),
        signal,
      );
    },

    /** Float32Array(n): one exact query row. */
    row({ layer, head, row }, signal) {
      return request({ type: "row", layer, head, row }, (reply, buffers) => float32Of(buffers[0]), signal);
    },

    /** {heads, size, pixels: Uint8Array, maxima} of one layer's head thumbnails (each scaled to its own
     * maximum, which `maxima` gives per head). */
    thumbnails({ layer, size = 48, pool = "mean" }, signal) {
      return request(
        { type: "thumbnails", layer, size, pool },
        (reply, buffers) => ({
          heads: reply.heads,
          size: reply.size,
          pixels: bufferBytes(buffers[0]).slice(),
          maxima: Array.isArray(reply.maxima) ? Float32Array.from(reply.maxima) : null,
        }),
        signal,
      );
    },

    /** [{index, weight}]: the `k` keys query rows a..b attend to most, on average (exact weights). */
    topKeys({ layer, head, rows, k = 16 }, signal) {
      return request({ type: "topKeys", layer, head, rows: span(rows), k }, (reply) => reply.keys, signal);
    },

    /** A whole matrix as displayed ({layer, head, agg, hideSpecial, mergeWords}): {shape, data, groups,
     * renormalized}; the kernel refuses it above the size limit of the /attention endpoint. */
    attention({ layer = null, head = null, agg = "none", hideSpecial = false, mergeWords = false }, signal) {
      return request(
        { type: "attention", layer, head, agg, hideSpecial, mergeWords },
        (reply, buffers) => ({
          shape: reply.shape,
          data: float16ToFloat32(bufferBytes(buffers[0])),
          groups: reply.groups,
          renormalized: reply.renormalized,
        }),
        signal,
      );
    },

    close() {
      model.off("msg:custom", onMessage);
      for (const { reject } of pending.values()) reject(abortError());
      pending.clear();
    },
  };
}
