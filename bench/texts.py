"""Texts that tokenize to an exact number of tokens, special tokens included, so a run measures the size it
names. A new seed gives a new text of the same length (the server cache never answers for it)."""

from __future__ import annotations

import random


def single_token_words(tokenizer) -> list[str]:
    """Lower-case ASCII words that the tokenizer keeps as one token both alone and after a space (as they
    stand in a space-separated text), in a fixed order.

    Candidates are the vocabulary's entries and their decoded text, so that tokenizers which write a
    word's leading space into the token (byte-level BPE's "Ġword", SentencePiece's "▁word") work as well
    as WordPiece.
    """
    vocab = tokenizer.get_vocab()
    decoded = [tokenizer.convert_tokens_to_string([piece]).strip() for piece in vocab]
    candidates = sorted(
        {w for w in (*vocab, *decoded) if len(w) > 2 and w.isascii() and w.isalpha() and w.islower()}
    )
    if not candidates:
        return []
    alone = tokenizer(candidates, add_special_tokens=False)["input_ids"]
    spaced = tokenizer([" " + w for w in candidates], add_special_tokens=False)["input_ids"]
    return [w for w, a, s in zip(candidates, alone, spaced, strict=True) if len(a) == 1 and len(s) == 1]


def exact_text(tokenizer, n: int, seed: int, words: list[str] | None = None) -> str:
    """Space-separated random single-token words that tokenize to exactly ``n`` tokens with specials.

    Raises:
        ValueError: ``n`` leaves no room for a word, no word is one token, or the tokenizer does not count
            words one token each.
    """
    body = n - tokenizer.num_special_tokens_to_add()
    if body < 1:
        raise ValueError(f"n = {n} leaves no room for text after {n - body} special tokens")
    words = words if words is not None else single_token_words(tokenizer)
    if not words:
        raise ValueError("the tokenizer keeps no lower-case ASCII word as one token")
    text = " ".join(random.Random(seed).choices(words, k=body))
    count = len(tokenizer(text, add_special_tokens=True)["input_ids"])
    if count != n:
        raise ValueError(f"built a text of {count} tokens, not {n}: the tokenizer merges or splits words")
    return text
