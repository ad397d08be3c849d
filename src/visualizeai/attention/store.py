"""The one way anything reads attention: blocks, pooled pictures, means and dense arrays of one analysis.

``AttentionStore`` implements everything on top of one primitive, ``_chunks``: the float32 weights of some
heads of one layer for a range of query rows and key columns, yielded a bounded number of rows at a time.
``DenseStore`` slices arrays it holds (saved files, models that fail the capture self-check);
``attention.captured.CapturedStore`` recomputes the weights from captured queries and keys on the model's
device, so nothing n×n is ever kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from visualizeai.errors import InputError

POOLS = ("mean", "max")
# Elements of float32 weights one chunk may hold (16 MiB): bounds the memory of every recomputation, and keeps
# a chunk in a CPU's last-level cache through the few passes over it (scale, mask, maximum, exp, pooling): one
# head's 1,025² max picture at 16k tokens takes 0.50 s on two cores in chunks of 16 MiB, 0.70 s in 64 MiB.
CHUNK_ELEMENTS = 4 * 2**20
# Largest dense [layers, heads, n, n] float32 array handed out (the old per-result size of bert-large at 512).
DENSE_MAX_BYTES = 1024 * 2**20

RANGE_ERROR = "{name} {a}:{b} is not a range inside 0:{n}"
POOL_ERROR = "pool must be one of {pools}; got {pool!r}"
SIZE_ERROR = "size must be at least 1; got {size}"
RANGE_ERROR_INDEX = "{name} {index} is out of range{where}: {owner} has {name_lower}s 0–{last}."
DENSE_ERROR = (
    "The dense attention of this analysis would take {need:,} bytes ({what}), more than the limit of "
    "{limit:,} bytes; ask for single heads, blocks or pooled pictures instead."
)


class DenseTooLarge(InputError):
    """A dense array was asked for that is larger than the stated limit."""


def check_dense(matrices: int, rows: int, cols: int, limit: int = DENSE_MAX_BYTES, hint: str = "") -> None:
    """DenseTooLarge, with the figures, when ``matrices`` float32 ``rows × cols`` arrays exceed ``limit``."""
    need = 4 * matrices * rows * cols
    if need > limit:
        what = f"{matrices:,} × {rows:,} × {cols:,} float32"
        raise DenseTooLarge(DENSE_ERROR.format(need=need, what=what, limit=limit) + hint)


def check_range(rows: tuple[int, int], n: int, name: str) -> tuple[int, int]:
    """``rows`` as a non-empty ``(a, b)`` with ``0 <= a < b <= n``; ValueError otherwise."""
    a, b = int(rows[0]), int(rows[1])
    if not 0 <= a < b <= n:
        raise ValueError(RANGE_ERROR.format(name=name, a=a, b=b, n=n))
    return a, b


def _check_index(name: str, index: int | None, count: int, side: str | None) -> None:
    """The one layer/head range check every reader of attention uses."""
    if index is not None and not 0 <= index < count:
        where, owner = (f" for {side}", "it") if side else ("", "this model")
        raise InputError(
            RANGE_ERROR_INDEX.format(
                name=name, index=index, where=where, owner=owner, name_lower=name.lower(), last=count - 1
            )
        )


def bin_edges(length: int, bins: int) -> np.ndarray:
    """int64 ``[bins + 1]``: bin ``i`` of ``length`` items covers ``edges[i] : edges[i + 1]``, with
    ``edges[i] = ⌊i·length/bins⌋`` (the tiles API's rule)."""
    return (np.arange(bins + 1, dtype=np.int64) * length) // bins


def bin_index(length: int, bins: int) -> np.ndarray:
    """int64 ``[length]``: the bin of each item under ``bin_edges``."""
    return np.searchsorted(bin_edges(length, bins), np.arange(length), side="right") - 1


def _pool_columns(w: torch.Tensor, edges: np.ndarray, pool: str) -> torch.Tensor:
    """``[h, m, edges[-1] - edges[0]] -> [h, m, len(edges) - 1]``: the sum (for "mean") or max of each column
    bin ``edges[i] : edges[i + 1]`` (offsets into ``w``'s last axis after subtracting ``edges[0]``).

    Sums come from differences of a running sum (rows of weights sum to at most 1, so float32 keeps them to
    about 1e-7); maxima from one gather of every bin padded to the widest bin with its own last column.
    """
    widths = np.diff(edges)
    c = len(widths)
    if (widths == widths[0]).all():  # equal bins: a view
        bins = w.reshape(*w.shape[:-1], c, int(widths[0]))
        return bins.sum(dim=-1) if pool == "mean" else bins.amax(dim=-1)
    local = torch.from_numpy(edges - edges[0]).to(w.device)
    if pool == "mean":
        running = torch.nn.functional.pad(torch.cumsum(w, dim=-1), (1, 0))  # [h, m, width + 1]
        return running[..., local[1:]] - running[..., local[:-1]]
    widest = int(widths.max())
    index = (local[:-1, None] + torch.arange(widest, device=w.device)[None, :]).minimum(local[1:, None] - 1)
    return w[..., index.reshape(-1)].reshape(*w.shape[:-1], c, widest).amax(dim=-1)


def _pool_rows(
    parts: Iterator[tuple[int, torch.Tensor]], rows: tuple[int, int], r: int, cols_bins: int, pool: str
) -> torch.Tensor:
    """Pool row chunks ``(row_start, [h, m, c])`` (columns pooled already: bin sums or maxima) covering rows
    ``a:b`` into ``[h, r, c]`` by ``bin_edges``'s row bins (sums, or maxima)."""
    height = rows[1] - rows[0]
    row_bin = torch.from_numpy(bin_index(height, r))
    reduce, include = ("amax", False) if pool == "max" else ("sum", True)
    equal = height % r == 0 and pool == "max"  # maxima of equal bins: whole bins through a view
    out: torch.Tensor | None = None
    for start, per_row in parts:
        h, m, _ = per_row.shape
        if out is None:
            out = torch.zeros((h, r, cols_bins), dtype=torch.float32, device=per_row.device)
            row_bin = row_bin.to(per_row.device)
        if equal:
            _max_rows_into(out, per_row, start - rows[0], height // r)
            continue
        index = row_bin[start - rows[0] : start - rows[0] + m, None].expand(h, m, cols_bins)
        out.scatter_reduce_(1, index, per_row, reduce, include_self=include)
    assert out is not None
    return out


def _max_rows_into(out: torch.Tensor, per_row: torch.Tensor, offset: int, tall: int) -> None:
    """Row bins of ``tall`` rows each: fold rows ``offset : offset + m`` of ``per_row`` ``[h, m, c]`` into
    ``out`` ``[h, r, c]`` by maximum (weights are at least 0: the zeros ``out`` starts with change none)."""
    m = per_row.shape[1]
    at = 0
    while at < m:
        row = offset + at
        if row % tall == 0 and m - at >= tall:  # whole bins from here
            count = (m - at) // tall
            first = row // tall
            part = per_row[:, at : at + count * tall].reshape(per_row.shape[0], count, tall, -1).amax(2)
            torch.maximum(out[:, first : first + count], part, out=out[:, first : first + count])
            at += count * tall
            continue
        take = min(m - at, tall - row % tall)  # the rest of a bin this chunk starts or ends inside
        part = per_row[:, at : at + take].amax(1)
        torch.maximum(out[:, row // tall], part, out=out[:, row // tall])
        at += take


def _mean_of_sums(out: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Bin sums ``[h, r, c]`` divided by their cell counts, as float32 numpy."""
    height, width = rows[1] - rows[0], cols[1] - cols[0]
    r, c = out.shape[-2:]
    row_counts = torch.diff(torch.from_numpy(bin_edges(height, r))).to(out.device, torch.float32)
    col_counts = torch.diff(torch.from_numpy(bin_edges(width, c))).to(out.device, torch.float32)
    return (out / (row_counts[:, None] * col_counts[None, :])).cpu().numpy()


def _pool(
    chunks: Iterator[tuple[int, torch.Tensor]],
    rows: tuple[int, int],
    cols: tuple[int, int],
    size: int,
    pool: str,
) -> np.ndarray:
    """Pool row chunks ``(row_start, [h, m, d - c])`` covering rows ``a:b`` into float32 ``[h, r, c]`` by the
    bins of ``bin_edges`` (exact copies where a side fits ``size``)."""
    height, width = rows[1] - rows[0], cols[1] - cols[0]
    r, c = min(size, height), min(size, width)
    edges = bin_edges(width, c)
    parts = ((start, w if c == width else _pool_columns(w, edges, pool)) for start, w in chunks)
    out = _pool_rows(parts, rows, r, c, pool)
    return _mean_of_sums(out, rows, cols) if pool == "mean" else out.cpu().numpy()


def pool_normalised(
    parts: Iterator[tuple[int, torch.Tensor, torch.Tensor | None, int]],
    rows: tuple[int, int],
    cols: tuple[int, int],
    size: int,
    pool: str,
) -> np.ndarray:
    """``_pool`` for weights given as ``(row_start, e, z, c0)`` (``attention.captured.normalised``: weights
    ``e / z`` on columns ``c0 : c0 + e.shape[-1]``, 0 elsewhere): only the columns a chunk's rows see are
    pooled, and each row is divided by ``z`` once its bins are pooled (a maximum of ``e / z`` is the
    maximum of ``e`` over ``z``). Float32 ``[h, r, c]``."""
    height, width = rows[1] - rows[0], cols[1] - cols[0]
    r, c = min(size, height), min(size, width)
    edges = cols[0] + bin_edges(width, c)

    def per_row(start: int, e: torch.Tensor, z: torch.Tensor | None, c0: int) -> tuple[int, torch.Tensor]:
        h, m, seen = e.shape
        out = torch.zeros((h, m, c), dtype=torch.float32, device=e.device)
        if z is None or seen == 0:
            return start, out
        if c == width:  # one column a bin: the weights themselves
            out[:, :, c0 - cols[0] : c0 - cols[0] + seen] = e.div_(z[..., None])
            return start, out
        j0 = int(np.searchsorted(edges, c0, side="right")) - 1  # the bins the seen columns fall in
        j1 = int(np.searchsorted(edges, c0 + seen, side="left"))
        left, right = c0 - int(edges[j0]), int(edges[j1]) - (c0 + seen)
        padded = torch.nn.functional.pad(e, (left, right)) if left or right else e
        out[:, :, j0:j1] = _pool_columns(padded, edges[j0 : j1 + 1], pool).div_(z[..., None])
        return start, out

    pooled = _pool_rows((per_row(*part) for part in parts), rows, r, c, pool)
    return _mean_of_sums(pooled, rows, cols) if pool == "mean" else pooled.cpu().numpy()


def aligned_edges(n: int, width: int) -> np.ndarray:
    """int64 edges of bins of ``width`` items aligned at 0 over ``n`` items (the last bin holds the rest)."""
    return np.minimum(np.arange(-(-n // width) + 1, dtype=np.int64) * width, n)


def max_pool_aligned(
    parts: Iterator[tuple[int, torch.Tensor, int]], n: int, width: int, log_space: bool = False
) -> np.ndarray:
    """The whole ``n × n`` matrices of ``parts`` max-pooled into bins of ``width`` rows and columns aligned at
    0 (``aligned_edges``): float32 ``[h, ⌈n/w⌉, ⌈n/w⌉]``. Parts are ``(row_start, v, c0)`` over every row,
    ``v`` ``[h, m, seen]`` the weights of columns ``c0 : c0 + seen`` (0 elsewhere) or, with ``log_space``,
    their logarithms (``-inf`` elsewhere; exp is increasing, so only the bins' maxima are exponentiated).
    A bin's value is the largest weight in it, as a direct pass over its cells gives; a tile whose bins are
    unions of these bins is cut from it (``service.cut_max_picture``). Rows are folded first, a whole bin of
    rows at a time (an elementwise maximum of rows), then the columns of what is left."""
    bins = -(-n // width)
    empty = float("-inf") if log_space else 0.0
    out: torch.Tensor | None = None
    for start, v, c0 in parts:
        h, m, seen = v.shape
        if out is None:
            out = torch.full((h, bins, bins), empty, dtype=torch.float32, device=v.device)
        if seen == 0:
            continue
        at = 0
        while at < m:
            row = start + at
            if row % width == 0 and m - at >= width:  # whole bins of rows from here
                count = (m - at) // width
                take = count * width
                rows = v[:, at : at + take].reshape(h, count, width, seen).amax(2)
            else:  # the rest of a bin this chunk starts or ends inside
                count, take = 1, min(m - at, width - row % width)
                rows = v[:, at : at + take].amax(1, keepdim=True)
            target = out[:, row // width : row // width + count]
            torch.maximum(target, _fold_columns(rows, c0, width, bins, empty), out=target)
            at += take
    assert out is not None
    return (out.exp_() if log_space else out).cpu().numpy()


def _fold_columns(rows: torch.Tensor, c0: int, width: int, bins: int, empty: float) -> torch.Tensor:
    """``[h, g, seen]`` values of columns ``c0 : c0 + seen`` → ``[h, g, bins]``: each column bin's maximum
    (``empty`` for bins no column reaches)."""
    h, g, seen = rows.shape
    out = torch.full((h, g, bins), empty, dtype=torch.float32, device=rows.device)
    j0, stop = c0 // width, c0 + seen
    lead = min(stop, (j0 + 1) * width) - c0  # the seen columns of the first bin
    out[:, :, j0] = rows[:, :, :lead].amax(-1)
    whole = (stop - (c0 + lead)) // width  # whole bins after it: one view
    if whole:
        out[:, :, j0 + 1 : j0 + 1 + whole] = (
            rows[:, :, lead : lead + whole * width].reshape(h, g, whole, width).amax(-1)
        )
    if (tail := lead + whole * width) < seen:
        out[:, :, j0 + 1 + whole] = rows[:, :, tail:].amax(-1)
    return out


class AttentionStore:
    """Attention weights of one text: ``layers × heads`` matrices of ``n × n`` (rows are queries, columns
    keys, rows sum to 1). Subclasses provide ``_chunks``; results are float32 numpy arrays on the CPU.

    ``layer``/``head`` arguments take an index, or None to average over that axis: ``(l, None)`` is the
    mean over the heads of layer ``l``, ``(None, None)`` the mean of the whole model, ``(None, h)`` the mean
    over layers of head ``h``.
    """

    mode = "dense"  # "captured" | "dense"
    captured: list | None = None  # recorded queries and keys per layer (captured.LayerQK), when kept
    layers: int
    heads: int
    n: int

    # -- what subclasses provide ----------------------------------------------------------------------------
    def _chunks(
        self, layer: int, heads: Sequence[int], rows: tuple[int, int], cols: tuple[int, int]
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(row_start, weights)`` with weights float32 ``[len(heads), chunk, d - c]`` covering rows
        ``a:b`` in order, on any device, each chunk within ``CHUNK_ELEMENTS`` where possible."""
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """Bytes this store holds (host and device)."""
        raise NotImplementedError

    @property
    def device_bytes(self) -> int:
        """Bytes this store holds on an accelerator (0 on the CPU)."""
        return 0

    # -- shared ------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.layers, self.heads, self.n, self.n)

    @property
    def dense_nbytes(self) -> int:
        """Bytes a dense float32 copy of every head would take."""
        return 4 * self.layers * self.heads * self.n * self.n

    def check_layer(self, layer: int | None, side: str | None = None) -> None:
        """InputError naming the valid range when ``layer`` is out of range (None passes); ``side`` names
        which analysis it is about ("A", "B", "this analysis") where a request involves several."""
        _check_index("Layer", layer, self.layers, side)

    def check_head(self, head: int | None, side: str | None = None) -> None:
        """Like ``check_layer``, for a head."""
        _check_index("Head", head, self.heads, side)

    def _selection(self, layer: int | None, head: int | None) -> list[tuple[int, list[int]]]:
        """(layer, heads) pairs whose weights are averaged for ``(layer, head)``."""
        self.check_layer(layer)
        self.check_head(head)
        layers = range(self.layers) if layer is None else [layer]
        heads = list(range(self.heads)) if head is None else [head]
        return [(lay, heads) for lay in layers]

    def _mean_chunks(
        self, layer: int | None, head: int | None, rows: tuple[int, int], cols: tuple[int, int]
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Like ``_chunks`` for the averaged selection ``(layer, head)``: ``[chunk, d - c]`` per chunk."""
        selection = self._selection(layer, head)
        count = sum(len(h) for _, h in selection)
        if len(selection) == 1:
            lay, heads = selection[0]
            for start, w in self._chunks(lay, heads, rows, cols):
                yield start, w.sum(0) / count if count > 1 else w[0]
            return
        # several layers: walk the rows in the chunks of the first, adding the others' rows
        a, b = rows
        step = max(1, CHUNK_ELEMENTS // max(1, (cols[1] - cols[0]) * self.heads))
        for start in range(a, b, step):
            stop = min(b, start + step)
            total = None
            for lay, heads in selection:
                part = torch.cat([w.sum(0) for _, w in self._chunks(lay, heads, (start, stop), cols)])
                total = part if total is None else total + part.to(total.device)
            yield start, total / count

    def block(
        self,
        layer: int | None,
        head: int | None,
        rows: tuple[int, int] | None = None,
        cols: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Exact weights of rows ``a:b`` and columns ``c:d``: float32 ``[b - a, d - c]``."""
        rows = check_range(rows or (0, self.n), self.n, "rows")
        cols = check_range(cols or (0, self.n), self.n, "cols")
        check_dense(1, rows[1] - rows[0], cols[1] - cols[0])
        out = np.empty((rows[1] - rows[0], cols[1] - cols[0]), dtype=np.float32)
        for start, w in self._mean_chunks(layer, head, rows, cols):
            out[start - rows[0] : start - rows[0] + w.shape[0]] = w.cpu().numpy()
        return out

    def pooled(
        self,
        layer: int | None,
        head: int | None,
        rows: tuple[int, int] | None = None,
        cols: tuple[int, int] | None = None,
        size: int = 512,
        pool: str = "mean",
    ) -> np.ndarray:
        """A picture of rows ``a:b``, columns ``c:d`` at most ``size × size``: float32 ``[r, c]`` with
        ``r = min(size, b - a)``, ``c = min(size, d - c)``. Exact when the block fits; otherwise cell
        ``(i, j)`` is the mean or max over rows ``a + ⌊i(b−a)/r⌋ … a + ⌊(i+1)(b−a)/r⌋`` and the matching
        columns."""
        rows, cols = self._picture_ranges(rows, cols, size, pool)
        chunks = ((start, w[None]) for start, w in self._mean_chunks(layer, head, rows, cols))
        return _pool(chunks, rows, cols, size, pool)[0]

    def pooled_heads(
        self,
        layer: int,
        rows: tuple[int, int] | None = None,
        cols: tuple[int, int] | None = None,
        size: int = 64,
        pool: str = "mean",
    ) -> np.ndarray:
        """``pooled`` for every head of ``layer`` in one pass over its rows: float32 ``[heads, r, c]``."""
        self.check_layer(layer)
        rows, cols = self._picture_ranges(rows, cols, size, pool)
        return _pool(self._chunks(layer, list(range(self.heads)), rows, cols), rows, cols, size, pool)

    def max_picture(self, layer: int, head: int, width: int) -> np.ndarray:
        """Head ``head`` of ``layer`` over every row and column, max-pooled in bins of ``width`` cells
        aligned at 0 (``max_pool_aligned``): float32 ``[⌈n/w⌉, ⌈n/w⌉]``."""
        self.check_layer(layer)
        self.check_head(head)
        parts = ((start, w, 0) for start, w in self._chunks(layer, [head], (0, self.n), (0, self.n)))
        return max_pool_aligned(parts, self.n, width)[0]

    def has_quick_picture(self, layer: int) -> bool:
        """Whether ``quick_max_picture`` draws ``layer``'s heads (the forward pass kept its log-sum-exp)."""
        return False

    def quick_max_picture(self, layer: int, head: int, width: int) -> np.ndarray | None:
        """``max_picture`` from the forward pass's per-row log-sum-exp where it was kept (the bins' largest
        scores alone are exponentiated: about half the work, values within a few 1e-7 of the softmax's),
        else None."""
        return None

    def _picture_ranges(self, rows, cols, size: int, pool: str) -> tuple[tuple[int, int], tuple[int, int]]:
        if pool not in POOLS:
            raise ValueError(POOL_ERROR.format(pools=", ".join(POOLS), pool=pool))
        if size < 1:
            raise ValueError(SIZE_ERROR.format(size=size))
        return check_range(rows or (0, self.n), self.n, "rows"), check_range(
            cols or (0, self.n), self.n, "cols"
        )

    def head_rows(self, layer: int, rows: tuple[int, int]) -> Iterator[tuple[int, np.ndarray]]:
        """Every head's weights of rows ``a:b`` of ``layer`` over all keys, a bounded chunk at a time:
        yields ``(row_start, float32 [heads, chunk, n])``."""
        self.check_layer(layer)
        rows = check_range(rows, self.n, "rows")
        for start, w in self._chunks(layer, list(range(self.heads)), rows, (0, self.n)):
            yield start, w.cpu().numpy()

    def dense(self, max_bytes: int = DENSE_MAX_BYTES) -> np.ndarray:
        """Every head, float32 ``[layers, heads, n, n]``; DenseTooLarge above ``max_bytes``."""
        check_dense(self.layers * self.heads, self.n, self.n, max_bytes)
        out = np.empty(self.shape, dtype=np.float32)
        for layer in range(self.layers):
            for start, w in self.head_rows(layer, (0, self.n)):
                out[layer, :, start : start + w.shape[1]] = w
        return out

    def layer_array(self, layer: int) -> np.ndarray:
        """Every head of ``layer``: float32 ``[heads, n, n]`` (DenseTooLarge above ``DENSE_MAX_BYTES``)."""
        self.check_layer(layer)
        check_dense(self.heads, self.n, self.n)
        out = np.empty((self.heads, self.n, self.n), dtype=np.float32)
        for start, w in self.head_rows(layer, (0, self.n)):
            out[:, start : start + w.shape[1]] = w
        return out

    def layer_dense(self, layer: int | None, head: int | None = None) -> np.ndarray:
        """One matrix, float32 ``[n, n]``: a head, or a mean (see the class docstring)."""
        return self.block(layer, head)


class DenseStore(AttentionStore):
    """Attention held as a float32 ``[layers, heads, n, n]`` array (saved files, dense-mode models)."""

    mode = "dense"

    def __init__(self, attentions: np.ndarray, captured: list | None = None):
        """``captured``: the layers' recorded queries and keys (``captured.LayerQK``) when the weights came
        from them, kept for the views that read the vectors; None for saved files and eager runs."""
        from visualizeai.analysis import _checks

        self.array = _checks.attention(attentions, "attentions")
        self.layers, self.heads, self.n, _ = self.array.shape
        self.captured = captured

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes) + sum(layer.nbytes for layer in self.captured or ())

    def _chunks(self, layer, heads, rows, cols):
        a, b = rows
        c, d = cols
        step = max(1, CHUNK_ELEMENTS // max(1, len(heads) * (d - c)))
        selected = self.array[layer] if len(heads) == self.heads else self.array[layer, heads]
        for start in range(a, b, step):
            stop = min(b, start + step)
            yield start, torch.from_numpy(np.ascontiguousarray(selected[:, start:stop, c:d]))

    def dense(self, max_bytes: int = DENSE_MAX_BYTES) -> np.ndarray:
        return self.array  # held already: handing it out costs nothing

    def layer_array(self, layer: int) -> np.ndarray:
        self.check_layer(layer)
        return self.array[layer]
