"""Random-weight tiny models of every supported family, built offline for tests.

``build_tiny_models(root)`` trains a small tokenizer per family with the ``tokenizers`` package, wraps it in
the family's transformers tokenizer class (``tokenizer_object=``), builds a 2-layer / 4-head / hidden-32 model
with seeded random weights and writes both with ``save_pretrained`` (safetensors) under ``root/<key>``.
The result loads through the normal ``AutoTokenizer`` / ``AutoModel*`` / ``pipeline`` code paths with no
network access.

Each tokenizer's normalizer, pre-tokenizer and decoder are set to what the transformers class rebuilds on
``from_pretrained`` (transformers 5 only takes the vocabulary, merges and post-processor from
``tokenizer.json`` for these classes), so the saved tokenizer and the reloaded one encode identically.
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.implementations import (
    BertWordPieceTokenizer,
    ByteLevelBPETokenizer,
    SentencePieceUnigramTokenizer,
)

HIDDEN = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE = 64
MAX_TOKENS = 128

# Varied English with punctuation, digits, repeated words and "therefore".
CORPUS = [
    "I think, therefore I am.",
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore; the shells she sells are surely sea shells.",
    "Attention is all you need, or so the paper says.",
    "Therefore, the model attends to every token in the sentence.",
    "What is the capital of France? Paris is the capital of France!",
    "The cat sat on the mat, and the dog sat on the log.",
    "In 1905, Einstein published four papers that changed physics forever.",
    "Transformers use self-attention: each head looks at different words.",
    "It was the best of times, it was the worst of times.",
    "To be, or not to be: that is the question.",
    "My phone number is 555-0123, but please don't call after 9 p.m.",
    "The weather today is sunny and warm; tomorrow it will rain.",
    "We visualize attention weights as heatmaps, layer by layer and head by head.",
    'He said "hello" and she replied "goodbye".',
    "Language models predict the next word, and therefore they learn grammar.",
    "A bank can hold money, and a river bank can hold water.",
    "The doctor asked the nurse to help her with the patient.",
    "Colorless green ideas sleep furiously.",
    "Why do we think? Because we are, and therefore we think again and again.",
]


def _wordpiece_vocab() -> dict[str, int]:
    """A deterministic WordPiece vocabulary: specials, ASCII characters, corpus suffixes and corpus words.

    ``BertWordPieceTokenizer.train`` is not deterministic (tie-breaks between equally frequent merges change
    from run to run, even the vocabulary size varies), so the vocabulary is derived from the corpus directly.
    Greedy longest-match WordPiece then splits unseen words into a known word or character plus ``##`` pieces.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: list[str] = []
    for sentence in CORPUS:
        words += [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(sentence))]
    alnum = string.ascii_lowercase + string.digits
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces += sorted(alnum + string.punctuation)
    pieces += ["##" + c for c in sorted(alnum)]
    pieces += sorted({"##" + w[-n:] for w in words if len(w) >= 4 and w.isalpha() for n in (2, 3)})
    pieces += sorted(set(words))
    return {piece: i for i, piece in enumerate(dict.fromkeys(pieces))}


def _bert_backend() -> Tokenizer:
    tok = BertWordPieceTokenizer(_wordpiece_vocab(), lowercase=True)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return tok._tokenizer


def _bert_tokenizer():
    from transformers import BertTokenizer

    return BertTokenizer(tokenizer_object=_bert_backend(), do_lower_case=True, model_max_length=MAX_TOKENS)


def _distilbert_tokenizer():
    from transformers import DistilBertTokenizer

    return DistilBertTokenizer(
        tokenizer_object=_bert_backend(), do_lower_case=True, model_max_length=MAX_TOKENS
    )


def _albert_tokenizer():
    from transformers import AlbertTokenizer

    # Special-token order matches albert-base-v2 (and AlbertTokenizer's hard-coded unk_id=1 on reload).
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    trainer = SentencePieceUnigramTokenizer()
    # The pipeline AlbertTokenizer rebuilds on load (lowercase, accents stripped, Metaspace).
    normalizer = normalizers.Sequence(
        [
            normalizers.Replace("``", '"'),
            normalizers.Replace("''", '"'),
            normalizers.NFKD(),
            normalizers.StripAccents(),
            normalizers.Lowercase(),
        ]
    )
    pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    trainer.normalizer = normalizer
    trainer.pre_tokenizer = pre_tokenizer
    trainer.train_from_iterator(
        CORPUS,
        vocab_size=600,
        special_tokens=specials,
        unk_token="<unk>",
        show_progress=False,
    )
    # The trainer's piece set is stable but its scores are not: sums run in parallel (float noise) and the
    # characters it must keep get near-minimal scores in hash order. Round the scores of multi-character
    # pieces, give every single character (corpus or ASCII) one score below them all, and order the pieces
    # canonically, so that ids and segmentations are identical from run to run.
    trained = json.loads(trainer._tokenizer.to_str())["model"]["vocab"]
    scores = {piece: round(score, 4) for piece, score in trained if piece not in specials and len(piece) > 1}
    floor = min(scores.values()) - 1.0
    chars = {piece for piece, _ in trained if piece not in specials and len(piece) == 1}
    for char in chars | set(string.ascii_lowercase + string.digits + string.punctuation):
        scores[char] = floor
    vocab = [(piece, 0.0) for piece in specials]
    vocab += sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    tok = Tokenizer(models.Unigram(vocab, unk_id=specials.index("<unk>"), byte_fallback=False))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    # Like albert-base-v2: [MASK] swallows the space before it.
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, normalized=False, special=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return AlbertTokenizer(
        tokenizer_object=tok, do_lower_case=True, keep_accents=False, model_max_length=MAX_TOKENS
    )


