"""A head's query and key vectors, read from the captured store: the query–key map and the neuron view.

Attention is ``softmax(q·k·scale)`` over the keys a row may see. Two changes of the vectors leave every
weight unchanged, and the query–key map uses both (as AttentionViz does) so that queries and keys share one
picture: moving every key by the same vector ``c`` adds ``q·c`` to a whole row of logits, and scaling the
queries by ``s`` and the keys by ``1/s`` keeps each product. Soft-capped logits (Gemma 2) and sink logits do
not commute with the translation, so there the keys are only scaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visualizeai.attention.store import AttentionStore
from visualizeai.errors import InputError, TaskUnsupported

MAX_POINTS = 4096  # queries (and as many keys) drawn at most; longer texts are sampled evenly
NEURON_KEYS = 64  # most keys explained at once in the neuron view


@dataclass
class HeadVectors:
    """One head's queries and the keys it reads (its key/value head's), float32 ``[n, dim]`` each."""

    queries: np.ndarray
    keys: np.ndarray
    scaling: float
    lo: np.ndarray  # row i sees keys lo[i] <= j < hi[i]
    hi: np.ndarray
    softcap: float | None
    sink: float | None

    def logits(self, row: int, keys: np.ndarray) -> np.ndarray:
        """Float32 logits of query ``row`` against ``keys`` (positions), as the softmax sees them."""
        s = (self.keys[keys] @ self.queries[row]) * np.float32(self.scaling)
        if self.softcap is not None:
            s = np.tanh(s / np.float32(self.softcap)) * np.float32(self.softcap)
        return s.astype(np.float32)


def head_vectors(store: AttentionStore, layer: int, head: int) -> HeadVectors:
    """The recorded vectors of ``(layer, head)``; a TaskUnsupported when the store holds weights only."""
    store.check_layer(layer)
    store.check_head(head)
    if store.captured is None:
        raise TaskUnsupported(
            "This analysis holds attention weights only (a saved file, or a model whose attention is not "
            "recorded as queries and keys), so its query and key vectors cannot be shown."
        )
    qk = store.captured[layer]
    q = qk.query[0, head].float().cpu().numpy()
    k = qk.key[0, head // qk.group].float().cpu().numpy()
    sink = None if qk.sinks is None else float(qk.sinks[head])
    return HeadVectors(
        q, k, float(qk.scaling), qk.lo[0].cpu().numpy(), qk.hi[0].cpu().numpy(), qk.softcap, sink
    )


def sample_positions(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Every position, or ``max_points`` evenly spaced ones (first and last included)."""
    if max_points < 2:
        raise InputError("max_points must be at least 2")
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def shared_space(v: HeadVectors) -> tuple[np.ndarray, np.ndarray, bool]:
    """Queries and keys moved into one space without changing any weight (see the module docstring).
    Returns ``(queries, keys, translated)``."""
    q, k = v.queries.astype(np.float64), v.keys.astype(np.float64)
    translated = v.softcap is None and v.sink is None
    if translated:
        k = k - k.mean(axis=0) + q.mean(axis=0)
    qn, kn = np.linalg.norm(q, axis=1).mean(), np.linalg.norm(k, axis=1).mean()
    if qn > 0 and kn > 0:
        s = np.sqrt(kn / qn)
        q, k = q * s, k / s
    return q, k, translated


def qk_map(v: HeadVectors, max_points: int = MAX_POINTS) -> dict:
    """A 2-D principal-component map of a head's queries and keys together.

    Returns positions (sampled), ``queries``/``keys`` as ``[len(positions), 2]`` float32, the share of the
    variance each axis explains, and whether keys were translated."""
    n = len(v.queries)
    positions = sample_positions(n, max_points)
    q, k, translated = shared_space(v)
    points = np.concatenate([q[positions], k[positions]])
    centred = points - points.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    if axes.shape[0] < 2:  # one-dimensional heads: a flat second axis
        axes = np.vstack([axes, np.zeros_like(axes)])
    for i in range(2):  # a deterministic sign: the largest loading positive
        if axes[i, np.argmax(np.abs(axes[i]))] < 0:
            axes[i] = -axes[i]
    coords = (centred @ axes.T).astype(np.float32)
    total = float((sv**2).sum())
    explained = [float(sv[i] ** 2 / total) if total > 0 and i < len(sv) else 0.0 for i in range(2)]
    m = len(positions)
    return {
        "method": "pca",
        "positions": positions,
        "queries": coords[:m],
        "keys": coords[m:],
        "explained": explained,
        "translated": translated,
    }


def neuron(v: HeadVectors, row: int, weights: np.ndarray, keys: np.ndarray) -> dict:
    """How query ``row`` weighs ``keys``: the query vector, each key vector, their elementwise products,
    each product's sum times the scale (the logit) and the weight, from ``weights`` (the row's attention,
    as the store computes it). The logits' softmax over the keys the row sees gives back ``weights``."""
    n = len(v.queries)
    if not 0 <= row < n:
        raise InputError(f"query position {row} is outside 0..{n - 1}")
    keys = np.asarray(keys, dtype=np.int64)
    if keys.size == 0 or keys.size > NEURON_KEYS:
        raise InputError(f"choose between 1 and {NEURON_KEYS} keys")
    if keys.min() < 0 or keys.max() >= n:
        raise InputError(f"key positions must lie in 0..{n - 1}")
    q = v.queries[row]
    products = v.keys[keys] * q[None, :]
    visible = (keys >= v.lo[row]) & (keys < v.hi[row])
    return {
        "query": q,
        "keys": v.keys[keys],
        "products": products.astype(np.float32),
        "logits": np.where(visible, v.logits(row, keys), -np.inf).astype(np.float32),
        "weights": weights[keys].astype(np.float32),
        "visible": visible,
        "scaling": v.scaling,
        "softcap": v.softcap,
    }
