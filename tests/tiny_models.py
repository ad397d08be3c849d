"""Random-weight tiny models of every supported family, built offline for tests.

``build_tiny_models(root)`` trains a small tokenizer per family with the ``tokenizers`` package, wraps it in
the family's transformers tokenizer class (``tokenizer_object=``), builds a 2-layer / 4-head / hidden-32 model
(hidden 64 for the modern decoder LMs) with seeded random weights and writes both with ``save_pretrained``
(safetensors) under ``root/<key>``.
The result loads through the normal ``AutoTokenizer`` / ``AutoModel*`` / ``pipeline`` code paths with no
network access.

Each tokenizer's normalizer, pre-tokenizer and decoder are set to what the transformers class rebuilds on
``from_pretrained`` (transformers 5 only takes the vocabulary, merges and post-processor from
``tokenizer.json`` for these classes), so the saved tokenizer and the reloaded one encode identically.
Llama, Mistral, Gemma 2 and Phi-3 use ``PreTrainedTokenizerFast`` (saved as ``TokenizersBackend``), which
reloads ``tokenizer.json`` whole, BOS-prepending post-processor included (``add_bos_token`` is not saved, and
reads False after a reload although the BOS is still prepended).
"""

from __future__ import annotations

import functools
import json
import shutil
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


def _byte_level_bpe(specials: list[str], vocab_size: int, pipeline: Tokenizer | None = None) -> Tokenizer:
    """A byte-level BPE trained on ``CORPUS``; ``pipeline`` (a tokenizer whose normalizer, pre-tokenizer and
    decoder a transformers class rebuilds on load) replaces the default GPT-2 pipeline before training."""
    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    if pipeline is not None:
        tok.normalizer = pipeline.normalizer
        tok.pre_tokenizer = pipeline.pre_tokenizer
        tok.decoder = pipeline.decoder
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


# ---- modern decoder LMs ------------------------------------------------------------------------------------
# Each family gets the special tokens of its real hub tokenizer (names, order and whether a BOS is prepended)
# on a byte-level BPE vocabulary; the families whose real tokenizers are SentencePiece (Mistral, Gemma 2,
# Phi-3) are byte-level here too, so their tokens carry "Ġ" although their quirks row says "▁".
DECODER_HIDDEN = 64
DECODER_INTERMEDIATE = 128
DECODER_HEADS = 4
DECODER_KV_HEADS = 2  # grouped-query attention: two query heads share each key/value head
DECODER_POSITIONS = 256
WINDOW = 8  # sliding window (Mistral, Gemma 2), far shorter than the ~30-token test sentences
# Peaked attention: every random weight is drawn 3x larger than transformers' default (initializer_range
# 0.06, not 0.02) and the query/key projections are scaled up 3x again, so a row's largest weight is on
# average 4-10x uniform (~1.05x without the scaling). Gemma 2's query/key projections are scaled 15x
# instead, which puts raw attention logits well beyond attn_logit_softcapping=50: removing the cap moves
# attention weights by up to 0.5 (sliding layer) and 1.0 (global layer).
INIT_RANGE = 0.06
QK_SCALE = 3.0
GEMMA_QK_SCALE = 15.0
# Gemma 2's final RMSNorm gain, so that raw LM logits (~N(0, 40)) exceed final_logit_softcapping=30.
GEMMA_FINAL_NORM_GAIN = 80.0


def _backend_tokenizer(
    specials: list[str], *, bos: str | None, pipeline: Tokenizer | None = None, cls=None, **kwargs
):
    """A transformers tokenizer of class ``cls`` (default ``PreTrainedTokenizerFast``, which transformers 5
    saves as ``TokenizersBackend`` and reloads from ``tokenizer.json`` as is) over a byte-level BPE.

    ``bos``: the token prepended to every sequence (``add_bos_token``), None for families that add nothing.
    """
    from transformers import PreTrainedTokenizerFast

    backend = _byte_level_bpe(specials, vocab_size=600, pipeline=pipeline)
    # Like Llama 3 and Qwen 2: offsets keep the space a "Ġ" piece encodes (trim_offsets=False).
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    cls = cls or PreTrainedTokenizerFast
    if bos is not None:
        kwargs.update(bos_token=bos, add_bos_token=True)
    return cls(tokenizer_object=backend, model_max_length=DECODER_POSITIONS, **kwargs)


def _llama_tokenizer():
    # Llama 3: <|begin_of_text|> prepended, <|end_of_text|> ends a document, no pad or unk token.
    return _backend_tokenizer(
        ["<|begin_of_text|>", "<|end_of_text|>"], bos="<|begin_of_text|>", eos_token="<|end_of_text|>"
    )


