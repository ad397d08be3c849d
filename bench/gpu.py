"""`make bench-gpu`: the GPU figures of DESIGN.md "Performance goals", in one command on a lent GPU machine.

Random-weight models built directly from their configs on the device (nothing is downloaded or saved):

- A Llama-3-8B shape in bfloat16 at 32,768 random token ids: the SDPA forward pass against the analysis
  (the same pass with query/key capture: forward under ``recording()`` and ``recorder.store()``), their
  ratio, one head's 512² mean-pooled picture, one head's last 1,024 rows over all keys, the all-heads
  overview (every head's 64² max-pooled picture), what the captured queries and keys take, and peak device
  memory.
- bert-base-uncased and bert-large shapes in float32 at 512 tokens: SDPA forward, capture analysis and
  eager ``output_attentions=True``.
- A small Llama shape in float32: how far recomputed attention is from eager ``output_attentions``.

Prints ``name: value`` lines, timings are medians after a warm-up with the device synchronised around
each; nothing here asserts a goal (the goals are listed in docs/performance.md). Exits nonzero when
something fails. ``--device cpu --small`` runs the same code on shrunk shapes, to test the script without a
GPU; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from visualizeai.attention import capture
from visualizeai.attention.captured import weights

OVERVIEW_LIMIT_S = 90.0  # the all-heads overview stops here and extrapolates (≈14–20 s measured on an H200)


@dataclass(frozen=True)
class Plan:
    """Shapes and sizes of one run (full, or ``--small`` for testing the script on a CPU)."""

    llama: dict
    n: int
    rows: int  # last rows read as one block
    rounds: int
    bert: dict[str, dict]
    bert_n: int
    bert_rounds: int
    parity: dict
    parity_n: int


LLAMA_8B = dict(  # meta-llama/Meta-Llama-3-8B config.json
    num_hidden_layers=32,
    hidden_size=4096,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    max_position_embeddings=32768,
    rope_theta=500000.0,
)
BERT_BASE = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072)
BERT_LARGE = dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096)
PARITY = dict(  # small, with grouped queries; q/k projections scaled by QK_SCALE so that attention is peaked
    num_hidden_layers=4,
    hidden_size=256,
    num_attention_heads=8,
    num_key_value_heads=2,
    intermediate_size=512,
    vocab_size=1000,
    max_position_embeddings=4096,
)
FULL = Plan(
    llama=LLAMA_8B,
    n=32768,
    rows=1024,
    rounds=5,
    bert={"bert_base": BERT_BASE, "bert_large": BERT_LARGE},
    bert_n=512,
    bert_rounds=20,
    parity=PARITY,
    parity_n=1024,
)
SMALL = Plan(
    llama={**LLAMA_8B, "num_hidden_layers": 2, "hidden_size": 1024, "num_attention_heads": 8,
           "num_key_value_heads": 2, "intermediate_size": 3584, "vocab_size": 32000},
    n=2048,
    rows=256,
    rounds=2,
    bert={name: {**shape, "num_hidden_layers": 2} for name, shape in (("bert_base", BERT_BASE),
                                                                      ("bert_large", BERT_LARGE))},
    bert_n=128,
    bert_rounds=3,
    parity={**PARITY, "num_hidden_layers": 2},
    parity_n=256,
)  # fmt: skip
QK_SCALE = 3.0  # a row's largest weight is then about 8x uniform (1x: near-uniform rows prove little)


def emit(name: str, value: object) -> None:
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


class Clock:
    """Timings on one device: synchronised before and after each call, medians after warm-up calls."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def once(self, call: Callable[[], object]) -> tuple[float, object]:
        """(seconds, result) of one call."""
        self.sync()
        start = time.perf_counter()
        out = call()
        self.sync()
        return time.perf_counter() - start, out

    def median_ms(self, call: Callable[[], object], rounds: int, warmup: int = 1) -> float:
        for _ in range(warmup):
            self.once(call)
        return statistics.median(self.once(call)[0] for _ in range(rounds)) * 1000


