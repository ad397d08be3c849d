"""Hypothesis strategies for attention tensors: random row-stochastic ``[layers, heads, n, n]`` float32."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@st.composite
def attention(draw, max_layers: int = 3, max_heads: int = 3, min_n: int = 1, max_n: int = 8) -> np.ndarray:
    """Softmax of random logits (flat to peaked), sometimes causal; every row sums to 1."""
    shape = (
        draw(st.integers(1, max_layers)),
        draw(st.integers(1, max_heads)),
        *(2 * [draw(st.integers(min_n, max_n))]),
    )
    logits = draw(hnp.arrays(np.float64, shape, elements=st.floats(-4, 4)))
    logits *= draw(st.sampled_from([0.0, 1.0, 4.0]))  # uniform, soft, peaked
    weights = np.exp(logits)
    if draw(st.booleans()):
        weights = np.tril(weights)  # a causal model: no attention to later tokens
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


@st.composite
def matrix_and_mask(draw, max_n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """One ``[layers, heads, n, n]`` attention tensor and a random bool ``[n]`` mask."""
    attn = draw(attention(max_n=max_n))
    mask = draw(hnp.arrays(np.bool_, attn.shape[-1]))
    return attn, mask
