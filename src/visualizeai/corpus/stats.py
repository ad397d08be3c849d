"""Head statistics of a whole padded batch straight from its captured queries and keys, on the model's device.

The batch form of ``analysis.head_stats.head_statistics_from_store`` (same definitions, equal results within
float32 rounding, tested against it): for each layer, the weights of every text and head are recomputed a
bounded chunk of query rows at a time (``softmax(q·kᵀ·scale)`` over each row's allowed keys, as
``attention.captured.weights`` does), and every statistic is reduced on the device in the same pass, so
nothing n×n outlives a chunk, nothing is copied to the host but the ``[texts, statistics, layers, heads]``
sums, and one matrix product serves all texts of the batch instead of one per text.

``BatchStatistics.layer`` can also serve as the consumer of a ``capture.recording``: it then reduces each
layer while the forward pass runs and returns the layer's output from the same weights (``weights @ value``,
eager attention's arithmetic), so the pass does not compute the weights a second time through SDPA.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.attention.captured import LayerQK
from visualizeai.attention.store import CHUNK_ELEMENTS

# Elements of one chunk of weights [texts, heads, rows, keys]: small enough that the passes over a chunk
# (exponentials, products, sums) find it in the CPU's cache (4 MB; on MiniLM batches 1M elements took 20%
# less time than 4M), and far below the store's own CHUNK_ELEMENTS bound with several chunks alive at once.
STAT_CHUNK_ELEMENTS = min(CHUNK_ELEMENTS // 4, 2**20)
_HIDDEN = -1e30  # added to the score of a key a row may not see: exp underflows to exactly 0
_S = {name: index for index, name in enumerate(STAT_NAMES)}
# Key features summed with one matrix product per chunk: special keys, punctuation keys, and ones (z).
_SPECIAL, _PUNCTUATION, _ONES = range(3)


class BatchStatistics:
    """Every statistic of every head for each text of one right-padded batch, reduced layer by layer.

    Args:
        lengths: tokens of each text (its first ``lengths[b]`` positions; the rest is padding).
        special, punctuation: bool ``[lengths[b]]`` per text.
        n: the batch's padded length.
        device: the model's device.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        special: Sequence[np.ndarray],
        punctuation: Sequence[np.ndarray],
        n: int,
        device: torch.device | str = "cpu",
    ):
        self.batch, self.n, self.device = len(lengths), n, torch.device(device)
        self.m = torch.as_tensor(list(lengths), dtype=torch.int64, device=self.device)  # [B]
        features = np.zeros((self.batch, 3, n), dtype=np.float32)
        for b, (s, p) in enumerate(zip(special, punctuation, strict=True)):
            features[b, _SPECIAL, : len(s)] = s
            features[b, _PUNCTUATION, : len(p)] = p
        features[:, _ONES] = 1.0
        # [B, n, 3] as a transposed view: with each feature's keys contiguous, BLAS takes its fast path
        self.features = torch.from_numpy(features).to(self.device).transpose(1, 2)
        self.sums: list[torch.Tensor] = []  # float64 [B, S, heads] per layer
        self._plans: dict[int, list] = {}  # heads -> chunks
        self._hidden: dict = {}  # (lo, hi, chunk) -> additive mask of a chunk, shared by layers
        self._row_weights: dict = {}  # chunk -> [texts, S, rows]

    def layer(self, layer: LayerQK, value: torch.Tensor | None = None) -> torch.Tensor | None:
        """Reduce one layer's statistics; with ``value`` (``[batch, kv_heads, n, dv]``), also return its
        attention output ``[batch, n, heads, dv]`` in ``value``'s dtype, as ``capture.recording`` takes it
        from a consumer. Returns None (the caller computes the output) when the layer is not this batch's
        ``n`` queries over ``n`` keys."""
        batch, heads, n, _ = layer.query.shape
        if (batch, n, int(layer.key.shape[2])) != (self.batch, self.n, self.n):
            if value is None:
                raise ValueError(f"a layer of {batch} × {n} queries for a batch of {self.batch} × {self.n}")
            return None
        out = v = None
        if value is not None:
            v = (
                value
                if layer.group == 1
                else value[:, torch.arange(heads, device=value.device) // layer.group]
            )
            v = v.float()
            out = torch.empty((batch, n, heads, int(value.shape[-1])), dtype=value.dtype, device=value.device)
        self.sums.append(self._reduce(layer, v, out))
        return out

    def result(self) -> np.ndarray:
        """float32 ``[texts, len(STAT_NAMES), layers, heads]``: each statistic averaged over its rows."""
        out = torch.stack(self.sums, dim=2)  # [B, S, L, H]
        counts = self.m.to(torch.float64)[:, None].expand(self.batch, len(STAT_NAMES)).clone()
        for name in ("previous_share", "next_share"):  # rows that have a previous / a next token
            counts[:, _S[name]] = (self.m - 1).to(torch.float64)
        counts = torch.where(counts > 0, counts, torch.ones_like(counts))
        return (out / counts[:, :, None, None]).to(torch.float32).cpu().numpy()

    def _plan(self, heads: int) -> list[tuple[int, int, int, int, int]]:
        """Chunks ``(b0, b1, r0, r1, keys)``: texts ``b0:b1``, query rows ``r0:r1`` over keys ``:keys`` (the
        longest of those texts), each within ``STAT_CHUNK_ELEMENTS`` weights. A few whole texts per chunk
        rather than a few rows of every text: each matrix product then has all of a text's rows, which
        BLAS runs twice as fast as a sliver of rows, and the chunk's keys stop at its own longest text."""
        plan = self._plans.get(heads)
        if plan is not None:
            return plan
        m = self.m.tolist()
        plan, b0 = [], 0
        while b0 < self.batch:
            keys = max(1, m[b0])
            b1 = b0 + 1
            while b1 < self.batch and (b1 + 1 - b0) * heads * max(keys, m[b1]) ** 2 <= STAT_CHUNK_ELEMENTS:
                keys = max(keys, m[b1])
                b1 += 1
            step = max(1, STAT_CHUNK_ELEMENTS // ((b1 - b0) * heads * keys))
            plan.extend((b0, b1, r0, min(keys, r0 + step), keys) for r0 in range(0, keys, step))
            b0 = b1
        self._plans[heads] = plan
        return plan

    def _chunk_mask(self, layer: LayerQK, chunk: tuple[int, int, int, int, int]) -> torch.Tensor | None:
        """float32 ``[texts, 1, rows, keys]`` of a chunk: 0 where a row may see a key, ``_HIDDEN`` elsewhere
        (padded keys too); None when every row sees every key. Layers that share their mask share it."""
        key = (id(layer.lo), id(layer.hi), chunk)
        held = self._hidden.get(key)
        if held is None or held[0] is not layer.lo or held[1] is not layer.hi:
            b0, b1, r0, r1, keys = chunk
            positions = torch.arange(keys, device=self.device)
            lo = layer.lo[b0:b1, r0:r1, None].to(self.device)
            hi = torch.minimum(layer.hi[b0:b1, r0:r1].to(self.device), self.m[b0:b1, None])[..., None]
            hidden = (positions < lo) | (positions >= hi)  # [texts, rows, keys]
            bias = torch.where(hidden, _HIDDEN, 0.0)[:, None] if bool(hidden.any()) else None
            held = (layer.lo, layer.hi, bias)
            self._hidden[key] = held
        return held[2]

    def _row_weight(self, chunk: tuple[int, int, int, int, int]) -> torch.Tensor:
        """float32 ``[texts, S, rows]``: 1 where a row counts towards a statistic (valid rows; for the
        previous and next shares, rows that have a previous / a next token), else 0."""
        held = self._row_weights.get(chunk)
        if held is None:
            b0, b1, r0, r1, _ = chunk
            rows = torch.arange(r0, r1, device=self.device)
            m = self.m[b0:b1, None]
            valid = (rows < m).to(torch.float32)  # [texts, rows]
            held = valid[:, None, :].repeat(1, len(STAT_NAMES), 1)
            held[:, _S["previous_share"]] = valid * (rows >= 1)
            held[:, _S["next_share"]] = (rows + 1 < m).to(torch.float32)
            self._row_weights[chunk] = held
        return held

    def _reduce(self, layer: LayerQK, v: torch.Tensor | None, out: torch.Tensor | None) -> torch.Tensor:
        """float64 ``[B, S, heads]``: each statistic summed over the valid query rows; with ``v`` (float32
        ``[B, heads, n, dv]``) also writes the layer's output into ``out`` (zeros for rows past the longest
        text of their chunk: padding, which no real token attends to)."""
        query, key = layer.query, layer.key
        batch, heads, n, _ = query.shape
        device = self.device
        if layer.group != 1:
            key = key[:, torch.arange(heads, device=device) // layer.group]
        k = key.float().transpose(-1, -2).contiguous()  # [B, H, d, n]: one copy per layer, BLAS's fast layout
        sinks = None if layer.sinks is None else layer.sinks.to(device, torch.float32)[None, :, None, None]
        sums = torch.zeros((batch, heads, len(STAT_NAMES)), dtype=torch.float64, device=device)
        for chunk in self._plan(heads):
            b0, b1, r0, r1, keys = chunk
            texts, c = b1 - b0, r1 - r0
            q = query[b0:b1, :, r0:r1].float() * layer.scaling  # scaled here: [c, d] is smaller than [c, n]
            scores = torch.matmul(q, k[b0:b1, :, :, :keys])  # [texts, H, c, keys]
            if layer.softcap is not None:
                scores = scores.div_(layer.softcap).tanh_().mul_(layer.softcap)
            bias = self._chunk_mask(layer, chunk)
            if bias is not None:
                # finite: a row without keys (padding, left out below) gets finite weights, never NaN
                scores.add_(bias)
            top = scores.amax(-1, keepdim=True)  # [texts, H, c, 1]
            if sinks is not None:  # a sink logit per head joins every row's softmax, then is dropped
                top = torch.maximum(top, sinks)
            # the softmax by hand, left unnormalised: every per-row sum below is linear in the weights, so
            # each is divided by the row's normaliser z once, not every weight; and ln p = s − max − ln z,
            # so −Σ p·ln p needs no log of every weight (shifted scores ≤ 0 keep the difference accurate)
            shifted = scores.sub_(top)
            w = shifted.exp()  # e = z·p
            # every head's rows of a text as one matrix against the text's key features: [texts, H, c, 3]
            features = self.features[b0:b1, :keys]
            keyed = torch.matmul(w.view(texts, heads * c, keys), features).view(texts, heads, c, 3)
            z = keyed[..., _ONES]
            if sinks is not None:
                z = z + torch.exp(sinks - top)[..., 0]
            if out is not None:
                output = torch.matmul(w, v[b0:b1, :, :keys]).div_(z[..., None])  # [texts, H, c, dv]
                out[b0:b1, r0:r1] = output.transpose(1, 2)
                if r1 == keys and keys < n:
                    out[b0:b1, keys:] = 0
            per_row = torch.empty((texts, heads, len(STAT_NAMES), c), dtype=torch.float32, device=device)
            per_row[:, :, _S["special_share"]] = keyed[..., _SPECIAL]
            per_row[:, :, _S["punctuation_share"]] = keyed[..., _PUNCTUATION]
            # −Σ p·ln p = ln z·Σ_keys p − Σ e·shifted / z (Σ_keys p < 1 with a sink)
            per_row[:, :, _S["entropy"]] = z.log().mul_(keyed[..., _ONES])
            per_row[:, :, _S["entropy"]] -= torch.linalg.vecdot(w, shifted)
            rows = torch.arange(r0, r1, device=device)
            distance = (
                (rows[:, None] - torch.arange(keys, device=device)).abs_().to(torch.float32)
            )  # [c, keys]
            per_row[:, :, _S["mean_distance"]] = torch.linalg.vecdot(w, distance)
            per_row[:, :, _S["self_share"]] = torch.diagonal(w, offset=r0, dim1=-2, dim2=-1)
            per_row[:, :, _S["sink_share"]] = w[..., 0]
            previous = per_row[:, :, _S["previous_share"]]  # row i's weight on key i − 1
            if r0 == 0:
                previous[..., 0] = 0
                previous[..., 1:] = torch.diagonal(w, offset=-1, dim1=-2, dim2=-1)
            else:
                previous[...] = torch.diagonal(w, offset=r0 - 1, dim1=-2, dim2=-1)
            following = per_row[:, :, _S["next_share"]]  # row i's weight on key i + 1 (none for the last)
            tail = torch.diagonal(w, offset=r0 + 1, dim1=-2, dim2=-1)
            following[..., : tail.shape[-1]] = tail
            following[..., tail.shape[-1] :] = 0
            # one division by z per row, rows that do not count zeroed, then a float64 sum over the rows
            per_row.div_(z[:, :, None, :]).mul_(self._row_weight(chunk)[:, None])
            sums[b0:b1] += per_row.sum(-1, dtype=torch.float64)
        return sums.transpose(1, 2)


def batch_statistics(
    layers: Sequence[LayerQK],
    lengths: Sequence[int],
    special: Sequence[np.ndarray],
    punctuation: Sequence[np.ndarray],
) -> np.ndarray:
    """Every statistic of every head for each text of a right-padded batch, from its recorded layers.

    Args:
        layers: what each attention layer recorded for the batch (``capture.recording``), in layer order.
        lengths: tokens of each text (its first ``lengths[b]`` positions; the rest is padding).
        special, punctuation: bool ``[lengths[b]]`` per text.

    Returns:
        float32 ``[texts, len(STAT_NAMES), layers, heads]``.
    """
    first = layers[0]
    reducer = BatchStatistics(lengths, special, punctuation, int(first.query.shape[2]), first.query.device)
    for layer in layers:
        reducer.layer(layer)
    return reducer.result()
