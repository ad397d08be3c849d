"""Attention recomputed on demand from captured queries and keys: ``softmax(q·kᵀ·scale + mask)``.

``LayerQK`` is what one attention layer recorded (post-RoPE queries and keys before the grouped-query repeat,
and everything its softmax needs); ``weights`` recomputes any block of it in float32 on the model's device;
``CapturedStore`` is the attention store built on it. Nothing n×n is kept: a mask is kept as one interval
of allowed keys per query row, which covers causal, bidirectional, padded and sliding-window attention.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from visualizeai.attention.store import CHUNK_ELEMENTS, AttentionStore

MASK_ROWS = 1024  # query rows of a materialised mask read at a time when turning it into intervals


class CaptureUnsupported(ValueError):
    """A layer's attention cannot be rebuilt from its queries and keys (additive bias, per-head mask)."""


@dataclass
class LayerQK:
    """One layer's attention inputs for a batch.

    Attributes:
        query: ``[batch, heads, q, d]`` in the model's dtype, on its device, after RoPE.
        key: ``[batch, kv_heads, k, d]``, before the grouped-query repeat (head ``h`` reads kv head
            ``h // (heads // kv_heads)``).
        lo, hi: int64 ``[batch, q]``: row ``i`` attends to keys ``lo[i] <= j < hi[i]`` (empty for padding).
        scaling: factor applied to ``q·kᵀ``.
        softcap: logit soft-capping ``cap·tanh(s/cap)`` (Gemma 2), or None.
        sinks: float ``[heads]`` sink logits that take part in the softmax but not in the output, or None.
    """

    query: torch.Tensor
    key: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    scaling: float
    softcap: float | None = None
    sinks: torch.Tensor | None = None

    @property
    def heads(self) -> int:
        return int(self.query.shape[1])

    @property
    def group(self) -> int:
        return self.heads // int(self.key.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size() for t in (self.query, self.key, self.lo, self.hi) if t is not None
        )

    def item(self, index: int, n: int) -> LayerQK:
        """The ``index``-th text of the batch, its first ``n`` tokens (views, no copy)."""
        return LayerQK(
            self.query[index : index + 1, :, :n],
            self.key[index : index + 1, :, :n],
            self.lo[index : index + 1, :n].clamp(max=n),
            self.hi[index : index + 1, :n].clamp(max=n),
            self.scaling,
            self.softcap,
            self.sinks,
        )


