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

from visualizeai.attention.store import CHUNK_ELEMENTS, AttentionStore, max_pool_aligned, pool_normalised
from visualizeai.cache import BoundedLRU

MASK_ROWS = 1024  # query rows of a materialised mask read at a time when turning it into intervals
NORMALISER_BYTES = 64 * 2**20  # most bytes of softmax normalisers one store keeps (8 bytes a row and head)


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
        lse: float32 ``[batch, heads, q]``: each row's log-sum-exp of its scaled scores, as the forward pass's
            attention kernel computed it (the CPU flash kernel returns it with the output), or None. Good to
            a few 1e-7; the whole max-pooled picture reads it (``quick_max_picture``), exact reads do not.
    """

    query: torch.Tensor
    key: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    scaling: float
    softcap: float | None = None
    sinks: torch.Tensor | None = None
    lse: torch.Tensor | None = None

    @property
    def heads(self) -> int:
        return int(self.query.shape[1])

    @property
    def group(self) -> int:
        return self.heads // int(self.key.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size()
            for t in (self.query, self.key, self.lo, self.hi, self.lse)
            if t is not None
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
            None if self.lse is None else self.lse[index : index + 1, :, :n],
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


def _scores(
    layer: LayerQK,
    head_index: torch.Tensor,
    rows: tuple[int, int],
    keys: tuple[int, int],
    lo: torch.Tensor,
    hi: torch.Tensor,
    item: int,
) -> torch.Tensor:
    """Float32 ``[h, m, k1 - k0]``: scaled (soft-capped) scores of query rows ``rows`` over keys ``keys``,
    with ``-inf`` where a row may not attend (``lo``/``hi``: the rows' allowed intervals, on the device)."""
    (start, stop), (k0, k1) = rows, keys
    q = layer.query[item, head_index, start:stop].float()  # [h, m, dim]
    k = layer.key[item, head_index // layer.group, k0:k1].float()  # [h, span, dim]
    scores = torch.matmul(q, k.transpose(-1, -2)).mul_(layer.scaling)  # [h, m, span]
    if layer.softcap is not None:
        scores = scores.div_(layer.softcap).tanh_().mul_(layer.softcap)
    return _hide(scores, lo, hi, k0, k1)


def _hide(scores: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, k0: int, k1: int) -> torch.Tensor:
    """``scores`` ``[..., m, k1 − k0]`` with ``-inf`` where a row may not attend (``lo``/``hi``: the rows'
    allowed intervals, on the device), in place."""
    # Rows that see fewer keys than the span (causal, padding, sliding windows): only the columns past the
    # smallest end (before the largest start) can be hidden, so the mask covers those columns alone.
    if bool((hi < k1).any()):
        first = max(k0, int(hi.min()))
        positions = torch.arange(first, k1, device=scores.device)
        scores[..., first - k0 :].masked_fill_(positions[None, :] >= hi[:, None], float("-inf"))
    if bool((lo > k0).any()):
        last = min(k1, int(lo.max()))
        positions = torch.arange(k0, last, device=scores.device)
        scores[..., : last - k0].masked_fill_(positions[None, :] < lo[:, None], float("-inf"))
    return scores


def _normalisers(
    scores: torch.Tensor, layer: LayerQK, head_index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The softmax of full-span ``scores`` ``[h, m, span]`` in parts: ``(e, m, z)`` with ``e = exp(s − m)``,
    ``m`` the row maximum (0 for a row without keys) and ``z`` the row's sum of ``e`` (1 without keys, so
    that its weights are 0); a sink logit joins ``m`` and ``z``. Weights are ``e / z``."""
    m = scores.amax(-1)  # [h, m]
    sink = None
    if layer.sinks is not None:  # a sink logit per head joins every row's softmax, then is dropped
        sink = layer.sinks.to(scores.device, torch.float32)[head_index][:, None].expand_as(m)
        m = torch.maximum(m, sink)
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    e = scores.sub_(m[..., None]).exp_()  # in place: the scores are not needed again
    z = e.sum(-1)
    if sink is not None:
        z = z + torch.exp(sink - m)
    z = torch.where(z > 0, z, torch.ones_like(z))
    return e, m, z


class Normalisers:
    """Each head's softmax normalisers (row maximum ``m`` and sum ``z``), kept once a pass over a row's every
    key has computed them, so that a block of a few columns later costs only its own cells:
    ``weights = exp(s − m) / z``. Bounded: heads least recently used are dropped past ``max_bytes``."""

    def __init__(self, n: int, max_bytes: int):
        self.n = n
        self._held = BoundedLRU(max(1, max_bytes // (8 * max(1, n))), max_bytes, lambda t: 8 * t.shape[-1])

    def get(self, layer: int, heads: Sequence[int], rows: tuple[int, int]):
        """``(m, z)`` float32 ``[h, m]`` for ``heads`` and ``rows``, or None unless all are known."""
        parts = []
        for head in heads:
            held = self._held.get(f"{layer}:{head}")
            if held is None:
                return None
            part = held[:, rows[0] : rows[1]]
            if bool(torch.isnan(part[0]).any()):
                return None
            parts.append(part)
        both = torch.stack(parts, 1)  # [2, h, m]
        return both[0], both[1]

    def put(self, layer: int, heads: Sequence[int], rows: tuple[int, int], m: torch.Tensor, z: torch.Tensor):
        for i, head in enumerate(heads):
            name = f"{layer}:{head}"
            held = self._held.get(name)
            if held is None:
                held = torch.full((2, self.n), float("nan"), dtype=torch.float32, device=m.device)
                self._held.put(name, held)
            held[1, rows[0] : rows[1]] = z[i]
            held[0, rows[0] : rows[1]] = m[i]  # written last: a row reads as known once both are in


def _row_chunks(
    layer: LayerQK, heads: int, rows: tuple[int, int], item: int
) -> Iterator[tuple[int, int, int, int]]:
    """``(start, stop, k0, k1)``: query rows ``a:b`` in chunks whose scores over their keys ``k0:k1`` stay
    within ``CHUNK_ELEMENTS``."""
    a, b = rows
    lo_all, hi_all = layer.lo[item], layer.hi[item]
    start = a
    while start < b:
        # Size each chunk by the widest key span the rows left could need.
        width = max(1, int(hi_all[start:b].max()) - int(lo_all[start:b].min()))
        stop = start + max(1, min(b - start, CHUNK_ELEMENTS // (heads * width)))
        k0, k1 = int(lo_all[start:stop].min()), int(hi_all[start:stop].max())
        yield start, stop, k0, k1
        start = stop


def normalised(
    layer: LayerQK,
    heads: Sequence[int],
    rows: tuple[int, int],
    cols: tuple[int, int],
    item: int = 0,
    norms: Normalisers | None = None,
    layer_index: int = 0,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, int]]:
    """The weights of ``heads``, rows ``a:b``, columns ``c:d`` as their unnormalised parts, a bounded chunk of
    rows at a time: ``(row_start, e, z, c0)`` with ``e = exp(s − m)`` float32 ``[h, m, c1 − c0]`` for the
    columns ``c0:c1`` inside ``c:d`` that the rows may see (weights elsewhere in ``c:d`` are 0) and ``z``
    ``[h, m]``; weights are ``e / z``. With ``norms`` a chunk whose normalisers are known computes only its
    own columns' scores, and a chunk that computes a full row's scores keeps its normalisers there."""
    a, b = rows
    c, d = cols
    device = layer.query.device
    heads = list(heads)
    head_index = torch.as_tensor(heads, dtype=torch.int64, device=device)
    lo_all, hi_all = layer.lo[item], layer.hi[item]
    for start, stop, k0, k1 in _row_chunks(layer, len(heads), rows, item):
        c0, c1 = max(c, k0), min(d, k1)
        if c1 <= c0:  # no row here sees any key in c:d
            yield start, torch.zeros((len(heads), stop - start, 0), device=device), None, c
            continue
        lo, hi = lo_all[start:stop].to(device), hi_all[start:stop].to(device)
        known = (
            None if norms is None or (c0, c1) == (k0, k1) else norms.get(layer_index, heads, (start, stop))
        )
        if known is not None:
            m, z = known
            e = _scores(layer, head_index, (start, stop), (c0, c1), lo, hi, item).sub_(m[..., None]).exp_()
        else:
            e, m, z = _normalisers(
                _scores(layer, head_index, (start, stop), (k0, k1), lo, hi, item), layer, head_index
            )
            if norms is not None:
                norms.put(layer_index, heads, (start, stop), m, z)
            e = e[:, :, c0 - k0 : c1 - k0]
        yield start, e, z, c0


def log_weights(layer: LayerQK, head: int, n: int) -> Iterator[tuple[int, torch.Tensor, int]]:
    """Every row of ``head`` as ``(row_start, s − lse, c0)``: float32 ``[1, m, c1 − c0]``, the logarithms of
    the weights of columns ``c0 : c1`` from the scaled scores ``s`` and the forward pass's per-row log-sum-exp
    (``-inf`` where a row may not attend). One fused product a chunk (``addmm``: scale and subtraction inside
    it, so its last bit may differ from the exact reads'), no softmax pass."""
    device = layer.query.device
    query, key = layer.query[0, head], layer.key[0, head // layer.group]
    lo_all, hi_all = layer.lo[0], layer.hi[0]
    for start, stop, k0, k1 in _row_chunks(layer, 1, (0, n), 0):
        lo, hi = lo_all[start:stop].to(device), hi_all[start:stop].to(device)
        lse = layer.lse[0, head, start:stop].to(device, torch.float32)
        lse = torch.where(torch.isfinite(lse), lse, torch.inf)  # a row without keys: every log weight -inf
        q, k = query[start:stop].float(), key[k0:k1].float()
        scores = torch.addmm(lse.neg()[:, None], q, k.T, alpha=layer.scaling)
        yield start, _hide(scores, lo, hi, k0, k1)[None], k0


def weights(
    layer: LayerQK,
    heads: Sequence[int],
    rows: tuple[int, int],
    cols: tuple[int, int],
    item: int = 0,
    norms: Normalisers | None = None,
    layer_index: int = 0,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Float32 attention weights of ``heads`` for query rows ``a:b`` and key columns ``c:d`` of batch item
    ``item``, recomputed on the queries' device and yielded as ``(row_start, [len(heads), chunk, d - c])``,
    each chunk's scores within ``CHUNK_ELEMENTS``. Rows are eager attention's softmax over every key they see;
    a chunk whose normalisers ``norms`` holds computes only its columns, as ``exp(s − m) / z``."""
    c, d = cols
    device = layer.query.device
    heads = list(heads)
    head_index = torch.as_tensor(heads, dtype=torch.int64, device=device)
    lo_all, hi_all = layer.lo[item], layer.hi[item]
    for start, stop, k0, k1 in _row_chunks(layer, len(heads), rows, item):
        out = None
        c0, c1 = max(c, k0), min(d, k1)
        lo, hi = lo_all[start:stop].to(device), hi_all[start:stop].to(device)
        if c1 <= c0:  # no row here sees any key in c:d
            w = torch.zeros((len(heads), stop - start, 0), dtype=torch.float32, device=device)
        elif (
            norms is not None
            and (c0, c1) != (k0, k1)
            and (known := norms.get(layer_index, heads, (start, stop)))
        ):
            m, z = known
            w = _scores(layer, head_index, (start, stop), (c0, c1), lo, hi, item).sub_(m[..., None]).exp_()
            w = w.div_(z[..., None])
        else:
            scores = _scores(layer, head_index, (start, stop), (k0, k1), lo, hi, item)
            if layer.sinks is not None:  # a sink logit per head joins every row's softmax, then is dropped
                sink = layer.sinks.to(device, torch.float32)[head_index][:, None, None]
                scores = torch.cat([scores, sink.expand(-1, scores.shape[1], 1)], dim=-1)
                w = torch.softmax(scores, dim=-1)[..., :-1]
            else:
                w = torch.softmax(scores, dim=-1)
            if not bool((hi > lo).all()):
                w = w.nan_to_num_(0.0)  # rows without keys: all zero
            w = w[:, :, c0 - k0 : c1 - k0] if (c0, c1) != (k0, k1) else w
        if w.shape[-1] == d - c:
            out = w
        else:
            out = torch.zeros((len(heads), stop - start, d - c), dtype=torch.float32, device=device)
            out[:, :, c0 - c : c0 - c + w.shape[-1]] = w
        yield start, out


class CapturedStore(AttentionStore):
    """Attention of one text recomputed from the queries and keys each layer recorded. Each head's softmax
    normalisers are kept (bounded by ``NORMALISER_BYTES``, at most a quarter of the store's own bytes) once
    a pass has read its rows whole, so that a later block costs only its own cells."""

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
        self.normalisers = Normalisers(self.n, min(NORMALISER_BYTES, max(2**20, self.nbytes // 4)))

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.captured)

    @property
    def device_bytes(self) -> int:
        return sum(layer.nbytes for layer in self.captured if layer.query.device.type != "cpu")

    def _chunks(self, layer, heads, rows, cols):
        return weights(self.captured[layer], heads, rows, cols, norms=self.normalisers, layer_index=layer)

    def _normalised(self, layer, heads, rows, cols):
        return normalised(self.captured[layer], heads, rows, cols, norms=self.normalisers, layer_index=layer)

    def pooled(self, layer, head, rows=None, cols=None, size=512, pool="mean"):
        if layer is None or head is None:  # a mean over heads is pooled after averaging
            return super().pooled(layer, head, rows, cols, size, pool)
        self.check_layer(layer)
        self.check_head(head)
        rows, cols = self._picture_ranges(rows, cols, size, pool)
        if (
            rows[1] - rows[0] <= size and cols[1] - cols[0] <= size
        ):  # exact: the weights as block() reads them
            return super().pooled(layer, head, rows, cols, size, pool)
        return pool_normalised(self._normalised(layer, [head], rows, cols), rows, cols, size, pool)[0]

    def max_picture(self, layer, head, width):
        self.check_layer(layer)
        self.check_head(head)
        whole = (0, self.n)
        parts = (
            (start, e.div_(z[..., None]), c0)  # e is each chunk's own: divided in place
            for start, e, z, c0 in self._normalised(layer, [head], whole, whole)
            if z is not None
        )
        return max_pool_aligned(parts, self.n, width)[0]

    def has_quick_picture(self, layer):
        self.check_layer(layer)
        captured = self.captured[layer]
        return captured.lse is not None and captured.softcap is None and captured.sinks is None

    def quick_max_picture(self, layer, head, width):
        self.check_head(head)
        if not self.has_quick_picture(layer):
            return None
        parts = log_weights(self.captured[layer], head, self.n)
        return max_pool_aligned(parts, self.n, width, log_space=True)[0]

    def pooled_heads(self, layer, rows=None, cols=None, size=64, pool="mean"):
        self.check_layer(layer)
        rows, cols = self._picture_ranges(rows, cols, size, pool)
        return pool_normalised(self._normalised(layer, range(self.heads), rows, cols), rows, cols, size, pool)
