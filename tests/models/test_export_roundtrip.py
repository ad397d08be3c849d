"""Saved analyses load back identical; the JSON schema; ``visualizeai export`` in each format; Python API."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from visualizeai import cli, export
from visualizeai.config import Settings
from visualizeai.errors import InputError
from visualizeai.service import Service

pytestmark = pytest.mark.models

MASKED = "The [MASK] sat on the mat."


@pytest.fixture(scope="module")
def service(tiny_models, minilm_path):
    root = next(iter(tiny_models.values())).parent
    return Service(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))


@pytest.fixture(scope="module")
def results(service, tiny_models):
    """A masked LM with predictions, a causal LM with a next-token guess, MiniLM, and a truncated text."""
    return {
        "bert": service.analyze(MASKED, str(tiny_models["bert"])).result,
        "gpt2": service.analyze("The cat sat on the", str(tiny_models["gpt2"])).result,
        "minilm": service.analyze("I think, therefore I am.").result,
        "truncated": service.analyze("word " * 200, str(tiny_models["albert"])).result,
    }


def assert_same(a, b):
    np.testing.assert_array_equal(a.attentions, b.attentions)
    assert a.attentions.dtype == b.attentions.dtype == np.float32
    for name in ("special_mask", "offsets", "word_ids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype
    for name in (
        "model_id",
        "revision",
        "model_kind",
        "text",
        "tokens",
        "display_tokens",
        "dropped_tokens",
        "max_length",
        "predictions",
        "predictions_note",
    ):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("key", ["bert", "gpt2", "minilm", "truncated"])
@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_write_then_read_is_identical(results, tmp_path, key, suffix):
    result = results[key]
    path = tmp_path / f"a{suffix}"
    export.write(result, path)
    assert_same(export.read(path), result)


def test_round_trip_keeps_predictions_and_truncation(results, tmp_path):
    assert results["bert"].predictions and results["bert"].predictions[0].kind == "mask"
    assert results["gpt2"].predictions[0].kind == "next"
    assert results["truncated"].dropped_tokens > 0 and results["truncated"].n == 128
    path = tmp_path / "b.npz"
    export.write(results["bert"], path)
    back = export.read(path)
    assert back.predictions[0].candidates == results["bert"].predictions[0].candidates


def test_npz_contents(results, tmp_path):
    result = results["bert"]
    path = tmp_path / "a.npz"
    export.write(result, path)
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) >= {*export.REQUIRED_ARRAYS, "entropy", "self_share"}
        assert npz["attentions"].shape == result.attentions.shape and npz["attentions"].dtype == np.float32
        assert npz["tokens"].tolist() == result.tokens
        assert npz["entropy"].shape == (result.layers, result.heads)
        meta = json.loads(str(npz["meta"]))
    assert meta["format"] == "visualizeai-analysis" and meta["schema_version"] == 1
    assert meta["shape"] == list(result.attentions.shape)
    assert meta["predictions"][0]["candidates"][0].keys() == {"token", "token_id", "score", "readable"}


def test_json_schema_fields(results):
    doc = json.loads(export.json_bytes(results["gpt2"]))
    assert list(doc) == [
        "format",
        "schema_version",
        "model",
        "revision",
        "kind",
        "text",
        "shape",
        "tokens",
        "display_tokens",
        "special_mask",
        "offsets",
        "word_ids",
        "token_ids",
        "readable_tokens",
        "unknown_mask",
        "dropped_tokens",
        "max_length",
        "predictions",
        "predictions_note",
        "statistics",
        "attentions",
    ]
    assert doc["kind"] == "causal-lm" and doc["predictions"][0]["kind"] == "next"
    assert np.array(doc["attentions"]).shape == tuple(doc["shape"])
    assert sorted(doc["statistics"]) == sorted(
        [
            "entropy",
            "mean_distance",
            "special_share",
            "punctuation_share",
            "self_share",
            "previous_share",
            "next_share",
            "sink_share",
        ]
    )


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["png", "svg", "html", "json", "npz"])
def test_cli_export_each_format(capsys, tiny_models, tmp_path, fmt):
    out = tmp_path / f"figure.{fmt}"
    code, stdout, err = run(
        capsys,
        "export",
        "--offline",
        "--model",
        str(tiny_models["roberta"]),
        "--format",
        fmt,
        "--layer",
        "1",
        "--head",
        "2",
        "--layers",
        "1",
        "--out",
        str(out),
        "Hello <b>world</b> & friends.",
    )
    assert code == 0, err
    assert stdout.startswith(f"wrote {out} ({fmt}, ")
    data = out.read_bytes()
    if fmt == "png":
        with Image.open(out) as image:
            assert image.format == "PNG" and image.width > 100
    elif fmt == "svg":
        root = ET.fromstring(data)
        texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert any("layer 1 · head 2" in t for t in texts)
        assert "<s>" in texts and "</s>" in texts  # special tokens as text, escaped in the file
        assert b"&lt;s&gt;" in data
    elif fmt == "html":
        page = data.decode()
        assert page.startswith("<!doctype html>") and '"included_layers":[1]' in page
        assert "<b>" not in page.split('id="viz-meta">', 1)[1].split("</script>", 1)[0]
    else:
        result = export.read(out)
        assert result.text == "Hello <b>world</b> & friends." and result.layers == 2


def test_cli_export_from_a_saved_file(capsys, results, tmp_path):
    saved = tmp_path / "saved.npz"
    export.write(results["truncated"], saved)
    out = tmp_path / "from-saved.svg"
    code, stdout, err = run(
        capsys,
        "export",
        "--input",
        str(saved),
        "--layer",
        "1",
        "--head",
        "3",
        "--scale",
        "log",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert "128 tokens, layer 1, head 3" in stdout
    assert b"log scale" in out.read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "x.txt", "text"], "Cannot tell the format from 'x.txt'"),
        (["--out", "x.png"], "Nothing to export"),
        (["--out", "x.png", "--input", "missing.npz"], "Cannot read 'missing.npz'"),
        (["--offline", "--out", "x.png", "--layer", "9", "text"], "Layer 9 is out of range"),
        (["--offline", "--out", "x.html", "--layers", "0,a", "text"], "write layer numbers like 0,1,5"),
    ],
)
def test_cli_export_errors(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "export", *argv)
    assert code == 2 and message in err


def test_read_refuses_a_file_that_is_not_an_analysis(tmp_path):
    path = tmp_path / "numbers.npz"
    np.savez(path, x=np.arange(3))
    with pytest.raises(InputError, match="it has no attentions, tokens, display_tokens"):
        export.read(path)


TINY = ["bert", "distilbert", "albert", "roberta", "gpt2", "bert_encoder"]
TINY += ["llama", "qwen2", "mistral", "gemma2", "phi3", "gpt_neox"]


@pytest.mark.parametrize("name", TINY)
def test_every_family_saves_a_file_that_passes_the_upload_checks(service, tiny_models, name):
    """Sliding windows, soft-capping, fused projections, masks and predictions: whatever a fresh analysis
    holds passes the checks of an opened file, also with its weights rounded to float16."""
    result = service.analyze(MASKED + " " + "word " * 40, str(tiny_models[name])).result
    data = export.npz_bytes(result)
    limits = {"max_tokens": service.settings.max_tokens, "max_text_chars": service.settings.max_text_chars}
    assert_same(export.loads_npz(data, **limits), result)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        parts = {key: npz[key] for key in npz.files}
    parts["attentions"] = parts["attentions"].astype(np.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **parts)
    rounded = export.loads_npz(buffer.getvalue(), **limits)
    np.testing.assert_allclose(rounded.attentions, result.attentions, atol=5e-4)


def test_python_api(results, tmp_path):
    import visualizeai

    a = visualizeai.analyze("I think, therefore I am.")
    assert a.attentions.shape == (6, 12, 9, 9) and isinstance(a.attentions, np.ndarray)
    path = visualizeai.save(a, tmp_path / "a.npz")
    assert_same(visualizeai.load(path), a)
    assert visualizeai.figure(a, 1, 2, fmt="svg").startswith(b"<?xml")
    view = visualizeai.offline_view(a, layers=[0])  # show() is the notebook widget (tests/notebook)
    html = view._repr_html_()
    assert html.startswith('<iframe srcdoc="&lt;!doctype html&gt;') and "<script" not in html
    assert '"included_layers":[0]' in view.html()


def test_import_stays_cheap():
    code = "import sys, visualizeai; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
