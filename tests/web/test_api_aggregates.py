"""Rollout, flow, head statistics and comparisons under /api/v1, against the numpy functions on the cached
result; and the rollout and statistics in the .npz of ``visualizeai analyze --out``."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

import visualizeai.derived
from visualizeai import cli
from visualizeai.analysis.compare import align_tokens, aligned_difference
from visualizeai.analysis.head_stats import STAT_DESCRIPTIONS, STAT_NAMES, head_statistics, punctuation_mask
from visualizeai.analysis.rollout import FLOW_MAX_TOKENS, attention_flow, attention_rollout
from visualizeai.config import Settings
from visualizeai.service import Service
from visualizeai.web import create_app

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."
WORDS = ["I", "think", ",", "therefore", "I", "am", "."]


@pytest.fixture(scope="module")
def client(tiny_models):
    root = next(iter(tiny_models.values())).parent
    with TestClient(create_app(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))) as c:
        yield c


def analyze(client, tiny_models, family: str, text: str = TEXT) -> dict:
    response = client.post("/api/v1/analyze", json={"text": text, "model": str(tiny_models[family])})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def meta(client, tiny_models):
    return analyze(client, tiny_models, "bert")


@pytest.fixture(scope="module")
def result(client, meta):
    return client.app.state.service.result(meta["key"])


def matrix_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-dtype"] == "float16"
    shape = tuple(int(d) for d in response.headers["x-shape"].split(","))
    return np.frombuffer(response.content, dtype="<f2").reshape(shape)


def decode(encoded: dict) -> np.ndarray:
    import base64

    assert encoded["dtype"] == "float16"
    return np.frombuffer(base64.b64decode(encoded["data"]), dtype="<f2").reshape(encoded["shape"])


def f16(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).astype(np.float16)


# ---- rollout -----------------------------------------------------------------------------------------------


def test_rollout_of_a_layer_equals_the_numpy_rollout_of_the_cached_result(client, meta, result):
    expected = attention_rollout(result.attentions)
    for layer in range(meta["layers"]):
        got = matrix_of(client.get(f"/api/v1/analyses/{meta['key']}/rollout", params={"layer": layer}))
        np.testing.assert_array_equal(got, f16(expected[layer]))
    whole = matrix_of(client.get(f"/api/v1/analyses/{meta['key']}/rollout"))
    assert whole.shape == (meta["layers"], meta["n"], meta["n"])
    np.testing.assert_array_equal(whole, f16(expected))


def test_rollout_is_computed_once_per_analysis(client, tiny_models, monkeypatch):
    calls = []
    real = visualizeai.derived.attention_rollout
    monkeypatch.setattr(visualizeai.derived, "attention_rollout", lambda a: calls.append(1) or real(a))
    key = analyze(client, tiny_models, "bert", "Computed once, served many times.")["key"]
    for layer in (0, 1, 0, None):
        params = {} if layer is None else {"layer": layer}
        assert client.get(f"/api/v1/analyses/{key}/rollout", params=params).status_code == 200
    assert len(calls) == 1


def test_rollout_errors(client, meta):
    response = client.get(f"/api/v1/analyses/{meta['key']}/rollout", params={"layer": 2})
    assert response.status_code == 400 and "Layer 2 is out of range" in response.json()["detail"]
    assert client.get("/api/v1/analyses/0123abcd/rollout").status_code == 404


# ---- flow --------------------------------------------------------------------------------------------------


def test_flow_equals_the_numpy_flow(client, meta, result):
    for layer in range(meta["layers"]):
        got = matrix_of(client.get(f"/api/v1/analyses/{meta['key']}/flow", params={"layer": layer}))
        np.testing.assert_array_equal(got, f16(attention_flow(result.attentions, layer=layer)))
    last = matrix_of(client.get(f"/api/v1/analyses/{meta['key']}/flow"))  # default: the last layer
    np.testing.assert_array_equal(last, f16(attention_flow(result.attentions)))


def test_flow_above_the_bound_is_refused_at_once_with_the_reason(client, tiny_models):
    long = analyze(client, tiny_models, "bert", " ".join(["the cat sat on the mat"] * 12))
    assert long["n"] > FLOW_MAX_TOKENS * 2
    started = time.perf_counter()
    response = client.get(f"/api/v1/analyses/{long['key']}/flow")
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "would take too long" in detail and f"about {FLOW_MAX_TOKENS} tokens" in detail
    assert "rollout" in detail
    limits = client.get(f"/api/v1/analyses/{long['key']}/flow-limits").json()
    assert limits["max_tokens"] == FLOW_MAX_TOKENS
    assert [entry["allowed"] for entry in limits["layers"]] == [False, False]
    assert limits["layers"][1]["reason"] == detail
    assert all(entry["max_tokens"] < long["n"] for entry in limits["layers"])


def test_flow_limits_agree_with_the_flow_endpoint(client, meta):
    limits = client.get(f"/api/v1/analyses/{meta['key']}/flow-limits").json()
    assert [entry["layer"] for entry in limits["layers"]] == list(range(meta["layers"]))
    for entry in limits["layers"]:
        assert entry["allowed"] and entry["reason"] is None and entry["max_tokens"] >= meta["n"]
    assert limits["layers"][0]["max_tokens"] > limits["layers"][1]["max_tokens"] >= FLOW_MAX_TOKENS


# ---- head statistics ---------------------------------------------------------------------------------------


def test_head_stats_json(client, meta, result):
    response = client.get(f"/api/v1/analyses/{meta['key']}/head-stats")
    assert response.status_code == 200
    body = response.json()
    assert body["names"] == list(STAT_NAMES)
    assert body["descriptions"] == STAT_DESCRIPTIONS
    assert (body["layers"], body["heads"]) == (meta["layers"], meta["heads"]) == (2, 4)
    expected = head_statistics(
        result.attentions, result.special_mask, punctuation_mask(result.display_tokens)
    )
    for name in STAT_NAMES:
        values = np.array(body["values"][name], dtype=np.float32)
        assert values.shape == (2, 4)
        np.testing.assert_array_equal(values, expected[name])  # exact float32 values


# ---- comparisons -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [("bert", "roberta"), ("bert", "albert"), ("roberta", "albert")])
def test_models_meet_on_the_same_word_axis_across_tokenizers(client, tiny_models, a, b):
    """WordPiece, byte-level BPE and SentencePiece cut the text differently (ALBERT's tiny vocabulary splits
    "am" into "a" "m"); through character offsets all three meet at the same words."""
    meta_a, meta_b = analyze(client, tiny_models, a), analyze(client, tiny_models, b)
    params = {"mode": "models", "key_a": meta_a["key"], "key_b": meta_b["key"], "layer": 1, "head": 2}
    response = client.get("/api/v1/compare", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == "models"
    assert body["labels"] == body["a"]["labels"] == body["b"]["labels"] == WORDS
    assert body["pairs"] == [[k, k] for k in range(len(WORDS))]
    assert (body["a"]["layer"], body["a"]["head"], body["b"]["layer"], body["b"]["head"]) == (1, 2, 1, 2)
    # every token that is not special belongs to exactly one word
    for side, meta in (("a", meta_a), ("b", meta_b)):
        tokens = sorted(i for group in body[side]["tokens"] for i in group)
        assert tokens == [t["index"] for t in meta["tokens"] if not t["special"]]
        words = decode(body[side]["matrix"]).astype(np.float32)
        assert words.shape == (7, 7)
        np.testing.assert_allclose(words.sum(axis=-1), 1.0, atol=5e-3)  # renormalised over the words
    diff = decode(body["difference"]).astype(np.float32)
    expected = decode(body["a"]["matrix"]).astype(np.float32) - decode(body["b"]["matrix"]).astype(np.float32)
    np.testing.assert_allclose(diff, expected, atol=2e-3)


def test_two_models_analysed_at_once_both_load(tiny_models):
    """The Compare page runs both analyses at once; loading different models in parallel threads used to leave
    one on the meta device ("Cannot copy out of meta tensor") and break every later load."""
    root = next(iter(tiny_models.values())).parent
    service = Service(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))
    families = ["bert", "roberta", "albert", "distilbert"]
    with ThreadPoolExecutor(max_workers=len(families)) as pool:
        results = list(pool.map(lambda f: service.analyze(TEXT, str(tiny_models[f])).result, families))
    assert [r.model_id for r in results] == [str(tiny_models[f]) for f in families]
    assert service.registry.load_count == len(families)


def test_albert_splits_a_word_that_the_others_keep_whole(client, tiny_models):
    albert = analyze(client, tiny_models, "albert")
    bert = analyze(client, tiny_models, "bert")
    assert albert["n"] != bert["n"]  # so the word axis above really joined different tokenizations


def test_sentences_differ_on_the_tokens_they_share(client, tiny_models, meta, result):
    other = analyze(client, tiny_models, "bert", "I think, therefore you are.")
    params = {"mode": "sentences", "key_a": meta["key"], "key_b": other["key"], "layer": 1, "head": 3}
    body = client.get("/api/v1/compare", params=params).json()
    result_b = client.app.state.service.result(other["key"])
    pairs = align_tokens(result.tokens, result_b.tokens)
    assert [tuple(p) for p in body["pairs"]] == pairs
    assert len(pairs) == meta["n"] - 2  # "I am" and "you are" have no partner
    assert body["labels"] == [result.display_tokens[i] for i, _ in pairs]
    np.testing.assert_array_equal(decode(body["a"]["matrix"]), f16(result.attentions[1, 3]))
    np.testing.assert_array_equal(decode(body["b"]["matrix"]), f16(result_b.attentions[1, 3]))
    expected = aligned_difference(result.attentions[1, 3], result_b.attentions[1, 3], pairs)
    np.testing.assert_array_equal(decode(body["difference"]), f16(expected))
    # without a head: the layer's heads averaged
    without_head = {name: value for name, value in params.items() if name != "head"}
    mean = client.get("/api/v1/compare", params=without_head).json()
    assert mean["a"]["head"] is None
    np.testing.assert_allclose(
        decode(mean["a"]["matrix"]).astype(np.float32), result.attentions[1].mean(axis=0), atol=1e-3
    )


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"mode": "sentences", "b": "roberta"}, 400, "needs one model"),
        ({"mode": "models", "b_text": "Something else entirely."}, 400, "needs one text"),
        ({"mode": "models", "layer": 5}, 400, "Layer 5 is out of range for A"),
        ({"mode": "models", "head": 4}, 400, "Head 4 is out of range for A"),
        ({"mode": "words"}, 422, "mode"),
        ({"mode": "models", "key_b": "0123abcd"}, 404, "expired"),
    ],
)
def test_compare_errors(client, tiny_models, meta, params, status, fragment):
    b = analyze(client, tiny_models, params.pop("b", "bert"), params.pop("b_text", TEXT))
    query = {"key_a": meta["key"], "key_b": b["key"], "layer": 0, **params}
    response = client.get("/api/v1/compare", params=query)
    assert response.status_code == status
    assert fragment in response.json()["detail"]


# ---- the .npz of `visualizeai analyze --out` ---------------------------------------------------------------


def test_analyze_out_npz_holds_rollout_and_head_statistics(tiny_models, tmp_path, capsys):
    out = tmp_path / "a.npz"
    code = cli.main(["analyze", "--offline", "--model", str(tiny_models["roberta"]), "--out", str(out), TEXT])
    assert code == 0, capsys.readouterr().err
    with np.load(out, allow_pickle=False) as npz:
        attentions = npz["attentions"]
        layers, heads, n, _ = attentions.shape
        assert npz["rollout"].dtype == np.float32 and npz["rollout"].shape == (layers, n, n)
        # the store averages heads in float32, attention_rollout in float64: they differ by rounding only
        np.testing.assert_allclose(npz["rollout"], attention_rollout(attentions), atol=1e-7, rtol=0)
        special = npz["special_mask"]
        expected = head_statistics(attentions, special, punctuation_mask(npz["display_tokens"].tolist()))
        for name in STAT_NAMES:
            stored = npz[name]
            assert stored.dtype == np.float32 and stored.shape == (layers, heads)
            np.testing.assert_array_equal(stored, expected[name])
