"""Long context on the CPU: a random-weight Qwen2-0.5B-shaped model at 4,096 tokens, float32.

Measured against DESIGN.md "Performance goals" (long context, CPU): the full analysis (``analyze_text``:
tokenize, forward with query/key capture, next-token predictions, result) against the bare SDPA forward pass
(``model(**inputs, use_cache=False, logits_to_keep=1)``, tokenizing not counted), interleaved round by round
so that drift in the machine's speed hits both alike; one head's 512² max-pooled picture over all 4,096²
cells; every head's 64² max-pooled thumbnail; what the store holds against dense float32 attention; and the
process's peak RSS over the model's weights.

The checkpoint (24 layers, hidden 896, 14 heads, 2 KV heads, vocabulary 151,936, tied embeddings: about 2 GB
of float32 weights) is built in a child process and saved into a temp dir with a small byte-level BPE
tokenizer trained here, so that this process's peak RSS counts only what the app does: ``load_model`` (the
app's loading path and capture self-check) and the analyses. Prints ``name: value`` lines; asserts no goal.
``bench/run.py`` runs this file as a subprocess; run it alone with ``.venv/bin/python bench/long_context.py``.
"""

from __future__ import annotations

import gc
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from texts import exact_text, single_token_words  # noqa: E402

N = 4096
# Timed forward/analysis pairs after one untimed warm-up pair: on 2 idle cores a forward pass at 4,096 tokens
# takes about half a minute, so this keeps the whole run near 4 minutes.
ROUNDS = 2
POOLED_HEADS = ((0, 0), (5, 3), (11, 7), (17, 10), (23, 13))  # (layer, head) pairs timed for one picture
PICTURE, THUMBNAIL = 512, 64
# Every head's thumbnail costs the same (same n, same mask): past this many seconds the rest is extrapolated.
THUMBNAILS_LIMIT_S = 30.0
EAGER_N = 1024  # eager output_attentions, for contrast (1.4 GB of float32 weights)
SHAPE = dict(  # Qwen2-0.5B (Qwen/Qwen2-0.5B config.json)
    num_hidden_layers=24,
    hidden_size=896,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=151936,
    max_position_embeddings=32768,
    tie_word_embeddings=True,
)
TOKENIZER_VOCAB = 2000  # the trained tokenizer's size; its ids all fall inside the model's vocabulary
SPECIALS = ["<|endoftext|>"]
MODEL_ID = "qwen2-0.5b-shape"


# ---- the checkpoint, built in a child process --------------------------------------------------------------


