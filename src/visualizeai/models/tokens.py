"""Human-readable token strings: the text a token covers, or its vocabulary form without subword markers."""

from __future__ import annotations

import codecs
import functools
import json

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


# ---- what the model saw: each token's vocabulary form decoded for people ----------------------------------

BYTE_ESCAPE = "visualizeai-byte-escape"


def _escape_bytes(err: UnicodeDecodeError) -> tuple[str, int]:
    return "".join(f"<0x{b:02X}>" for b in err.object[err.start : err.end]), err.end


codecs.register_error(BYTE_ESCAPE, _escape_bytes)


def token_scheme(tokenizer) -> str:
    """How the tokenizer writes its vocabulary: ``byte-level`` (GPT-2, RoBERTa, Llama 3, Qwen2: every byte
    mapped to a printable character), ``sentencepiece`` ("▁" for spaces, ``<0xNN>`` byte fallback),
    ``wordpiece`` ("##" on continuations) or ``other``; read from the fast tokenizer's decoder."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.decoder is None:
        return "other"
    decoder = json.loads(backend.decoder.__getstate__())  # the decoder's own JSON, not the whole vocabulary
    kinds = set()

    def walk(node: dict) -> None:
        kinds.add(node.get("type"))
        if node.get("type") == "Replace" and "▁" in json.dumps(node.get("pattern", {}), ensure_ascii=False):
            kinds.add("Metaspace")
        for child in node.get("decoders") or []:
            walk(child)

    walk(decoder)
    if "ByteLevel" in kinds:
        return "byte-level"
    if kinds & {"Metaspace", "ByteFallback"}:
        return "sentencepiece"
    if "WordPiece" in kinds:
        return "wordpiece"
    return "other"


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """The byte-level alphabet's inverse: printable character → the byte it stands for (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def readable_token(raw: str, scheme: str) -> str:
    """A token's vocabulary form as readable text: byte-level tokens decoded from their bytes (bytes that do
    not complete a UTF-8 character become ``<0xE2>``-style escapes), "##" and "▁" markers turned back into
    what they mean. The characters are what the model saw, which can differ from the text the token covers
    (``[UNK]``, accents stripped, lowercasing)."""
    if scheme == "byte-level":
        table = _byte_decoder()
        if all(c in table for c in raw):
            return bytes(table[c] for c in raw).decode("utf-8", errors=BYTE_ESCAPE)
        return raw  # an added token written as itself
    if scheme == "wordpiece":
        return raw.removeprefix("##")
    if scheme == "sentencepiece":
        return raw.replace("▁", " ")
    return raw