def mask_intervals(
    attention_mask: torch.Tensor | None, q_len: int, k_len: int, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Allowed key interval ``[lo, hi)`` per batch item and query row, as SDPA reads the same arguments.

    ``attention_mask`` is None (then ``causal`` says whether rows see keys ``0..i``, else all keys), a
    boolean ``[batch, 1, q, k]`` (True: attend) or an additive float mask of 0 and large negatives. Raises
    CaptureUnsupported when a row's allowed keys are not one interval or the mask carries other values.
    """
    if attention_mask is None:
        rows = torch.arange(q_len, dtype=torch.int64)
        hi = rows + 1 if causal else torch.full((q_len,), k_len, dtype=torch.int64)
        return torch.zeros((1, q_len), dtype=torch.int64), hi.clamp(max=k_len)[None]
    mask = attention_mask
    if mask.dim() == 2:  # [batch, k] key padding only
        mask = mask[:, None, None, :].expand(-1, 1, q_len, -1)
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise CaptureUnsupported(f"attention mask of shape {tuple(mask.shape)} (per-head masks)")
    batch, _, mq, mk = mask.shape
    if mq != q_len or mk < k_len:
        raise CaptureUnsupported(f"attention mask of shape {tuple(mask.shape)} for {q_len} × {k_len} scores")
    lo = torch.zeros((batch, q_len), dtype=torch.int64)
    hi = torch.zeros((batch, q_len), dtype=torch.int64)
    for start in range(0, q_len, MASK_ROWS):
        part = mask[:, 0, start : start + MASK_ROWS, :k_len]
        if part.dtype == torch.bool:
            allowed = part
        else:
            allowed = part == 0
            if not bool((allowed | (part <= torch.finfo(part.dtype).min / 2)).all()):
                raise CaptureUnsupported("an additive attention bias (values other than 0 and -inf)")
        as_int = allowed.to(torch.uint8)
        count = as_int.sum(-1, dtype=torch.int64).cpu()
        first = as_int.argmax(-1).cpu()
        last = k_len - as_int.flip(-1).argmax(-1).cpu()
        none = count == 0
        first[none], last[none] = 0, 0
        if not bool(((last - first) == count).all()):
            raise CaptureUnsupported("a mask whose allowed keys are not one interval per query")
        lo[:, start : start + part.shape[1]] = first
        hi[:, start : start + part.shape[1]] = last
    return lo, hi


def weights(
    layer: LayerQK,
    heads: Sequence[int],
    rows: tuple[int, int],
    cols: tuple[int, int],
    item: int = 0,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Float32 attention weights of ``heads`` for query rows ``a:b`` and key columns ``c:d`` of batch item
    ``item``, recomputed on the queries' device and yielded as ``(row_start, [len(heads), chunk, d - c])``,
    each chunk's scores within ``CHUNK_ELEMENTS``."""
    a, b = rows
    c, d = cols
    device = layer.query.device
    head_index = torch.as_tensor(list(heads), dtype=torch.int64, device=device)
    kv_index = head_index // layer.group
    lo_all, hi_all = layer.lo[item], layer.hi[item]
    start = a
    while start < b:
        # Size each chunk by the widest key span the rows left could need.
        width = max(1, int(hi_all[start:b].max()) - int(lo_all[start:b].min()))
        step = max(1, min(b - start, CHUNK_ELEMENTS // (len(heads) * width)))
        stop = start + step
        lo, hi = lo_all[start:stop].to(device), hi_all[start:stop].to(device)
        k0, k1 = int(lo.min()), int(hi.max())
        if k1 <= k0:  # no row here sees any key
            out = torch.zeros((len(heads), stop - start, d - c), dtype=torch.float32, device=device)
            yield start, out
            start = stop
            continue
        q = layer.query[item, head_index, start:stop].float()  # [h, m, dim]
        k = layer.key[item, kv_index, k0:k1].float()  # [h, span, dim]
        scores = torch.matmul(q, k.transpose(-1, -2)).mul_(layer.scaling)  # [h, m, span]
        if layer.softcap is not None:
            scores = scores.div_(layer.softcap).tanh_().mul_(layer.softcap)
        if bool((hi < k1).any()):  # some row sees fewer keys than the span (causal, padding)
            positions = torch.arange(k0, k1, device=device)
            hidden = positions[None, :] >= hi[:, None]  # [m, span]
            if bool((lo > k0).any()):  # and starts later (sliding windows)
                hidden |= positions[None, :] < lo[:, None]
            scores.masked_fill_(hidden, float("-inf"))
        elif bool((lo > k0).any()):
            positions = torch.arange(k0, k1, device=device)
            scores.masked_fill_(positions[None, :] < lo[:, None], float("-inf"))
        if layer.sinks is not None:  # a sink logit per head joins every row's softmax, then is dropped
            sink = layer.sinks.to(device, torch.float32)[head_index][:, None, None]
            scores = torch.cat([scores, sink.expand(-1, scores.shape[1], 1)], dim=-1)
            w = torch.softmax(scores, dim=-1)[..., :-1]
        else:
            w = torch.softmax(scores, dim=-1)
        if not bool((hi > lo).all()):
            w = w.nan_to_num_(0.0)  # rows without keys: all zero
        if (c, d) == (k0, k1):
            out = w
        else:
            out = torch.zeros((len(heads), stop - start, d - c), dtype=torch.float32, device=device)
            c0, c1 = max(c, k0), min(d, k1)
            if c1 > c0:
                out[:, :, c0 - c : c1 - c] = w[:, :, c0 - k0 : c1 - k0]
        yield start, out
        start = stop


class CapturedStore(AttentionStore):
    """Attention of one text recomputed from the queries and keys each layer recorded."""

    mode = "captured"

    def __init__(self, layers: list[LayerQK]):
        if not layers:
            raise ValueError("a captured store needs at least one layer")
        self.captured = layers
        self.layers = len(layers)
        self.heads = layers[0].heads
        self.n = int(layers[0].query.shape[2])
        for layer in layers:
            if layer.heads != self.heads or int(layer.key.shape[2]) != self.n:
                raise ValueError("every captured layer needs the same heads and n queries over n keys")

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.captured)

    @property
    def device_bytes(self) -> int:
        return sum(layer.nbytes for layer in self.captured if layer.query.device.type != "cpu")

    def _chunks(self, layer, heads, rows, cols):
        return weights(self.captured[layer], heads, rows, cols)