def _byte_level_bpe(specials: list[str], vocab_size: int) -> Tokenizer:
    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    tok.train_from_iterator(
        CORPUS, vocab_size=vocab_size, min_frequency=1, special_tokens=specials, show_progress=False
    )
    return tok._tokenizer


def _roberta_tokenizer():
    from transformers import RobertaTokenizer

    backend = _byte_level_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], vocab_size=600)
    # Like roberta-base: <mask> swallows the space before it ("a <mask>." -> "a", "<mask>", ".").
    backend.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    backend.post_processor = processors.RobertaProcessing(
        ("</s>", backend.token_to_id("</s>")),
        ("<s>", backend.token_to_id("<s>")),
        trim_offsets=True,
        add_prefix_space=False,
    )
    return RobertaTokenizer(
        tokenizer_object=backend,
        model_max_length=MAX_TOKENS,
    )


def _gpt2_tokenizer():
    from transformers import GPT2Tokenizer

    backend = _byte_level_bpe(["<|endoftext|>"], vocab_size=600)
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return GPT2Tokenizer(
        tokenizer_object=backend,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=MAX_TOKENS,
    )


def _bert_model(tok, *, head: bool = True):
    from transformers import BertConfig, BertForMaskedLM, BertModel

    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=tok.pad_token_id,
    )
    return BertForMaskedLM(config) if head else BertModel(config, add_pooling_layer=True)


def _distilbert_model(tok):
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    config = DistilBertConfig(
        vocab_size=len(tok),
        dim=HIDDEN,
        n_layers=LAYERS,
        n_heads=HEADS,
        hidden_dim=INTERMEDIATE,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=tok.pad_token_id,
    )
    return DistilBertForMaskedLM(config)


def _albert_model(tok):
    from transformers import AlbertConfig, AlbertForMaskedLM

    config = AlbertConfig(
        vocab_size=len(tok),
        embedding_size=16,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
    )
    return AlbertForMaskedLM(config)


def _roberta_model(tok):
    from transformers import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        # RoBERTa position ids start at pad_token_id + 1, so 128 tokens need 130 positions (like 514 for 512).
        max_position_embeddings=MAX_TOKENS + 2,
        type_vocab_size=1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return RobertaForMaskedLM(config)


def _gpt2_model(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=HIDDEN,
        n_layer=LAYERS,
        n_head=HEADS,
        n_inner=INTERMEDIATE,
        n_positions=MAX_TOKENS,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return GPT2LMHeadModel(config)


def _save(path: Path, tok, make_model: Callable[[], torch.nn.Module]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = make_model()
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def build_tiny_models(root: Path) -> dict[str, Path]:
    """Build every tiny model under ``root`` and return ``{key: directory}``.

    Keys: ``bert``, ``distilbert``, ``albert``, ``roberta`` (masked LMs), ``gpt2`` (causal LM) and
    ``bert_encoder`` (a bare ``BertModel`` with the bert tokenizer and no MLM head).
    """
    from transformers.utils import logging as hf_logging

    root = Path(root)
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # save_pretrained draws a "Writing model shards" bar per model
    try:
        bert_tok = _bert_tokenizer()
        distil_tok = _distilbert_tokenizer()
        albert_tok = _albert_tokenizer()
        roberta_tok = _roberta_tokenizer()
        gpt2_tok = _gpt2_tokenizer()
        return {
            "bert": _save(root / "bert", bert_tok, lambda: _bert_model(bert_tok)),
            "distilbert": _save(root / "distilbert", distil_tok, lambda: _distilbert_model(distil_tok)),
            "albert": _save(root / "albert", albert_tok, lambda: _albert_model(albert_tok)),
            "roberta": _save(root / "roberta", roberta_tok, lambda: _roberta_model(roberta_tok)),
            "gpt2": _save(root / "gpt2", gpt2_tok, lambda: _gpt2_model(gpt2_tok)),
            "bert_encoder": _save(root / "bert_encoder", bert_tok, lambda: _bert_model(bert_tok, head=False)),
        }
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()


if __name__ == "__main__":  # pragma: no cover - manual timing helper
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = build_tiny_models(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp))
        print(f"built {len(paths)} tiny models in {time.perf_counter() - start:.2f}s")
        for key, path in paths.items():
            print(key, path)
