"""bench/texts.py: `make bench` measures 128 and 512 tokens only if its texts have exactly that many."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from texts import exact_text, single_token_words  # noqa: E402  (bench/ is scripts, not a package)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def words(tokenizer) -> list[str]:
    return single_token_words(tokenizer)  # a scan of the whole vocabulary: once for the module


@pytest.mark.parametrize("n", [3, 128, 511, 512])
def test_exact_token_count_with_specials(tokenizer, words, n):
    text = exact_text(tokenizer, n, seed=n, words=words)
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == n
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id


def test_seed_gives_a_new_text_of_the_same_length(tokenizer, words):
    first, again, other = (exact_text(tokenizer, 64, seed=s, words=words) for s in (1, 1, 2))
    assert first == again and first != other
    assert len(tokenizer(other)["input_ids"]) == 64


def test_word_pool_is_single_tokens(tokenizer, words):
    assert len(words) > 10_000
    assert all(len(ids) == 1 for ids in tokenizer(words[::500], add_special_tokens=False)["input_ids"])


def test_refuses_what_it_cannot_build(tokenizer):
    with pytest.raises(ValueError, match="no room"):
        exact_text(tokenizer, 2, seed=0, words=["word"])
    with pytest.raises(ValueError, match="not 10"):
        exact_text(tokenizer, 10, seed=0, words=["unbelievably"])  # several word pieces each
