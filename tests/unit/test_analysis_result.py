"""AnalysisResult: coerced dtypes, consistent shapes, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from visualizeai.analysis.result import AnalysisResult

TEXT = "Hi there"


def make(**changes) -> AnalysisResult:
    n = 4
    attentions = np.full((2, 3, n, n), 1 / n, dtype=np.float32)
    fields = dict(
        model_id="tiny-bert",
        revision=None,
        model_kind="masked-lm",
        text=TEXT,
        tokens=["[CLS]", "hi", "there", "[SEP]"],
        display_tokens=["[CLS]", "hi", "there", "[SEP]"],
        special_mask=np.array([True, False, False, True]),
        offsets=np.array([[0, 0], [0, 2], [3, 8], [0, 0]], dtype=np.int64),
        word_ids=np.array([-1, 0, 1, -1], dtype=np.int64),
        attention=attentions,
        dropped_tokens=0,
        max_length=512,
    )
    fields.update(changes)
    return AnalysisResult(**fields)


def test_properties_and_coerced_dtypes():
    result = make()
    assert (result.n, result.layers, result.heads) == (4, 2, 3)
    assert result.offsets.dtype == np.int32 and result.offsets.shape == (4, 2)
    assert result.word_ids.dtype == np.int32
    assert result.special_mask.dtype == np.bool_
    assert result.attentions.dtype == np.float32


def test_float32_attention_is_not_copied():
    attentions = np.full((1, 1, 4, 4), 0.25, dtype=np.float32)
    assert make(attention=attentions).attentions is attentions


def test_float64_attention_becomes_float32():
    assert make(attention=np.full((1, 1, 4, 4), 0.25)).attentions.dtype == np.float32


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_kind": "seq2seq"}, "model_kind"),
        ({"tokens": ["[CLS]", "hi", "there"]}, "tokens has 3 entries"),
        ({"display_tokens": ["a"] * 5}, "display_tokens has 5 entries"),
        ({"attention": np.zeros((2, 4, 4), dtype=np.float32)}, r"\[layers, heads, n, n\]"),
        ({"attention": np.zeros((1, 1, 4, 3), dtype=np.float32)}, r"\[layers, heads, n, n\]"),
        ({"special_mask": np.array([True, False, True])}, "special_mask must have shape"),
        ({"special_mask": np.array([1, 0, 0, 1])}, "boolean"),
        ({"offsets": np.zeros((4, 3), dtype=np.int32)}, "offsets must have shape"),
        ({"offsets": np.array([[0, 0], [0, 2], [3, 9], [0, 0]])}, "token 2 has"),
        ({"offsets": np.array([[0, 0], [2, 1], [3, 8], [0, 0]])}, "token 1 has"),
        ({"word_ids": np.array([-1, 0, 1])}, "word_ids must have shape"),
        ({"word_ids": np.array([-1, 0, -2, -1])}, "token 2 has -2"),
        ({"dropped_tokens": -1}, "dropped_tokens"),
        ({"max_length": 3}, "max_length=3"),
    ],
)
def test_inconsistent_fields_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        make(**changes)
