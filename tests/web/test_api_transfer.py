"""What travels to open an analysis: the brief answer of POST /analyze, JSON compressed, binary attention not,
and the first picture of a long analysis computed as the answer goes out."""

from __future__ import annotations

import numpy as np
import torch
from fake_results import result_over

from visualizeai.attention.store import DenseStore

TEXT = "The cat sat on the mat because it was warm."
BRIEF = {"key", "model", "n", "layers", "heads", "truncation", "cached", "timings", "attention_mode",
         "attention_bytes", "device_bytes"}  # fmt: skip


def test_brief_answer_has_the_key_and_sizes_but_no_token_table(client, meta):
    response = client.post("/api/v1/analyze", params={"brief": "true"}, json={"text": TEXT})
    assert response.status_code == 200, response.text
    brief = response.json()
    assert set(brief) == BRIEF
    assert {name: brief[name] for name in ("key", "n", "layers", "heads")} == {
        name: meta[name] for name in ("key", "n", "layers", "heads")
    }
    assert brief["model"] == meta["model"] and brief["cached"] is True
    full = client.get(f"/api/v1/analyses/{brief['key']}").json()
    assert full["tokens"] == meta["tokens"] and full["text"] == TEXT


def test_json_is_gzip_compressed_for_clients_that_accept_it(client, meta):
    plain = client.get(f"/api/v1/analyses/{meta['key']}", headers={"Accept-Encoding": "identity"})
    packed = client.get(f"/api/v1/analyses/{meta['key']}", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert packed.json() == plain.json()  # httpx decodes it
    assert packed.num_bytes_downloaded < len(plain.content) / 2


def test_binary_attention_is_sent_as_it_is(client, meta):
    response = client.get(
        f"/api/v1/analyses/{meta['key']}/tile",
        params={"layer": 0, "head": 0},
        headers={"Accept-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert int(response.headers["content-length"]) == 2 * meta["n"] ** 2


def test_analyze_starts_the_first_picture_of_a_long_analysis(client, monkeypatch):
    service = client.app.state.service
    warmed = []
    monkeypatch.setattr(service, "warm", lambda key, layer=0, head=0: warmed.append((key, layer, head)))
    key = client.post("/api/v1/analyze", params={"brief": "true"}, json={"text": TEXT}).json()["key"]
    assert warmed == [(key, 0, 0)]


def test_warm_computes_the_whole_head_max_pooled_once(client):
    service = client.app.state.service
    n = 1100  # above the largest tile's 1,024 samples: the heatmap asks for a pooled picture first
    weights = torch.softmax(torch.randn(1, 1, n, n, generator=torch.Generator().manual_seed(0)) * 3, -1)
    key = service.adopt(result_over(DenseStore(weights.numpy())), "warm-1100").key
    service.warm(key)
    held = [name for name in service.pictures.keys() if name.startswith(key)]
    assert held == [f"{key}|0|0|whole:1"]  # 1,100 bins of one cell: within 2,048 a side
    tile = client.get(
        f"/api/v1/analyses/{key}/tile", params={"layer": 0, "head": 0, "size": 512, "pool": "max"}
    )
    got = np.frombuffer(tile.content, dtype="<f2").reshape(512, 512)
    expected = DenseStore(weights.numpy()).pooled(0, 0, size=512, pool="max")
    np.testing.assert_array_equal(got, expected.astype(np.float16))
