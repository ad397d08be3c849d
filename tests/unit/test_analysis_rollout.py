"""Attention rollout and attention flow (Abnar & Zuidema 2020)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from attention_strategies import attention
from hypothesis import given, settings
from hypothesis import strategies as st

import visualizeai.analysis.rollout as rollout_module
from visualizeai.analysis.rollout import (
    FLOW_MAX_TOKENS,
    FlowTooLarge,
    attention_flow,
    attention_flow_per_layer,
    attention_rollout,
    max_flow,
    residual_attention,
)
from visualizeai.errors import InputError


def rollout_by_the_formula(attn: np.ndarray) -> np.ndarray:
    """The paper's recipe written as plainly as possible, one layer and one cell at a time."""
    layers, heads, n, _ = attn.shape
    out = []
    product = None
    for layer in range(layers):
        a = np.zeros((n, n))
        for head in range(heads):
            a += attn[layer, head].astype(np.float64) / heads
        a = 0.5 * a + 0.5 * np.eye(n)
        for i in range(n):
            a[i] /= a[i].sum()
        product = a if product is None else a @ product
        out.append(product)
    return np.array(out)


@given(attention())
def test_rollout_matches_the_formula(attn):
    np.testing.assert_allclose(attention_rollout(attn), rollout_by_the_formula(attn), rtol=1e-5, atol=1e-6)


@given(attention())
def test_rollout_rows_sum_to_one(attn):
    result = attention_rollout(attn)
    assert result.dtype == np.float32 and result.shape == (attn.shape[0],) + attn.shape[2:]
    np.testing.assert_allclose(result.sum(axis=-1), 1.0, atol=1e-5)


def test_rollout_of_identity_attention_is_identity():
    attn = np.broadcast_to(np.eye(5, dtype=np.float32), (4, 3, 5, 5))
    np.testing.assert_array_equal(attention_rollout(attn), np.broadcast_to(np.eye(5), (4, 5, 5)))


def test_rollout_of_uniform_attention():
    n = 4
    attn = np.full((1, 2, n, n), 1 / n, dtype=np.float32)
    np.testing.assert_allclose(attention_rollout(attn)[0], 0.5 * np.eye(n) + 0.5 / n, rtol=1e-6)


# -- attention flow ----------------------------------------------------------------------------------------


def min_cut_by_brute_force(capacity: np.ndarray, source: int, sink: int) -> float:
    """Smallest cut over every split of the inner nodes: max flow = min cut, checked independently."""
    layers, n, _ = capacity.shape
    inner = [(k, t) for k in range(1, layers) for t in range(n)]
    best = np.inf
    for choice in itertools.product([False, True], repeat=len(inner)):
        on_source_side = {node for node, side in zip(inner, choice, strict=True) if side}
        on_source_side.add((layers, source))
        cut = sum(
            capacity[layer, a, b]
            for layer in range(layers)
            for a in range(n)
            for b in range(n)
            if (layer + 1, a) in on_source_side
            and (layer, b) not in on_source_side
            and (layer + 1 < layers or a == source)  # only the source leaves the top layer
            and (layer > 0 or b == sink)  # only the sink is entered in the bottom layer
        )
        best = min(best, cut)
    return best


@settings(deadline=None, max_examples=60)
@given(attention(max_layers=3, max_heads=2, max_n=3), st.data())
def test_max_flow_equals_min_cut_and_respects_capacities(attn, data):
    capacity = residual_attention(attn).astype(np.float64)
    layers, n, _ = capacity.shape
    source = data.draw(st.integers(0, n - 1))
    sink = data.draw(st.integers(0, n - 1))
    value, flow = max_flow(capacity, source, sink)
    assert value == pytest.approx(min_cut_by_brute_force(capacity, source, sink), abs=1e-7)
    assert (flow >= 0).all() and (flow <= capacity + 1e-12).all()
    # conservation: what enters an inner node leaves it
    for k in range(1, layers):
        inflow = flow[k].sum(axis=0)  # edges (k + 1, a) -> (k, b), summed over a
        outflow = flow[k - 1].sum(axis=1)  # edges (k, a) -> (k - 1, b), summed over b
        np.testing.assert_allclose(inflow, outflow, atol=1e-8)
    assert flow[-1].sum() == pytest.approx(value) and flow[0][:, sink].sum() == pytest.approx(value)


def test_max_flow_pushes_back_when_the_first_paths_block():
    # source -> (2, 0) -> (1, 0) -> sink is found first and blocks (2, 1); the maximum (2) needs the
    # search to push that flow back up from (1, 0) and send it through (1, 1) instead
    capacity = np.zeros((3, 2, 2))
    capacity[2, 0] = [1.0, 1.0]  # source (3, 0) -> (2, 0), (2, 1)
    capacity[1] = [[1.0, 1.0], [1.0, 0.0]]  # (2, a) -> (1, b)
    capacity[0, :, 0] = [1.0, 1.0]  # (1, 0), (1, 1) -> sink (0, 0)
    value, flow = max_flow(capacity, 0, 0)
    assert value == pytest.approx(2.0)
    np.testing.assert_allclose(flow[1], [[0.0, 1.0], [1.0, 0.0]])