def pseudo_words(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct pronounceable lower-case words of 2–4 syllables, in a fixed order."""
    rng = random.Random(seed)
    onsets, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words: dict[str, None] = {}
    while len(words) < count:
        syllables = rng.randint(2, 4)
        words["".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))] = None
    return list(words)


def train_tokenizer():
    """A Qwen2 tokenizer over a byte-level BPE trained on sentences of pseudo-words (under a second)."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import Qwen2Tokenizer

    words = pseudo_words(600)
    rng = random.Random(1)
    corpus = [" ".join(rng.choices(words, k=12)) + "." for _ in range(3000)]
    # transformers loads model_type "qwen2" with Qwen2Tokenizer, which rebuilds its own normalizer,
    # pre-tokenizer and decoder: train on exactly that pipeline so that the saved tokenizer encodes the same.
    pipeline = Qwen2Tokenizer()._tokenizer
    backend = ByteLevelBPETokenizer(add_prefix_space=False)
    backend.normalizer = pipeline.normalizer
    backend.pre_tokenizer = pipeline.pre_tokenizer
    backend.decoder = pipeline.decoder
    backend.train_from_iterator(
        corpus, vocab_size=TOKENIZER_VOCAB, min_frequency=1, special_tokens=SPECIALS, show_progress=False
    )
    backend = backend._tokenizer
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return Qwen2Tokenizer(
        tokenizer_object=backend,
        model_max_length=SHAPE["max_position_embeddings"],
        eos_token=SPECIALS[0],
        pad_token=SPECIALS[0],
        unk_token=None,
    )


def build_checkpoint(directory: Path) -> None:
    """Save the random-weight model (seeded) and the tokenizer into ``directory`` (safetensors)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = train_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(
        **SHAPE, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, dtype="float32"
    )
    Qwen2ForCausalLM(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)


# ---- measuring ---------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def emit(name: str, value: object) -> None:
    """Print one ``name: value`` line (run.py parses and re-emits them)."""
    if isinstance(value, float):
        value = f"{value:.3g}" if value < 10 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def encode(loaded, text: str, n: int) -> dict[str, torch.Tensor]:
    inputs = {k: v.to(loaded.device) for k, v in loaded.tokenizer(text, return_tensors="pt").items()}
    if inputs["input_ids"].shape[1] != n:
        raise RuntimeError(f"the text has {inputs['input_ids'].shape[1]} tokens, not {n}")
    return inputs


def forward_seconds(loaded, inputs: dict, implementation: str, **extra) -> float:
    """Seconds of one forward pass as transformers runs it, next-token logits only (tokenizing not
    counted), with the model switched to ``implementation`` ("sdpa" or "eager") and back to capture after."""
    from visualizeai.attention import capture

    capture.set_mode(loaded.model, implementation)
    try:
        with torch.inference_mode():
            seconds, out = timed(lambda: loaded.model(**inputs, use_cache=False, logits_to_keep=1, **extra))
    finally:
        capture.set_mode(loaded.model, capture.CAPTURE)
    if extra.get("output_attentions") and not out.attentions:
        raise RuntimeError(f"{implementation} attention returned no weights")
    return seconds


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build_checkpoint(Path(sys.argv[2]))
        return 0
    from transformers.utils import logging as hf_logging

    from visualizeai.models.catalog import ModelSpec
    from visualizeai.models.inference import analyze_text
    from visualizeai.models.loading import load_model, model_bytes

    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="visualizeai-long-") as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build", tmp], check=True)
        emit("long_build_s", time.perf_counter() - start)
        spec = ModelSpec(MODEL_ID, "local", tmp, kind="causal-lm", display_name="Qwen2-0.5B shape (random)")
        seconds, loaded = timed(lambda: load_model(spec, device="cpu", dtype="float32", offline=True))
    emit(
        "long_model",
        f"{MODEL_ID}: {SHAPE['num_hidden_layers']} layers x {SHAPE['num_attention_heads']} heads",
    )
    emit("long_torch_threads", torch.get_num_threads())
    emit("long_load_s", seconds)
    emit("long_attention_mode", loaded.attention_mode)
    if loaded.attention_mode != "captured":
        print(f"error: the self-check left the model dense: {loaded.attention_check.reason}", file=sys.stderr)
        return 1
    weights = model_bytes(loaded)
    emit("long_weights_mb", weights / 2**20)
    emit("long_rss_after_load_mb", peak_rss_mb())

    words = single_token_words(loaded.tokenizer)
    texts = [exact_text(loaded.tokenizer, N, seed, words) for seed in range(ROUNDS + 1)]
    forward, analysis = [], []
    result = None
    for i, text in enumerate(texts):  # the first pair warms up
        result = None  # a server would cache it; here one analysis at a time is measured
        gc.collect()
        fwd = forward_seconds(loaded, encode(loaded, text, N), "sdpa")
        seconds, result = timed(lambda text=text: analyze_text(loaded, text, max_tokens=N))
        assert result.n == N and result.attention.mode == "captured", (result.n, result.attention.mode)
        if i == 0:
            emit("long_warmup_forward_ms_4096", fwd * 1000)
            emit("long_warmup_analysis_ms_4096", seconds * 1000)
        else:
            forward.append(fwd)
            analysis.append(seconds)
    emit("long_forward_ms_4096", statistics.median(forward) * 1000)
    emit("long_analysis_ms_4096", statistics.median(analysis) * 1000)
    emit("long_analysis_over_forward_4096", statistics.median(analysis) / statistics.median(forward))

    store = result.attention
    store.pooled(*POOLED_HEADS[0], size=PICTURE, pool="max")  # warm-up
    pooled = [timed(lambda lh=lh: store.pooled(*lh, size=PICTURE, pool="max"))[0] for lh in POOLED_HEADS]
    emit("long_pooled_head_ms_4096", statistics.median(pooled) * 1000)
    every = [(layer, head) for layer in range(store.layers) for head in range(store.heads)]
    done, start = 0, time.perf_counter()
    while done < len(every) and time.perf_counter() - start < THUMBNAILS_LIMIT_S:
        store.pooled(*every[done], size=THUMBNAIL, pool="max")
        done += 1
    elapsed = time.perf_counter() - start
    emit("long_all_heads_thumbnails_s_4096", elapsed * len(every) / done)
    if done < len(every):
        note = f"extrapolated from {done} of {len(every)} heads in {elapsed:.0f} s"
        emit("long_all_heads_thumbnails_note_4096", note)
    emit("long_attention_mb_4096", store.nbytes / 2**20)
    emit("long_dense_equivalent_mb_4096", store.dense_nbytes / 2**20)
    peak = peak_rss_mb()
    emit("long_peak_rss_mb", peak)
    emit("long_rss_over_weights_gb", (peak * 2**20 - weights) / 2**30)

    # For contrast, after the peak was read: eager attention keeps every weight (1.4 GB at 1,024 tokens).
    result = store = None
    gc.collect()
    eager_text = exact_text(loaded.tokenizer, EAGER_N, 0, words)
    inputs = encode(loaded, eager_text, EAGER_N)
    emit(f"long_forward_ms_{EAGER_N}", forward_seconds(loaded, inputs, "sdpa") * 1000)
    emit(
        f"long_eager_attentions_ms_{EAGER_N}",
        forward_seconds(loaded, inputs, "eager", output_attentions=True) * 1000,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
