"""Per-architecture differences, kept as data (keyed by ``config.model_type``), never as name checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quirks:
    """What differs between architectures.

    Attributes:
        position_offset: positions the model reserves before the first real one (RoBERTa pads with 2).
        word_marker: the prefix a tokenizer puts on word-initial pieces ("Ġ", "▁") or on
            continuation pieces ("##"), for display.
        marker_starts_word: True when ``word_marker`` marks a word start rather than a continuation.
    """

    position_offset: int = 0
    word_marker: str = "##"
    marker_starts_word: bool = False


QUIRKS: dict[str, Quirks] = {
    "bert": Quirks(),
    "distilbert": Quirks(),
    "electra": Quirks(),
    "albert": Quirks(word_marker="▁", marker_starts_word=True),
    "xlnet": Quirks(word_marker="▁", marker_starts_word=True),
    "camembert": Quirks(position_offset=2, word_marker="▁", marker_starts_word=True),
    "xlm-roberta": Quirks(position_offset=2, word_marker="▁", marker_starts_word=True),
    "roberta": Quirks(position_offset=2, word_marker="Ġ", marker_starts_word=True),
    "gpt2": Quirks(word_marker="Ġ", marker_starts_word=True),
    "gpt_neo": Quirks(word_marker="Ġ", marker_starts_word=True),
    # Decoder LMs, by the convention of the family's hub tokenizers: byte-level BPE (Llama 3 and SmolLM2,
    # Qwen2, Pythia) or SentencePiece BPE (Mistral 7B v0.3, Gemma 2, Phi-3 mini).
    "llama": Quirks(word_marker="Ġ", marker_starts_word=True),
    "qwen2": Quirks(word_marker="Ġ", marker_starts_word=True),
    "gpt_neox": Quirks(word_marker="Ġ", marker_starts_word=True),
    "mistral": Quirks(word_marker="▁", marker_starts_word=True),
    "gemma2": Quirks(word_marker="▁", marker_starts_word=True),
    "phi3": Quirks(word_marker="▁", marker_starts_word=True),
}


def quirks_for(model_type: str) -> Quirks:
    """Quirks of a ``config.model_type``; unknown types get WordPiece-like defaults."""
    return QUIRKS.get(model_type, Quirks())