def build(model_class, config, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """A random-weight ``model_class(config)`` made directly on ``device`` in ``dtype`` (seeded)."""
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = model_class(config)
    finally:
        torch.set_default_dtype(previous)
    wrong = {str(p.dtype) for p in model.parameters() if p.dtype != dtype}
    if wrong:
        raise RuntimeError(f"{model_class.__name__} was built with parameters in {wrong}, not {dtype}")
    return model.eval()


def forward(model, inputs: dict, **extra):
    return model(**inputs, **extra)


def analysis(model, inputs: dict, **extra):
    """The app's analysis pass: the forward with capture, and the attention store of its text."""
    with capture.recording() as recorder:
        out = model(**inputs, **extra)
    return out, recorder.store()


def check_picture(name: str, picture) -> None:
    if not bool(torch.isfinite(torch.as_tensor(picture)).all()):
        raise RuntimeError(f"{name}: the picture holds NaN or infinite values")


# ---- Llama-3-8B shape at 32k ------------------------------------------------------------------------------


def long_context(plan: Plan, device: torch.device, clock: Clock) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    n, shape = plan.n, plan.llama
    emit(
        "llama_shape", f"{shape['num_hidden_layers']} layers x {shape['num_attention_heads']} heads, bfloat16"
    )
    seconds, model = clock.once(lambda: build(LlamaForCausalLM, LlamaConfig(**shape), device, torch.bfloat16))
    emit("llama_build_s", seconds)
    emit("llama_weights_gb", sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9)
    generator = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(shape["vocab_size"], (1, n), device=device, generator=generator)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    extra = {"use_cache": False, "logits_to_keep": 1}
    sdpa, captured, store = [], [], None
    with torch.inference_mode():
        for i in range(plan.rounds + 1):  # interleaved; the first pair warms up
            store = None
            capture.set_mode(model, "sdpa")
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            fwd, _ = clock.once(lambda: forward(model, inputs, **extra))
            sdpa_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
            capture.set_mode(model, capture.CAPTURE)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds, (_, store) = clock.once(lambda: analysis(model, inputs, **extra))
            if i:
                sdpa.append(fwd)
                captured.append(seconds)
        emit(f"llama_forward_ms_{n}", statistics.median(sdpa) * 1000)
        emit(f"llama_analysis_ms_{n}", statistics.median(captured) * 1000)
        emit(f"llama_analysis_over_forward_{n}", statistics.median(captured) / statistics.median(sdpa))
        emit(f"llama_qk_gb_{n}", store.nbytes / 1e9)
        emit(f"llama_dense_equivalent_gb_{n}", store.dense_nbytes / 1e9)
        if device.type == "cuda":
            emit(f"llama_forward_peak_gb_{n}", sdpa_peak / 1e9)
            emit(f"llama_analysis_peak_gb_{n}", torch.cuda.max_memory_allocated(device) / 1e9)
        read_store(store, plan, clock)
        if device.type == "cuda":
            emit("llama_max_memory_allocated_gb", torch.cuda.max_memory_allocated(device) / 1e9)


def read_store(store, plan: Plan, clock: Clock) -> None:
    """One head's pooled picture and last rows, and the all-heads overview, from the captured store."""
    n = store.n
    heads = [(0, 0), (store.layers // 2, 5 % store.heads), (store.layers - 1, 17 % store.heads)]

    def pooled_ms(pool: str) -> float:
        times = [clock.median_ms(lambda lh=lh: store.pooled(*lh, size=512, pool=pool), 3) for lh in heads]
        check_picture("pooled head", store.pooled(*heads[-1], size=512, pool=pool))
        return statistics.median(times)

    emit(f"llama_pooled_head_ms_{n}", pooled_ms("mean"))
    emit(f"llama_pooled_head_max_ms_{n}", pooled_ms("max"))
    rows = (n - plan.rows, n)
    emit(f"llama_block_rows_ms_{n}", clock.median_ms(lambda: store.block(*heads[-1], rows=rows), 3))
    layer, head = heads[-1]

    def on_device() -> None:
        for _ in weights(store.captured[layer], [head], rows, (0, n)):
            pass

    emit(f"llama_block_rows_device_ms_{n}", clock.median_ms(on_device, 5))
    block = store.block(layer, head, rows=rows)
    sums = block.sum(-1)
    if abs(float(sums.min()) - 1) > 1e-3 or abs(float(sums.max()) - 1) > 1e-3:
        raise RuntimeError(f"rows of a block sum to {sums.min()}..{sums.max()}, not 1")

    # The all-heads overview as the app's server builds it (service.thumbnails), max-pooled to 64².
    every = [(layer, head) for layer in range(store.layers) for head in range(store.heads)]
    done, start = 0, time.perf_counter()
    clock.sync()
    while done < len(every) and time.perf_counter() - start < OVERVIEW_LIMIT_S:
        store.pooled(*every[done], size=64, pool="max")
        done += 1
    clock.sync()
    total = len(every)
    elapsed = time.perf_counter() - start
    emit(f"llama_overview_s_{n}", elapsed * total / done)
    if done < total:
        emit(f"llama_overview_note_{n}", f"extrapolated from {done} of {total} heads in {elapsed:.0f} s")


# ---- BERT shapes at 512 -----------------------------------------------------------------------------------


def bert(plan: Plan, device: torch.device, clock: Clock) -> None:
    for name, shape in plan.bert.items():
        bert_shape(name, shape, plan, device, clock)
        free(device)


def bert_shape(name: str, shape: dict, plan: Plan, device: torch.device, clock: Clock) -> None:
    """SDPA forward, capture analysis and eager ``output_attentions`` of one BERT shape, float32."""
    from transformers import BertConfig, BertModel

    n, rounds = plan.bert_n, plan.bert_rounds
    config = BertConfig(**shape, max_position_embeddings=max(512, n))
    model = build(BertModel, config, device, torch.float32)
    generator = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(config.vocab_size, (1, n), device=device, generator=generator)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.inference_mode():
        capture.set_mode(model, "sdpa")
        sdpa = clock.median_ms(lambda: forward(model, inputs), rounds, warmup=3)
        capture.set_mode(model, capture.CAPTURE)
        captured = clock.median_ms(lambda: analysis(model, inputs), rounds, warmup=3)
        capture.set_mode(model, capture.EAGER)
        eager = clock.median_ms(lambda: forward(model, inputs, output_attentions=True), rounds, warmup=3)
    emit(f"{name}_forward_ms_{n}", sdpa)
    emit(f"{name}_analysis_ms_{n}", captured)
    emit(f"{name}_eager_attentions_ms_{n}", eager)
    emit(f"{name}_analysis_over_forward_{n}", captured / sdpa)


# ---- parity -----------------------------------------------------------------------------------------------


@torch.no_grad()
def sharpen(model, factor: float = QK_SCALE):
    """Scale every layer's query and key projections by ``factor`` (peaked attention)."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith((".q_proj", ".k_proj")):
            module.weight.mul_(factor)
    return model


def parity(plan: Plan, device: torch.device) -> None:
    """Largest absolute difference between eager ``output_attentions`` and the recomputed weights, float32:
    with every layer's output from the recomputed weights (pure recomputation error, as the tests check),
    and with SDPA computing the outputs (adds the SDPA kernel's rounding to the later layers' inputs)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    n = plan.parity_n
    model = sharpen(build(LlamaForCausalLM, LlamaConfig(**plan.parity), device, torch.float32))
    generator = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(plan.parity["vocab_size"], (1, n), device=device, generator=generator)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.inference_mode():
        capture.set_mode(model, capture.EAGER)
        reference = torch.stack(model.model(**inputs, output_attentions=True).attentions)[:, 0].float()
        capture.set_mode(model, capture.CAPTURE)
        for label, eager_output in (("", True), ("_sdpa", False)):
            with capture.recording(eager_output=eager_output) as recorder:
                model.model(**inputs)
            recomputed = torch.from_numpy(recorder.store().dense()).to(device)
            emit(f"parity{label}_max_abs_diff_{n}", float((recomputed - reference).abs().max()))
        causal_row_length = torch.arange(1, n + 1, device=device, dtype=torch.float32)
        peak = float((reference.amax(-1) * causal_row_length).mean())
        emit(f"parity_row_max_over_uniform_{n}", peak)  # how peaked the compared attention is


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--small", action="store_true", help="shrunk shapes, to test the script on a CPU")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; run with --device cpu --small to test the script", file=sys.stderr)
        return 2
    plan = SMALL if args.small else FULL
    clock = Clock(device)
    start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    emit("device", f"{name}{' (small shapes: figures mean nothing)' if args.small else ''}")
    emit("torch", torch.__version__)
    long_context(plan, device, clock)
    free(device)
    bert(plan, device, clock)
    free(device)
    parity(plan, device)
    emit("gpu_bench_total_s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
