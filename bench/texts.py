"""Texts that tokenize to an exact number of tokens, special tokens included, so a run measures the size it
names. A new seed gives a new text of the same length (the server cache never answers for it)."""

from __future__ import annotations

import random


def single_token_words(tokenizer) -> list[str]:
    """Lower-case ASCII words of the vocabulary that the tokenizer keeps as one token, in a fixed order."""
    words = tokenizer.get_vocab()
    vocab = sorted(w for w in words if len(w) > 2 and w.isascii() and w.isalpha() and w.islower())
    pieces = tokenizer(vocab, add_special_tokens=False)["input_ids"]
    return [word for word, ids in zip(vocab, pieces, strict=True) if len(ids) == 1]


def exact_text(tokenizer, n: int, seed: int, words: list[str] | None = None) -> str:
    """Space-separated random single-token words that tokenize to exactly ``n`` tokens with specials.

    Raises:
        ValueError: ``n`` leaves no room for a word, or the tokenizer does not count words one token each.
    """
    body = n - tokenizer.num_special_tokens_to_add()
    if body < 1:
        raise ValueError(f"n = {n} leaves no room for text after {n - body} special tokens")
    words = words if words is not None else single_token_words(tokenizer)
    text = " ".join(random.Random(seed).choices(words, k=body))
    count = len(tokenizer(text, add_special_tokens=True)["input_ids"])
    if count != n:
        raise ValueError(f"built a text of {count} tokens, not {n}: the tokenizer merges or splits words")
    return text
