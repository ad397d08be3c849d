"""The attention store on synthetic queries and keys: recomputation equals the eager formula, and every read
(block, pooled picture, means, row chunks, dense) agrees between the captured and the dense implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visualizeai.attention import store as store_module
from visualizeai.attention.captured import CapturedStore, CaptureUnsupported, LayerQK, mask_intervals
from visualizeai.attention.store import DenseStore, DenseTooLarge, aligned_edges, bin_edges
from visualizeai.errors import InputError

N, HEADS, KV_HEADS, DIM = 37, 4, 2, 8


def eager(q, k, scaling, allowed, softcap=None, sinks=None) -> np.ndarray:
    """The eager formula in float64 numpy: softmax(q·kᵀ·scale (soft-capped) + mask), GQA by repetition."""
    q = q.double().numpy()
    k = np.repeat(k.double().numpy(), q.shape[0] // k.shape[0], axis=0)
    s = np.einsum("hqd,hkd->hqk", q, k) * scaling
    if softcap is not None:
        s = np.tanh(s / softcap) * softcap
    s = np.where(allowed[None], s, -np.inf)
    if sinks is not None:
        s = np.concatenate([s, np.broadcast_to(sinks.double().numpy()[:, None, None], (*s.shape[:2], 1))], -1)
    s = s - s.max(-1, keepdims=True)
    w = np.exp(s)
    w = w / w.sum(-1, keepdims=True)
    return (w[..., :-1] if sinks is not None else w).astype(np.float32)


def make_layer(seed, allowed, softcap=None, sinks=None, scale=3.0) -> tuple[LayerQK, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, HEADS, N, DIM, generator=g) * scale
    k = torch.randn(1, KV_HEADS, N, DIM, generator=g)
    lo, hi = mask_intervals(torch.from_numpy(allowed)[None, None], N, N, causal=False)
    layer = LayerQK(q, k, lo, hi, DIM**-0.5, softcap, sinks)
    return layer, eager(q[0], k[0], DIM**-0.5, allowed, softcap, sinks)


def causal(window: int | None = None) -> np.ndarray:
    i, j = np.indices((N, N))
    allowed = j <= i
    return allowed & (i - j < window) if window else allowed


MASKS = {
    "bidirectional": np.ones((N, N), dtype=bool),
    "causal": causal(),
    "sliding window 5": causal(5),
    "right padding": np.ones((N, N), dtype=bool) & (np.arange(N) < N - 6)[None, :],
}


@pytest.fixture(params=list(MASKS))
def pair(request):
    """A captured store of two layers and the dense store of the same weights computed independently."""
    allowed = MASKS[request.param]
    layers, dense = zip(
        *(make_layer(1, allowed), make_layer(2, allowed, softcap=4.0, sinks=torch.tensor([0.5, 1, 2, 3.0]))),
        strict=True,
    )
    return CapturedStore(list(layers)), DenseStore(np.stack(dense))


def test_recomputation_equals_eager_formula(pair):
    captured, dense = pair
    np.testing.assert_allclose(captured.dense(), dense.array, atol=1e-6, rtol=0)
    rows = dense.array.sum(-1)
    assert np.all((np.abs(rows - 1) < 1e-5) | (rows < 1))  # < 1 only where sinks take a share


def test_softcap_and_sinks_change_the_weights():
    base, _ = make_layer(3, causal())
    capped, _ = make_layer(3, causal(), softcap=2.0)
    sunk, _ = make_layer(3, causal(), sinks=torch.full((HEADS,), 5.0))
    plain = CapturedStore([base]).dense()
    assert np.abs(CapturedStore([capped]).dense() - plain).max() > 0.05
    assert CapturedStore([sunk]).dense().sum(-1).mean() < 0.9  # the sink takes a share of every row


def test_sliding_window_zeroes_far_keys():
    layer, _ = make_layer(4, causal(5))
    weights = CapturedStore([layer]).dense()[0]
    i, j = np.indices((N, N))
    assert np.all(weights[:, (i - j >= 5) | (j > i)] == 0)
    assert np.all(weights[:, (i - j < 5) & (j <= i)] > 0)


@pytest.mark.parametrize("chunk", [7, 10**6])
def test_every_read_agrees_between_captured_and_dense(pair, monkeypatch, chunk):
    monkeypatch.setattr(store_module, "CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr("visualizeai.attention.captured.CHUNK_ELEMENTS", chunk)
    captured, dense = pair
    for layer, head in [(1, 2), (0, None), (None, None), (None, 3)]:
        for rows, cols in [((0, N), (0, N)), ((5, 30), (2, 19)), ((36, 37), (0, 37))]:
            np.testing.assert_allclose(
                captured.block(layer, head, rows, cols), dense.block(layer, head, rows, cols), atol=1e-6
            )
            for pool in ("mean", "max"):
                np.testing.assert_allclose(
                    captured.pooled(layer, head, rows, cols, size=6, pool=pool),
                    dense.pooled(layer, head, rows, cols, size=6, pool=pool),
                    atol=1e-6,
                )
    chunks = list(captured.head_rows(1, (3, 29)))
    assert chunks[0][0] == 3 and sum(c.shape[1] for _, c in chunks) == 26
    np.testing.assert_allclose(np.concatenate([c for _, c in chunks], 1), dense.array[1, :, 3:29], atol=1e-6)


def test_pooled_follows_the_documented_bins(pair):
    _, dense = pair
    a, b, c, d, size = 3, 37, 1, 30, 5
    matrix = dense.array[1, 2]
    rows, cols = bin_edges(b - a, size) + a, bin_edges(d - c, size) + c
    for pool, reduce in (("mean", np.mean), ("max", np.max)):
        expected = [
            [reduce(matrix[rows[i] : rows[i + 1], cols[j] : cols[j + 1]]) for j in range(size)]
            for i in range(size)
        ]
        got = dense.pooled(1, 2, (a, b), (c, d), size=size, pool=pool)
        assert got.shape == (5, 5)
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_pooled_is_exact_when_the_block_fits(pair):
    captured, dense = pair
    got = captured.pooled(0, 1, (4, 20), (0, 9), size=16)
    assert got.shape == (16, 9)
    np.testing.assert_allclose(got, dense.array[0, 1, 4:20, 0:9], atol=1e-6)


def test_bins_follow_the_floor_rule():
    assert bin_edges(10, 3).tolist() == [0, 3, 6, 10]
    assert bin_edges(4, 4).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.block(2, 0), InputError, "layers 0–1"),
        (lambda s: s.block(0, 4), InputError, "heads 0–3"),
        (lambda s: s.block(0, 0, (5, 5)), ValueError, "rows 5:5"),
        (lambda s: s.block(0, 0, None, (0, N + 1)), ValueError, "cols 0:38"),
        (lambda s: s.pooled(0, 0, size=0), ValueError, "size must be at least 1"),
        (lambda s: s.pooled(0, 0, pool="median"), ValueError, "pool must be one of mean, max"),
        (lambda s: s.dense(max_bytes=100), DenseTooLarge, "8 × 37 × 37 float32"),
    ],
)
def test_bad_reads_say_what_is_wrong(pair, call, error, message):
    captured, _ = pair
    with pytest.raises(error, match=message):
        call(captured)


def test_captured_store_keeps_nothing_quadratic():
    n = 4096
    q = torch.zeros(1, HEADS, n, DIM)
    k = torch.zeros(1, KV_HEADS, n, DIM)
    lo, hi = mask_intervals(None, n, n, causal=True)
    store = CapturedStore([LayerQK(q, k, lo, hi, 1.0)])
    assert store.nbytes == (HEADS + KV_HEADS) * n * DIM * 4 + 2 * n * 8
    assert store.nbytes * 50 < store.dense_nbytes
    # a causal row of zeros is uniform over the keys it may see
    np.testing.assert_allclose(store.block(0, 0, (9, 10), (0, 12)), [[0.1] * 10 + [0, 0]], atol=1e-7)


def test_mask_intervals_read_boolean_and_additive_masks():
    allowed = torch.from_numpy(causal(4))
    lo, hi = mask_intervals(allowed[None, None], N, N, causal=False)
    assert lo[0, 10].item() == 7 and hi[0, 10].item() == 11
    additive = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[None, None]
    lo2, hi2 = mask_intervals(additive, N, N, causal=False)
    assert torch.equal(lo, lo2) and torch.equal(hi, hi2)
    lo3, hi3 = mask_intervals(None, N, N, causal=True)
    assert lo3[0].tolist() == [0] * N and hi3[0].tolist() == list(range(1, N + 1))


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (torch.tensor([[[[True, False, True]] * 3]]), "not one interval"),
        (torch.tensor([[[[0.0, -1.5, 0.0]] * 3]]), "additive attention bias"),
        (torch.ones(1, 2, 3, 3, dtype=torch.bool), "per-head masks"),
    ],
)
def test_masks_that_are_not_intervals_are_refused(mask, message):
    with pytest.raises(CaptureUnsupported, match=message):
        mask_intervals(mask, 3, 3, causal=False)


def test_a_block_after_a_whole_pass_reads_only_its_own_columns(pair, monkeypatch):
    """The normalisers a pass over whole rows computes are kept: a later block recomputes only its cells."""
    from visualizeai.attention import captured as captured_module

    captured, dense = pair
    spans = []
    scores = captured_module._scores

    def recording(layer, head_index, rows, keys, *rest):
        spans.append(keys)
        return scores(layer, head_index, rows, keys, *rest)

    monkeypatch.setattr(captured_module, "_scores", recording)
    cold = captured.block(1, 2, (20, 30), (18, 22))
    assert spans and all(k1 - k0 > 4 for k0, k1 in spans)  # the rows' every key, for their normalisers
    spans.clear()
    captured.pooled(1, 2, size=8, pool="max")  # one pass over every row of the head
    spans.clear()
    warm = captured.block(1, 2, (20, 30), (18, 22))
    assert spans and all(18 <= k0 and k1 <= 22 for k0, k1 in spans)
    np.testing.assert_allclose(warm, dense.array[1, 2, 20:30, 18:22], atol=1e-6)
    np.testing.assert_allclose(warm, cold, atol=1e-7)


def test_normalisers_are_bounded_in_bytes():
    layer, _ = make_layer(5, causal())
    store = CapturedStore([layer])
    assert store.normalisers._held.max_bytes <= max(2**20, store.nbytes // 4)
    store.pooled_heads(0, size=8, pool="max")  # one pass over every row of every head
    assert len(store.normalisers._held) == HEADS and store.normalisers._held.nbytes == HEADS * 8 * N


@pytest.mark.parametrize("chunk", [7, 40, 10**6])
def test_max_pooling_of_equal_row_bins_follows_the_bins_whatever_the_chunks(pair, monkeypatch, chunk):
    """Rows in bins of equal height are folded a bin at a time, chunks starting and ending inside bins."""
    monkeypatch.setattr(store_module, "CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr("visualizeai.attention.captured.CHUNK_ELEMENTS", chunk)
    captured, dense = pair
    a, b, c, d, size = 1, 37, 0, 30, 4  # 36 rows in bins of 9; 30 columns in bins of 7 or 8
    matrix = dense.array[1, 2]
    rows, cols = bin_edges(b - a, size) + a, bin_edges(d - c, size) + c
    expected = [
        [matrix[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].max() for j in range(size)] for i in range(size)
    ]
    for store in (dense, captured):
        np.testing.assert_allclose(
            store.pooled(1, 2, (a, b), (c, d), size=size, pool="max"), expected, atol=1e-6
        )


@pytest.mark.parametrize("chunk", [7, 40, 10**6])
@pytest.mark.parametrize("width", [1, 4, 8, 64])
def test_max_picture_in_aligned_bins(pair, monkeypatch, chunk, width):
    """The whole head in bins of ``width`` aligned at 0, the last bin holding the rest (37 = 9·4 + 1): each
    bin the largest weight in it, from the captured and the dense store, whatever the chunks."""
    monkeypatch.setattr(store_module, "CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr("visualizeai.attention.captured.CHUNK_ELEMENTS", chunk)
    captured, dense = pair
    matrix = dense.array[1, 2]
    edges = aligned_edges(N, width)
    assert edges[0] == 0 and edges[-1] == N and len(edges) == -(-N // width) + 1
    bins = list(zip(edges[:-1], edges[1:], strict=True))
    expected = [[matrix[a:b, c:d].max() for c, d in bins] for a, b in bins]
    for store in (dense, captured):
        np.testing.assert_allclose(store.max_picture(1, 2, width), expected, atol=1e-6, rtol=0)
    with pytest.raises(InputError):
        captured.max_picture(1, HEADS, width)
