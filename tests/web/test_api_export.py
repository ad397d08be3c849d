"""Export downloads and opening saved analyses through the API (TestClient, embedded MiniLM)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from visualizeai import export
from visualizeai.config import Settings
from visualizeai.web import create_app

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."


def download(client, key, **params):
    return client.get(f"/api/v1/analyses/{key}/export", params=params)


def upload(client, data: bytes, name="saved.npz", field="file"):
    return client.post("/api/v1/analyses", files={field: (name, data, "application/octet-stream")})


def npz_of(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def saved_parts(client, meta) -> dict:
    with np.load(io.BytesIO(download(client, meta["key"], format="npz").content)) as npz:
        return {name: npz[name] for name in npz.files}


def test_npz_download_opens_again_as_the_same_analysis(client, meta):
    response = download(client, meta["key"], format="npz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert 'attachment; filename="visualizeai-all-MiniLM-L6-v2-' in response.headers["content-disposition"]

    opened = upload(client, response.content)
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["key"] != meta["key"]
    for field in ("text", "n", "layers", "heads", "tokens", "truncation", "predictions"):
        assert body[field] == meta[field], field
    assert body["model"]["id"] == "all-MiniLM-L6-v2" and body["model"]["display_name"]
    # its matrices are served like any analysis, and equal the original
    for key in (meta["key"], body["key"]):
        head = client.get(f"/api/v1/analyses/{key}/attention", params={"layer": 3, "head": 5})
        assert head.status_code == 200
    a = client.get(f"/api/v1/analyses/{meta['key']}/attention", params={"layer": 3}).content
    b = client.get(f"/api/v1/analyses/{body['key']}/attention", params={"layer": 3}).content
    assert a == b
    # opening the same file twice gives the same key
    assert upload(client, response.content).json()["key"] == body["key"]


def test_meta_of_a_cached_analysis(client, meta):
    body = client.get(f"/api/v1/analyses/{meta['key']}").json()
    assert body["tokens"] == meta["tokens"] and body["key"] == meta["key"] and body["cached"] is True
    missing = client.get("/api/v1/analyses/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and "expired" in missing.json()["detail"]


def test_json_download_has_the_documented_fields(client, meta):
    response = download(client, meta["key"], format="json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["format"] == "visualizeai-analysis" and doc["schema_version"] == 1
    assert doc["shape"] == [6, 12, 9, 9] and doc["display_tokens"][1] == "I"
    assert set(doc["statistics"]) >= {"entropy", "self_share"}
    assert np.array(doc["statistics"]["entropy"]).shape == (6, 12)
    attn = np.array(doc["attentions"], dtype=np.float32)
    np.testing.assert_allclose(attn.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("fmt", "media", "magic"),
    [
        ("png", "image/png", b"\x89PNG"),
        ("svg", "image/svg+xml", b"<?xml"),
        ("html", "text/html; charset=utf-8", b"<!doctype html>"),
    ],
)
def test_view_downloads(client, meta, fmt, media, magic):
    response = download(client, meta["key"], format=fmt, layer=2, head=7, scale="sqrt", layers="0,2")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media and response.content.startswith(magic)
    if fmt in ("png", "svg"):
        assert f'-L2H7.{fmt}"' in response.headers["content-disposition"]
    if fmt == "html":
        page = response.content.decode()
        assert '"included_layers":[0,2]' in page and 'id="viz-attention"' in page


def test_bad_export_parameters(client, meta):
    assert download(client, meta["key"], format="pdf").status_code == 422
    wrong = download(client, meta["key"], format="png", layer=6)
    assert wrong.status_code == 400 and "layers 0–5" in wrong.json()["detail"]
    layers = download(client, meta["key"], format="html", layers="1,9")
    assert layers.status_code == 400 and "layers 0–5" in layers.json()["detail"]


# ---- bad uploads --------------------------------------------------------------------------------------


def test_upload_of_something_else(client):
    response = upload(client, b"just some text, not an archive", name="notes.txt")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "This is not a saved VisualizeAI analysis: it is not an .npz (zip) archive."
    )
    empty = upload(client, b"")
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]


def test_upload_with_a_pickle_inside_is_refused_unread(client, meta):
    parts = saved_parts(client, meta)
    parts["tokens"] = np.array(parts["tokens"].tolist(), dtype=object)  # np.save pickles object arrays
    response = upload(client, npz_of(**parts))
    assert response.status_code == 400
    assert "tokens.npy holds Python objects, which are never loaded" in response.json()["detail"]


def test_upload_with_wrong_shapes(client, meta):
    parts = saved_parts(client, meta)
    parts["attentions"] = parts["attentions"][:, :, :8, :8]
    response = upload(client, npz_of(**parts))
    assert response.status_code == 400
    assert "tokens has 9 entries but attentions cover n = 8 tokens" in response.json()["detail"]

    parts = saved_parts(client, meta)
    parts["attentions"] = parts["attentions"][0]  # 3-d
    response = upload(client, npz_of(**parts))
    assert response.status_code == 400 and "shape [layers, heads, n, n]" in response.json()["detail"]

    parts = saved_parts(client, meta)
    del parts["word_ids"]
    response = upload(client, npz_of(**parts))
    assert response.status_code == 400 and "no word_ids array" in response.json()["detail"]

    parts = saved_parts(client, meta)
    parts["attentions"][0, 0, 0, 0] = np.nan
    response = upload(client, npz_of(**parts))
    assert response.status_code == 400 and "NaN" in response.json()["detail"]


def test_upload_whose_header_lies_about_its_size(client, meta):
    parts = saved_parts(client, meta)
    good = io.BytesIO(npz_of(**parts))
    out = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "attentions.npy":
                data = data[:200]  # header promises [6, 12, 9, 9] floats; the data is cut short
            dst.writestr(info.filename, data)
    response = upload(client, out.getvalue())
    assert response.status_code == 400 and "shorter than its header says" in response.json()["detail"]


def test_upload_form_mistakes(client, meta):
    data = download(client, meta["key"], format="npz").content
    assert upload(client, data, field="document").status_code == 400
    assert "field 'file'" in upload(client, data, field="document").json()["detail"]
    raw = client.post("/api/v1/analyses", content=data, headers={"content-type": "application/zip"})
    assert raw.status_code == 415 and "multipart/form-data" in raw.json()["detail"]


@pytest.fixture(scope="module")
def small_client():
    with TestClient(create_app(Settings(offline=True, max_upload_bytes=20_000))) as c:
        yield c


def test_upload_too_big(small_client):
    response = upload(small_client, b"\0" * 30_000)
    assert response.status_code == 413 and "20,000 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the stream itself is cut off
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.npz"\r\n\r\n'
        for _ in range(10):
            yield b"\0" * 4096

    response = small_client.post(
        "/api/v1/analyses", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"}
    )
    assert response.status_code == 413 and "20,000 bytes" in response.json()["detail"]


def test_upload_that_unpacks_to_too_much(small_client):
    bomb = io.BytesIO()
    np.savez_compressed(bomb, attentions=np.zeros((1, 1, 200, 200), np.float32))  # 160 kB in ~300 bytes
    assert len(bomb.getvalue()) < 20_000
    response = upload(small_client, bomb.getvalue())
    assert response.status_code == 413 and "unpacks to more than 80,000 bytes" in response.json()["detail"]


def test_read_refuses_other_formats(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(export.InputError, match="its format is 'something-else'"):
        export.read(path)
