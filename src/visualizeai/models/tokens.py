"""Human-readable token strings: the text a token covers, or its vocabulary form without subword markers."""

from __future__ import annotations

import numpy as np

from visualizeai.models.quirks import Quirks

WHITESPACE_TOKEN = "␣"


def display_tokens(
    raw: list[str], offsets: np.ndarray, special: np.ndarray, text: str, quirks: Quirks
) -> list[str]:
    """One display string per position (never merged, so repeated words stay separate).

    Special tokens keep their vocabulary form; others show the characters they cover in ``text``
    (no ``##``/``Ġ``/``▁`` markers), falling back to the vocabulary form with its marker removed.
    """
    out = []
    for i, token in enumerate(raw):
        start, end = (int(x) for x in offsets[i])
        if special[i]:
            out.append(token)
            continue
        shown = text[start:end].strip() if end > start else ""
        if not shown:
            # a lone marker ("Ġ", "▁") stands for the space it encodes
            shown = token.removeprefix(quirks.word_marker).strip() or WHITESPACE_TOKEN
        out.append(shown)
    return out
