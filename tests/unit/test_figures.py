"""Server-side figures (matplotlib): valid PNG and SVG, every token label as text, hostile tokens escaped."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from visualizeai import figures

HOSTILE = "<img src=x onerror=alert(1)>"
SVG = "{http://www.w3.org/2000/svg}"
LABELS = ["[CLS]", "The", HOSTILE, "a&b", "$x^2$", "caf\u00e9", "tab\there", "nul\x00l", " ", "[SEP]"]


def attention(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.random((n, n)) ** 6
    return (m / m.sum(axis=1, keepdims=True)).astype(np.float32)


def svg_texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_png_is_a_readable_image():
    data = figures.render_heatmap(attention(10), LABELS, title="model · layer 1 · head 2", fmt="png")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.width > 300 and image.height > 300
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels.min(axis=2) < 120).any()  # dark cells and text are drawn


def test_svg_has_every_label_as_text_on_both_axes():
    data = figures.render_heatmap(attention(10), LABELS, title="model · layer 1 · head 2", fmt="svg")
    texts = svg_texts(data)
    for label in LABELS:
        shown = figures.token_label(label)
        assert texts.count(shown) == 2, (label, shown)
    assert "model · layer 1 · head 2" in texts
    assert "$x^2$" in texts  # no mathtext
    assert figures.token_label("nul\x00l") == "nul\ufffdl" and figures.token_label(" ") == "␣"


def test_svg_escapes_the_hostile_token():
    data = figures.render_heatmap(attention(10), LABELS, fmt="svg")
    text = data.decode("utf-8")
    assert "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert HOSTILE in svg_texts(data)


def test_svg_is_vector():
    """Cells are filled paths, never an embedded raster image."""
    matrix = np.zeros((6, 6), np.float32)
    matrix[2, 4] = 1.0
    data = figures.render_heatmap(matrix, [f"t{i}" for i in range(6)], fmt="svg")
    root = ET.fromstring(data)
    assert not list(root.iter(f"{SVG}image"))
    text = data.decode("utf-8")
    assert "#08306b" in text  # the darkest blue, for the one full cell


def test_long_inputs_label_every_token_in_svg():
    n = 150
    labels = [f"w{i}" for i in range(n)]
    texts = svg_texts(figures.render_heatmap(attention(n), labels, fmt="svg"))
    assert all(texts.count(label) == 2 for label in labels)


def test_row_runs_cover_each_row_exactly():
    indices = np.array([[0, 0, 3, 3, 3], [1, 2, 2, 2, 1], [4, 4, 4, 4, 4]])
    row, start, length, colour = figures.row_runs(indices)
    assert row.tolist() == [0, 0, 1, 1, 1, 2]
    assert start.tolist() == [0, 2, 0, 1, 4, 0]
    assert length.tolist() == [2, 3, 1, 3, 1, 5]
    assert colour.tolist() == [0, 3, 1, 2, 1, 4]
    rebuilt = np.zeros_like(indices)
    for r, s, n, c in zip(row, start, length, colour, strict=True):
        rebuilt[r, s : s + n] = c
    np.testing.assert_array_equal(rebuilt, indices)


def test_scales_match_the_web_page():
    values = np.array([[0.0, 0.001, 0.01, 0.25, 1.0]])
    np.testing.assert_allclose(figures.unit_values(values, "linear"), [[0, 0.001, 0.01, 0.25, 1]])
    np.testing.assert_allclose(figures.unit_values(values, "sqrt"), [[0, 0.0316228, 0.1, 0.5, 1]], rtol=1e-6)
    np.testing.assert_allclose(figures.unit_values(values, "log"), [[0, 0, 1 / 3, 0.799313, 1]], rtol=1e-5)
    assert figures.color_indices(values, "linear").tolist() == [[0, 0, 3, 64, 255]]


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"shape \[n, n\] with one label per row; got shape \(3, 3\) and 2"):
        figures.render_heatmap(attention(3), ["a", "b"])
    with pytest.raises(ValueError, match="scale must be one of"):
        figures.render_heatmap(attention(3), ["a", "b", "c"], scale="cubic")
    with pytest.raises(ValueError, match="format must be one of"):
        figures.render_heatmap(attention(3), ["a", "b", "c"], fmt="pdf")


def test_same_input_same_svg():
    a = figures.render_heatmap(attention(8), LABELS[:8], title="t", fmt="svg")
    b = figures.render_heatmap(attention(8), LABELS[:8], title="t", fmt="svg")
    assert a == b