def _qwen2_tokenizer():
    from transformers import Qwen2Tokenizer

    # transformers always loads model_type "qwen2" with Qwen2Tokenizer, which rebuilds its own normalizer
    # (NFC), pre-tokenizer (Qwen's split regex, then byte-level) and decoder: train on exactly that pipeline.
    # Like Qwen2.5: nothing prepended, <|endoftext|> is eos and pad.
    return _backend_tokenizer(
        ["<|endoftext|>"],
        bos=None,
        pipeline=Qwen2Tokenizer()._tokenizer,
        cls=Qwen2Tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )


def _mistral_tokenizer():
    # Mistral 7B: <unk>, <s>, </s> at ids 0-2, <s> prepended, no pad token.
    return _backend_tokenizer(["<unk>", "<s>", "</s>"], bos="<s>", eos_token="</s>", unk_token="<unk>")


def _gemma2_tokenizer():
    # Gemma 2: <pad>, <eos>, <bos>, <unk> at ids 0-3 (Gemma2Config's defaults), <bos> prepended.
    return _backend_tokenizer(
        ["<pad>", "<eos>", "<bos>", "<unk>"],
        bos="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def _phi3_tokenizer():
    # Phi-3 mini: the Llama 2 specials plus <|endoftext|> (eos and pad); <s> is its bos token but, as on the
    # hub (add_bos_token false), is not prepended.
    return _backend_tokenizer(
        ["<unk>", "<s>", "</s>", "<|endoftext|>"],
        bos=None,
        bos_token="<s>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
    )


def _gpt_neox_tokenizer():
    from transformers import GPTNeoXTokenizer

    # Pythia: <|endoftext|> (id 0) is bos, eos and unk, <|padding|> (id 1) pads, nothing is prepended.
    # GPTNeoXTokenizer rebuilds its pipeline (NFC, byte-level) and post-processor on load: train on it.
    return _backend_tokenizer(
        ["<|endoftext|>", "<|padding|>"],
        bos=None,
        pipeline=GPTNeoXTokenizer()._tokenizer,
        cls=GPTNeoXTokenizer,
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


def _decoder_common(tok) -> dict:
    return dict(
        vocab_size=len(tok),
        hidden_size=DECODER_HIDDEN,
        intermediate_size=DECODER_INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=DECODER_HEADS,
        max_position_embeddings=DECODER_POSITIONS,
        initializer_range=INIT_RANGE,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


@torch.no_grad()
def _sharpen(model, factor: float = QK_SCALE):
    """Scale every layer's query and key projections (weights and biases) by ``factor``."""
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if name.endswith((".q_proj", ".k_proj")):
            module.weight.mul_(factor)
            if module.bias is not None:
                module.bias.mul_(factor)
        elif name.endswith(".qkv_proj"):  # Phi-3: rows [queries | keys | values]
            cfg = model.config
            qk = (cfg.num_attention_heads + cfg.num_key_value_heads) * (
                cfg.hidden_size // cfg.num_attention_heads
            )
            module.weight[:qk].mul_(factor)
        elif name.endswith(".query_key_value"):  # GPT-NeoX: per head [query | key | value] rows
            heads = model.config.num_attention_heads
            size = module.out_features // (3 * heads)
            module.weight.view(heads, 3, size, -1)[:, :2].mul_(factor)
            module.bias.view(heads, 3, size)[:, :2].mul_(factor)
    return model


@torch.no_grad()
def _random_biases(model):
    """Attention biases start at zero; draw them at random so that a model which has them must use them."""
    for name, param in model.named_parameters():
        if name.endswith("bias") and (".self_attn." in name or ".attention." in name):
            param.normal_(0.0, INIT_RANGE * 4)
    return model


def _llama_model(tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**_decoder_common(tok), num_key_value_heads=DECODER_KV_HEADS)
    return _sharpen(LlamaForCausalLM(config))


def _qwen2_model(tok):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    # q/k/v projections with biases (hard-wired in Qwen2Attention) and tied embeddings, as in Qwen2.5-0.5B.
    config = Qwen2Config(
        **_decoder_common(tok), num_key_value_heads=DECODER_KV_HEADS, tie_word_embeddings=True
    )
    return _sharpen(_random_biases(Qwen2ForCausalLM(config)))


def _mistral_model(tok):
    from transformers import MistralConfig, MistralForCausalLM

    config = MistralConfig(
        **_decoder_common(tok), num_key_value_heads=DECODER_KV_HEADS, sliding_window=WINDOW
    )
    return _sharpen(MistralForCausalLM(config))


def _gemma2_model(tok):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(
        **_decoder_common(tok),
        num_key_value_heads=DECODER_KV_HEADS,
        # head_dim * heads (96) != hidden (64), and scores scale by query_pre_attn_scalar**-0.5 (1/4), not
        # head_dim**-0.5, as in Gemma 2 27B (head_dim 128, query_pre_attn_scalar 144).
        head_dim=24,
        query_pre_attn_scalar=16,
        sliding_window=WINDOW,
        layer_types=["sliding_attention", "full_attention"],
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
    )
    model = _sharpen(Gemma2ForCausalLM(config), GEMMA_QK_SCALE)
    with torch.no_grad():
        model.model.norm.weight.fill_(GEMMA_FINAL_NORM_GAIN - 1.0)  # Gemma's RMSNorm scales by (1 + weight)
    return model


def _phi3_model(tok):
    from transformers import Phi3Config, Phi3ForCausalLM

    # Fused qkv_proj and gate_up_proj; no grouped queries and no sliding window (Phi-3 mini has a 2047-token
    # window over a 4096-token context: the window is exercised by mistral and gemma2 here).
    config = Phi3Config(
        **_decoder_common(tok),
        num_key_value_heads=DECODER_HEADS,
        original_max_position_embeddings=DECODER_POSITIONS,
        sliding_window=None,
    )
    return _sharpen(Phi3ForCausalLM(config))


def _gpt_neox_model(tok):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    # Like Pythia: rotary embedding on a quarter of each head's dimensions (rotary_pct, stored as
    # rope_parameters["partial_rotary_factor"]), parallel residual, biased fused query_key_value, LayerNorm.
    config = GPTNeoXConfig(
        **_decoder_common(tok),
        rotary_pct=0.25,
        rotary_emb_base=10000,
        use_parallel_residual=True,
        attention_bias=True,
        tie_word_embeddings=False,
    )
    return _sharpen(_random_biases(GPTNeoXForCausalLM(config)))


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

    Keys: ``bert``, ``distilbert``, ``albert``, ``roberta`` (masked LMs), ``gpt2`` (causal LM),
    ``bert_encoder`` (a bare ``BertModel`` with the bert tokenizer and no MLM head), and the causal decoder
    LMs ``llama``, ``qwen2``, ``mistral``, ``gemma2``, ``phi3`` and ``gpt_neox`` (each key is the model's
    ``config.model_type``).
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
        decoder_lms = {
            "llama": (_llama_tokenizer, _llama_model),
            "qwen2": (_qwen2_tokenizer, _qwen2_model),
            "mistral": (_mistral_tokenizer, _mistral_model),
            "gemma2": (_gemma2_tokenizer, _gemma2_model),
            "phi3": (_phi3_tokenizer, _phi3_model),
            "gpt_neox": (_gpt_neox_tokenizer, _gpt_neox_model),
        }
        paths = {
            "bert": _save(root / "bert", bert_tok, lambda: _bert_model(bert_tok)),
            "distilbert": _save(root / "distilbert", distil_tok, lambda: _distilbert_model(distil_tok)),
            "albert": _save(root / "albert", albert_tok, lambda: _albert_model(albert_tok)),
            "roberta": _save(root / "roberta", roberta_tok, lambda: _roberta_model(roberta_tok)),
            "gpt2": _save(root / "gpt2", gpt2_tok, lambda: _gpt2_model(gpt2_tok)),
            "bert_encoder": _save(root / "bert_encoder", bert_tok, lambda: _bert_model(bert_tok, head=False)),
        }
        for key, (make_tok, make_model) in decoder_lms.items():
            tok = make_tok()
            paths[key] = _save(root / key, tok, functools.partial(make_model, tok))
        return paths
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


def widen_context(source: Path, dest: Path, context: int) -> Path:
    """A copy of the tiny decoder at ``source`` in ``dest`` whose context is ``context`` positions (its config
    and tokenizer say so; RoPE models keep their weights). An existing ``dest`` is reused as it is."""
    if not dest.exists():
        shutil.copytree(source, dest)
        for name, key in (
            ("config.json", "max_position_embeddings"),
            ("tokenizer_config.json", "model_max_length"),
        ):
            doc = json.loads((dest / name).read_text())
            doc[key] = context
            (dest / name).write_text(json.dumps(doc))
    return dest