@st.composite
def sparse_capacities(draw):
    layers, n = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    values = draw(
        st.lists(
            st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 0.3]), min_size=layers * n * n, max_size=layers * n * n
        )
    )
    return np.array(values).reshape(layers, n, n), draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))


@settings(deadline=None, max_examples=150)
@given(sparse_capacities())
def test_max_flow_on_sparse_graphs_equals_min_cut(case):
    capacity, source, sink = case
    value, flow = max_flow(capacity, source, sink)
    assert value == pytest.approx(min_cut_by_brute_force(capacity, source, sink), abs=1e-9)
    assert (flow >= 0).all() and (flow <= capacity + 1e-12).all()


@settings(deadline=None, max_examples=40)
@given(attention(max_layers=4, max_heads=2, max_n=6))
def test_flow_is_at_most_one_and_at_most_the_edges_into_the_input(attn):
    flow = attention_flow(attn)
    capacity = residual_attention(attn)
    n = attn.shape[-1]
    assert flow.dtype == np.float32 and flow.shape == (n, n)
    assert (flow >= 0).all() and (flow <= 1 + 1e-6).all()
    into_input = capacity[0].sum(axis=0)  # each input token can receive no more than its edges hold
    assert (flow <= into_input[None, :] + 1e-6).all()


def test_flow_through_one_layer_is_the_edge_itself():
    attn = np.random.default_rng(0).dirichlet(np.ones(4), size=(1, 2, 4)).astype(np.float32)
    np.testing.assert_allclose(attention_flow(attn), residual_attention(attn)[0], atol=1e-6)


def test_flow_through_two_layers_has_a_closed_form():
    # with two layers, the paths source -> k -> sink share no edge: flow = sum_k min(A'_1[s, k], A'_0[k, t])
    attn = np.random.default_rng(1).dirichlet(np.ones(5) * 0.3, size=(2, 3, 5)).astype(np.float32)
    a0, a1 = residual_attention(attn).astype(np.float64)
    expected = np.minimum(a1[:, :, None], a0[None, :, :]).sum(axis=1)
    np.testing.assert_allclose(attention_flow(attn), expected, atol=1e-6)


def test_flow_of_causal_attention_never_reaches_later_tokens():
    rng = np.random.default_rng(2)
    attn = np.tril(rng.random((3, 2, 6, 6)))
    attn /= attn.sum(axis=-1, keepdims=True)
    flow = attention_flow(attn)
    np.testing.assert_array_equal(np.triu(flow, k=1), 0.0)
    assert (np.diag(flow) > 0).all()


def test_flow_sources_layers_and_per_layer_agree():
    attn = np.random.default_rng(3).dirichlet(np.ones(5), size=(3, 2, 5)).astype(np.float32)
    full = attention_flow(attn)
    np.testing.assert_array_equal(attention_flow(attn, sources=[4, 1]), full[[4, 1]])
    per_layer = attention_flow_per_layer(attn, sources=[0])
    assert per_layer.shape == (3, 1, 5)
    np.testing.assert_array_equal(per_layer[-1], full[[0]])
    np.testing.assert_array_equal(per_layer[0], attention_flow(attn, [0], layer=0))


def test_flow_argument_errors():
    attn = np.full((2, 1, 3, 3), 1 / 3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"source token 3 is out of range: there are tokens 0\.\.2"):
        attention_flow(attn, sources=[3])
    with pytest.raises(ValueError, match=r"layer 2 is out of range"):
        attention_flow(attn, layer=2)


def test_max_flow_argument_errors():
    with pytest.raises(ValueError, match=r"capacity must have shape \[layers, n, n\]"):
        max_flow(np.ones((2, 2)), 0, 0)
    with pytest.raises(ValueError, match=r"sink 2 is out of range"):
        max_flow(np.ones((1, 2, 2)), 0, 2)


def test_flow_refuses_long_texts_in_plain_words():
    n = FLOW_MAX_TOKENS + 1
    attn = np.full((12, 1, n, n), 1 / n, dtype=np.float32)
    expected = rf"{n} tokens through 12 layers.*about {FLOW_MAX_TOKENS} tokens"
    with pytest.raises(FlowTooLarge, match=expected) as info:
        attention_flow(attn)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InputError)
    assert "rollout" in str(info.value)


def test_flow_budget_counts_sources_and_layers(monkeypatch):
    calls = []
    monkeypatch.setattr(rollout_module, "max_flow", lambda *args: calls.append(args) or (0.0, None))
    n = FLOW_MAX_TOKENS
    attn = np.full((12, 1, n, n), 1 / n, dtype=np.float32)
    attention_flow(attn)  # exactly at the budget: allowed
    assert len(calls) == n * n
    with pytest.raises(FlowTooLarge):
        attention_flow(np.full((13, 1, n, n), 1 / n, dtype=np.float32))  # one layer more
    with pytest.raises(FlowTooLarge):
        attention_flow_per_layer(attn)  # 1 + 2 + ... + 12 layers of work
    long = int(FLOW_MAX_TOKENS ** (4 / 3))  # one source: n^3 <= FLOW_MAX_TOKENS^4
    attention_flow(np.full((12, 1, long, long), 1 / long, dtype=np.float32), sources=[0])  # one source: fine
