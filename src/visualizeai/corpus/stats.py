"""Head statistics of a whole padded batch straight from its captured queries and keys, on the model's device.

The batch form of ``analysis.head_stats.head_statistics_from_store`` (same definitions, equal results within
float32 rounding, tested against it): for each layer, the weights of every text and head are recomputed a
bounded chunk of query rows at a time (``softmax(q·kᵀ·scale)`` over each row's allowed keys, as
``attention.captured.weights`` does), and every statistic is reduced on the device in the same pass, so
nothing n×n outlives a chunk, nothing is copied to the host but the ``[texts, statistics, layers, heads]``
sums, and one matrix product serves all texts of the batch instead of one per text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.attention.captured import LayerQK
from visualizeai.attention.store import CHUNK_ELEMENTS

# Several chunk-sized temporaries live at once (weights, their logs, products): a quarter keeps the peak
# near the store's own CHUNK_ELEMENTS bound.
STAT_CHUNK_ELEMENTS = CHUNK_ELEMENTS // 4
_HIDDEN = -1e30  # the score of a key a row may not see: exp underflows to exactly 0


def batch_statistics(
    layers: Sequence[LayerQK],
    lengths: Sequence[int],
    special: Sequence[np.ndarray],
    punctuation: Sequence[np.ndarray],
) -> np.ndarray:
    """Every statistic of every head for each text of a right-padded batch.

    Args:
        layers: what each attention layer recorded for the batch (``capture.recording``), in layer order.
        lengths: tokens of each text (its first ``lengths[b]`` positions; the rest is padding).
        special, punctuation: bool ``[lengths[b]]`` per text.

    Returns:
        float32 ``[texts, len(STAT_NAMES), layers, heads]``.
    """
    first = layers[0]
    batch, heads, n, _ = first.query.shape
    device = first.query.device
    m = torch.as_tensor(list(lengths), dtype=torch.int64, device=device)  # [B]
    keys = torch.zeros((batch, n, 2), dtype=torch.float32, device=device)  # 1 for special, punctuation keys
    for b, (s, p) in enumerate(zip(special, punctuation, strict=True)):
        keys[b, : len(s), 0] = torch.from_numpy(np.asarray(s, dtype=np.float32))
        keys[b, : len(p), 1] = torch.from_numpy(np.asarray(p, dtype=np.float32))
    out = torch.zeros((batch, len(STAT_NAMES), len(layers), heads), dtype=torch.float64, device=device)
    for index, layer in enumerate(layers):
        out[:, :, index] = _layer_sums(layer, m, keys)
    counts = m.to(torch.float64)[:, None].expand(batch, len(STAT_NAMES)).clone()
    for name in ("previous_share", "next_share"):  # rows that have a previous / a next token
        counts[:, STAT_NAMES.index(name)] = (m - 1).to(torch.float64)
    counts = torch.where(counts > 0, counts, torch.ones_like(counts))
    return (out / counts[:, :, None, None]).to(torch.float32).cpu().numpy()


def _layer_sums(layer: LayerQK, m: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """float64 ``[B, len(STAT_NAMES), heads]``: each statistic summed over the valid query rows."""
    query, key = layer.query, layer.key
    batch, heads, n, _ = query.shape
    device = query.device
    kv_index = torch.arange(heads, device=device) // layer.group
    k = key[:, kv_index].float().transpose(-1, -2)  # [B, H, d, n], linear in n
    lo = layer.lo.to(device)
    hi = torch.minimum(layer.hi.to(device), m[:, None])  # never a padded key
    positions = torch.arange(n, device=device)
    sinks = None if layer.sinks is None else layer.sinks.to(device, torch.float32)[None, :, None, None]
    sums = torch.zeros((batch, len(STAT_NAMES), heads), dtype=torch.float64, device=device)
    step = max(1, STAT_CHUNK_ELEMENTS // max(1, batch * heads * n))
    for start in range(0, int(m.max()), step):
        stop = min(n, start + step)
        rows = positions[start:stop]  # [c]
        q = query[:, :, start:stop].float() * layer.scaling  # scaled here: [c, d] is smaller than [c, n]
        scores = torch.matmul(q, k)  # [B, H, c, n]
        if layer.softcap is not None:
            scores = scores.div_(layer.softcap).tanh_().mul_(layer.softcap)
        lo_c, hi_c = lo[:, start:stop, None], hi[:, start:stop, None]  # [B, c, 1]
        hidden = (positions[None, None, :] < lo_c) | (positions[None, None, :] >= hi_c)  # [B, c, n]
        # a finite fill: a row without keys (padding, left out below) gets finite weights, never NaN
        scores.masked_fill_(hidden[:, None], _HIDDEN)
        if sinks is not None:  # a sink logit per head joins every row's softmax, then is dropped
            scores = torch.cat([scores, sinks.expand(batch, -1, stop - start, 1)], dim=-1)
        # the softmax by hand, left unnormalised: every per-row sum below is linear in the weights, so each
        # is divided by the row's normaliser z once, not every weight; and ln p = s − max − ln z, so
        # −Σ p·ln p needs no log of every weight (shifted scores ≤ 0 keep the difference accurate)
        shifted = scores.sub_(scores.amax(-1, keepdim=True))
        w = shifted.exp()  # e = z·p
        z = w.sum(-1)  # [B, H, c]
        if sinks is not None:
            w, shifted = w[..., :-1], shifted[..., :-1]
        entropy = z.log() * w.sum(-1) - (w * shifted).sum(-1)
        valid = (rows[None, :] < m[:, None]).to(torch.float32)  # [B, c]
        distance = (rows[:, None] - positions[None, :]).abs().to(torch.float32)  # [c, n]
        shares = torch.matmul(w, keys[:, None])  # [B, H, c, 2]: special, punctuation
        per_row = {
            "entropy": entropy,
            "mean_distance": (w * distance).sum(-1),
            "special_share": shares[..., 0],
            "punctuation_share": shares[..., 1],
            "self_share": torch.diagonal(w, offset=start, dim1=-2, dim2=-1),
            "sink_share": w[..., 0],
        }
        previous = torch.zeros_like(per_row["sink_share"])  # row i's weight on key i − 1
        if start == 0:
            previous[..., 1:] = torch.diagonal(w, offset=-1, dim1=-2, dim2=-1)
        else:
            previous[...] = torch.diagonal(w, offset=start - 1, dim1=-2, dim2=-1)
        following = torch.zeros_like(previous)  # row i's weight on key i + 1 (none for the last position)
        tail = torch.diagonal(w, offset=start + 1, dim1=-2, dim2=-1)
        following[..., : tail.shape[-1]] = tail
        per_row["previous_share"] = previous
        per_row["next_share"] = following
        per_row = {name: value / z for name, value in per_row.items()}
        has_previous = valid * (rows[None, :] >= 1)
        has_next = (rows[None, :] + 1 < m[:, None]).to(torch.float32)
        weights = {"previous_share": has_previous, "next_share": has_next}
        for s, name in enumerate(STAT_NAMES):
            row_weight = weights.get(name, valid)[:, None, :]  # [B, 1, c]
            sums[:, s] += (per_row[name] * row_weight).sum(-1, dtype=torch.float64)
    return sums
