"""Query and key vectors of a head, read from captured analyses: the shared query–key space changes no
weight, the map is the principal-component projection, and the neuron view's logits give back the weights."""

from __future__ import annotations

import numpy as np
import pytest

from visualizeai.analysis import vectors
from visualizeai.attention.store import DenseStore
from visualizeai.errors import InputError, TaskUnsupported
from visualizeai.models.catalog import ModelSpec
from visualizeai.models.inference import analyze_text
from visualizeai.models.loading import load_model

pytestmark = pytest.mark.models

TEXT = (
    "The quick brown fox jumps over the lazy dog, and then the dog sleeps while the fox runs far away into "
    "the green forest near the river, where it waits."
)
FAMILIES = {"llama": "causal-lm", "gemma2": "causal-lm", "bert": "masked-lm", "gpt2": "causal-lm"}


@pytest.fixture(scope="module")
def results(tiny_models):
    out = {}
    for family, kind in FAMILIES.items():
        spec = ModelSpec(
            id=str(tiny_models[family]), source="local", location=str(tiny_models[family]), kind=kind
        )
        loaded = load_model(spec, device="cpu")
        out[family] = analyze_text(loaded, " ".join([TEXT] * 3))
        out[family + "-short"] = analyze_text(loaded, "A short text.")
    return out


def softmax_rows(v: vectors.HeadVectors, q: np.ndarray, k: np.ndarray) -> np.ndarray:
    n = len(q)
    logits = (q @ k.T) * v.scaling
    if v.softcap is not None:
        logits = np.tanh(logits / v.softcap) * v.softcap
    j = np.arange(n)[None, :]
    logits = np.where((j >= v.lo[:, None]) & (j < v.hi[:, None]), logits, -np.inf)
    if v.sink is not None:
        logits = np.concatenate([logits, np.full((n, 1), v.sink)], axis=1)
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w = w / w.sum(axis=1, keepdims=True)
    return w[:, :n] if v.sink is not None else w


@pytest.mark.parametrize("family", list(FAMILIES))
def test_shared_space_keeps_every_weight(results, family):
    result = results[family]
    assert result.attention.mode == "captured"
    for layer, head in [(0, 0), (1, 3)]:
        v = vectors.head_vectors(result.attention, layer, head)
        expected = result.attention.layer_dense(layer, head)
        np.testing.assert_allclose(softmax_rows(v, v.queries, v.keys), expected, atol=2e-6)
        q, k, translated = vectors.shared_space(v)
        assert translated == (family != "gemma2")  # soft-capped logits are only scaled
        np.testing.assert_allclose(softmax_rows(v, q, k), expected, atol=2e-6)
        # one space: mean norms equal
        assert np.linalg.norm(q, axis=1).mean() == pytest.approx(np.linalg.norm(k, axis=1).mean(), rel=1e-9)


def test_map_is_the_principal_component_projection(results):
    v = vectors.head_vectors(results["llama"].attention, 1, 2)
    got = vectors.qk_map(v)
    q, k, _ = vectors.shared_space(v)
    points = np.concatenate([q, k])
    centred = points - points.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred, rowvar=False, bias=True))
    top = eigenvectors[:, ::-1][:, :2]
    expected = centred @ top
    coords = np.concatenate([got["queries"], got["keys"]])
    for axis in range(2):  # the same axis up to its sign
        sign = np.sign(coords[:, axis] @ expected[:, axis])
        np.testing.assert_allclose(coords[:, axis], sign * expected[:, axis], atol=1e-4)
    share = eigenvalues[::-1][:2] / eigenvalues.sum()
    np.testing.assert_allclose(got["explained"], share, rtol=1e-6)
    assert list(got["positions"]) == list(range(results["llama"].n))


def test_long_texts_are_sampled_evenly():
    positions = vectors.sample_positions(10_000, 100)
    assert len(positions) == 100 and positions[0] == 0 and positions[-1] == 9_999
    assert np.all(np.diff(positions) > 0)
    with pytest.raises(InputError):
        vectors.sample_positions(10, 1)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_neuron_logits_give_back_the_weights(results, family):
    store = results[family].attention
    n = store.n
    row = n - 1 if family != "bert" else n // 2
    v = vectors.head_vectors(store, 1, 1)
    weights = store.layer_dense(1, 1)[row]
    explained = vectors.neuron(v, row, weights, np.arange(min(n, vectors.NEURON_KEYS)))
    keys = np.arange(min(n, vectors.NEURON_KEYS))
    np.testing.assert_allclose(explained["products"], v.keys[keys] * v.queries[row])
    raw = explained["products"].sum(axis=1) * v.scaling
    if v.softcap is not None:
        raw = np.tanh(raw / v.softcap) * v.softcap
    visible = explained["visible"]
    np.testing.assert_allclose(explained["logits"][visible], raw[visible], rtol=1e-5, atol=1e-5)
    if n <= vectors.NEURON_KEYS and v.sink is None:  # every key the row sees: the softmax is the row
        logits = explained["logits"]
        w = np.exp(logits - logits[visible].max())
        np.testing.assert_allclose(w / w.sum(), explained["weights"], atol=2e-6)
    np.testing.assert_array_equal(explained["weights"], weights[keys])


def test_neuron_rejects_bad_keys(results):
    store = results["llama"].attention
    v = vectors.head_vectors(store, 0, 0)
    weights = store.layer_dense(0, 0)[3]
    for keys in ([], [store.n], [-1], list(range(vectors.NEURON_KEYS + 1))):
        with pytest.raises(InputError):
            vectors.neuron(v, 3, weights, keys)
    with pytest.raises(InputError):
        vectors.neuron(v, store.n, weights, [0])


def test_short_inputs_held_dense_keep_their_vectors(results):
    store = results["llama-short"].attention
    assert store.mode == "dense" and store.captured is not None
    v = vectors.head_vectors(store, 0, 1)
    np.testing.assert_allclose(softmax_rows(v, v.queries, v.keys), store.layer_dense(0, 1), atol=2e-6)


def test_weights_only_analyses_say_why():
    store = DenseStore(np.full((1, 1, 2, 2), 0.5, dtype=np.float32))
    with pytest.raises(TaskUnsupported, match="weights only"):
        vectors.head_vectors(store, 0, 0)
