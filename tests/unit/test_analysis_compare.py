"""Comparing attention across tokenisations (word alignment) and across texts (token alignment)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from visualizeai.analysis.compare import (
    WordAlignment,
    align_tokens,
    align_words,
    aligned_difference,
    difference,
    pool_to_words,
)

TEXT = "The player's unbelievable goal."

# WordPiece (BERT): [CLS] the player ' s un ##bel ##ievable goal . [SEP]
WORDPIECE = [
    (0, 0),
    (0, 3),
    (4, 10),
    (10, 11),
    (11, 12),
    (13, 15),
    (15, 18),
    (18, 25),
    (26, 30),
    (30, 31),
    (0, 0),
]
WORDPIECE_SPECIAL = [True] + [False] * 9 + [True]

# byte-level BPE (RoBERTa, offsets not trimmed): <s> The Ġplayer 's Ġunbel iev able Ġgoal . </s>
BPE = [(0, 0), (0, 3), (3, 10), (10, 12), (12, 18), (18, 21), (21, 25), (25, 30), (30, 31), (0, 0)]
BPE_SPECIAL = [True] + [False] * 8 + [True]


def aligned(offsets_a, special_a, offsets_b, special_b, text):
    return align_words(
        np.array(offsets_a), np.array(special_a), np.array(offsets_b), np.array(special_b), text
    )


def test_wordpiece_against_bpe():
    words = aligned(WORDPIECE, WORDPIECE_SPECIAL, BPE, BPE_SPECIAL, TEXT)
    assert words == [
        WordAlignment((0, 3), [1], [1]),  # The
        WordAlignment((4, 10), [2], [2]),  # player
        WordAlignment((10, 12), [3, 4], [3]),  # ' s  /  's
        WordAlignment((13, 25), [5, 6, 7], [4, 5, 6]),  # unbelievable
        WordAlignment((26, 30), [8], [7]),  # goal
        WordAlignment((30, 31), [9], [8]),  # .
    ]
    assert [TEXT[slice(*w.span)] for w in words] == ["The", "player", "'s", "unbelievable", "goal", "."]


def test_sentencepiece_with_a_lone_word_marker():
    text = "Hi (there)"
    # ALBERT-like: [CLS] ▁hi ▁ ( there ) [SEP]; the lone "▁" covers the space before "("
    sentencepiece = [(0, 0), (0, 2), (2, 3), (3, 4), (4, 9), (9, 10), (0, 0)]
    sp_special = [True, False, False, False, False, False, True]
    # BERT-like: [CLS] hi ( there ) [SEP]
    wordpiece = [(0, 0), (0, 2), (3, 4), (4, 9), (9, 10), (0, 0)]
    wp_special = [True, False, False, False, False, True]
    words = aligned(sentencepiece, sp_special, wordpiece, wp_special, text)
    assert words == [
        WordAlignment((0, 2), [1], [1]),
        WordAlignment((3, 4), [2, 3], [2]),  # the lone marker joins the word after it
        WordAlignment((4, 9), [4], [3]),
        WordAlignment((9, 10), [5], [4]),
    ]


def test_a_token_across_punctuation_merges_the_words():
    text = "don't stop"
    wordpiece = [(0, 3), (3, 4), (4, 5), (6, 10)]  # don ' t stop
    bpe = [(0, 3), (3, 5), (5, 10)]  # don 't Ġstop
    no_special = [False] * 4
    words = aligned(wordpiece, no_special, bpe, no_special[:3], text)
    assert words == [
        WordAlignment((0, 3), [0], [0]),
        WordAlignment((3, 5), [1, 2], [1]),
        WordAlignment((6, 10), [3], [2]),
    ]


def test_words_past_one_sides_truncation_keep_an_empty_list():
    text = "one two three"
    a = [(0, 3), (4, 7), (8, 13)]
    b = [(0, 3), (4, 7)]  # truncated
    words = aligned(a, [False] * 3, b, [False] * 2, text)
    assert words[-1] == WordAlignment((8, 13), [2], [])
    assert len(words) == 3
    # text that neither side covers is no word at all
    assert [w.span for w in aligned(b, [False] * 2, b, [False] * 2, text)] == [(0, 3), (4, 7)]


def test_offset_errors():
    with pytest.raises(ValueError, match=r"offsets_b must have shape \[n, 2\].*\(0, 40\)"):
        aligned(WORDPIECE, WORDPIECE_SPECIAL, [(0, 40)], [False], TEXT)
    with pytest.raises(ValueError, match=r"special_a must have shape \[11\]"):
        aligned(WORDPIECE, WORDPIECE_SPECIAL[:3], BPE, BPE_SPECIAL, TEXT)


def test_pool_to_words_over_an_alignment():
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(11), size=11).astype(np.float32)
    b = rng.dirichlet(np.ones(10), size=10).astype(np.float32)
    words = aligned(WORDPIECE, WORDPIECE_SPECIAL, BPE, BPE_SPECIAL, TEXT)
    pooled_a = pool_to_words(a, [w.tokens_a for w in words])
    pooled_b = pool_to_words(b, [w.tokens_b for w in words])
    assert pooled_a.shape == pooled_b.shape == (6, 6)
    # "'s" is tokens 3 and 4 on side a: keys summed, queries averaged
    expected = a[[3, 4]][:, [5, 6, 7]].sum(axis=1).mean()
    assert pooled_a[2, 3] == pytest.approx(expected)
    assert difference(pooled_a, pooled_b).shape == (6, 6)
    # specials are dropped, so rows hold only the attention that went to words
    words_only = np.delete(np.delete(a, [0, 10], axis=0), [0, 10], axis=1).sum(axis=1)
    np.testing.assert_allclose(
        pooled_a.sum(axis=1),
        [
            words_only[[0]].mean(),
            words_only[[1]].mean(),
            words_only[[2, 3]].mean(),
            words_only[[4, 5, 6]].mean(),
            words_only[[7]].mean(),
            words_only[[8]].mean(),
        ],
        rtol=1e-5,
    )


def test_difference_checks_shapes():
    np.testing.assert_allclose(difference(np.eye(2), np.full((2, 2), 0.5)), [[0.5, -0.5], [-0.5, 0.5]])
    with pytest.raises(ValueError, match=r"a has shape \(2, 2\) but b has shape \(3, 3\)"):
        difference(np.eye(2), np.eye(3))


def test_align_tokens_of_two_sentences():
    a = ["[CLS]", "the", "cat", "sat", "down", "[SEP]"]
    b = ["[CLS]", "the", "big", "dog", "sat", "down", "[SEP]"]
    assert align_tokens(a, b) == [(0, 0), (1, 1), (3, 4), (4, 5), (5, 6)]


@given(
    st.lists(st.sampled_from(["a", "b", "c", "the"]), max_size=12),
    st.lists(st.sampled_from(["a", "b", "c", "the"]), max_size=12),
)
def test_align_tokens_pairs_are_equal_tokens_in_increasing_order(a, b):
    pairs = align_tokens(a, b)
    assert all(a[i] == b[j] for i, j in pairs)
    assert all(i1 < i2 and j1 < j2 for (i1, j1), (i2, j2) in zip(pairs, pairs[1:], strict=False))


def test_aligned_difference():
    a = np.arange(9, dtype=np.float32).reshape(3, 3)
    b = np.arange(16, dtype=np.float32).reshape(4, 4) * 10
    pairs = [(0, 0), (2, 3)]
    expected = a[np.ix_([0, 2], [0, 2])] - b[np.ix_([0, 3], [0, 3])]
    np.testing.assert_array_equal(aligned_difference(a, b, pairs), expected)
    with pytest.raises(ValueError, match="pairs must hold"):
        aligned_difference(a, b, [(3, 0)])


@st.composite
def two_tokenisations(draw):
    """A text of words and punctuation, cut into tokens twice: WordPiece-like (pieces of each word) and
    BPE-like (pieces that may carry the space before them, and lone-space tokens)."""
    words = draw(
        st.lists(st.sampled_from(["cat", "unbelievable", "don't", "(", "U.S.", "...", "x"]), min_size=1)
    )
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]

    def cut(leading_space: bool) -> list[tuple[int, int]]:
        spans = []
        for start, word in zip(starts, words, strict=True):
            cuts = sorted(draw(st.sets(st.integers(1, len(word) - 1), max_size=3))) if len(word) > 1 else []
            pieces = list(zip([0, *cuts], [*cuts, len(word)], strict=True))
            spans += [(start + a, start + b) for a, b in pieces]
            if leading_space and start > 0:
                if draw(st.booleans()):
                    spans.insert(len(spans) - len(pieces), (start - 1, start))  # a lone "Ġ"
                else:
                    first = len(spans) - len(pieces)
                    spans[first] = (start - 1, spans[first][1])  # "Ġword" with the space in its span
        return spans

    return text, cut(False), cut(True)


@given(two_tokenisations())
def test_align_words_partitions_both_tokenisations(case):
    text, spans_a, spans_b = case
    words = aligned(spans_a, [False] * len(spans_a), spans_b, [False] * len(spans_b), text)
    for tokens, spans in ((lambda w: w.tokens_a, spans_a), (lambda w: w.tokens_b, spans_b)):
        assert sorted(i for w in words for i in tokens(w)) == list(range(len(spans)))  # each token once
        for w in words:
            for i in tokens(w):
                start, end = spans[i]
                if text[start:end].strip():
                    stripped = start + len(text[start:end]) - len(text[start:end].lstrip())
                    assert w.span[0] <= stripped and end <= w.span[1]  # the word holds the token
    assert all(w1.span[1] <= w2.span[0] for w1, w2 in zip(words, words[1:], strict=False))
    assert all(text[slice(*w.span)].strip() == text[slice(*w.span)] for w in words)
    assert all(w.tokens_a and w.tokens_b for w in words)  # both sides cover the whole text
