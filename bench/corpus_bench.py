"""Corpus pipeline throughput against the bare batched forward pass, on the embedded model, same texts.

The bare pass is what a person would write by hand: batches of ``BATCH`` texts sorted by length over the whole
set, ``tokenizer(batch, padding=True)`` and ``model(**enc)`` with SDPA attention (the pipeline's models run
SDPA and capture queries and keys; eager ``output_attentions=True`` would be a slower reference), nothing
else, all CPUs.
The corpus pipeline (``visualizeai.corpus.runner``) additionally computes and writes every head statistic,
through a Ray Data actor. Its fixed costs are stated separately: starting Ray once, and per run starting the
actor and loading the model into it, measured by a run on a one-text corpus. The pipeline's rate is its texts
over the time of the full run less that of the one-text run (Ray Data hands a window's rows to the driver only
once the next window is done, so arrival times cannot tell when the worker was ready). Bare, one-text and full
runs alternate ``ROUNDS`` times, and the median ratio is reported with its min and max: on a shared machine
the load of other processes changes from one second to the next. ``corpus_worker_compute_ratio`` is the
steadiest number: the bare pass against the worker's own computation on the same windows, alternating window
by window in one process (Ray adds to it only the per-batch overhead).

``run()`` returns ``(name, value)`` pairs; run this file alone to print them.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from visualizeai.attention.capture import CAPTURE, EAGER, set_mode
from visualizeai.config import Settings
from visualizeai.corpus import runner
from visualizeai.corpus.batching import length_batches
from visualizeai.models.catalog import Catalog, load_rows
from visualizeai.models.loading import load_model

sys.path.insert(0, str(Path(__file__).parent))
from texts import exact_text, single_token_words  # noqa: E402

TEXTS = 384
BATCH = 32
WINDOW = runner.WINDOW_BATCHES * BATCH  # the pipeline's default window
ROUNDS = 3
SHORTEST, LONGEST = 16, 128  # tokens per text, specials included
NOOP_BLOCKS = 24
TARGET = 0.8


def bench_texts(tokenizer) -> list[str]:
    words = single_token_words(tokenizer)
    rng = random.Random(0)
    return [exact_text(tokenizer, rng.randint(SHORTEST, LONGEST), seed, words) for seed in range(TEXTS)]


def bare_forward_s(loaded, texts: list[str]) -> float:
    """Seconds for tokenizing and running ``texts`` through the encoder with SDPA attention in length-sorted
    padded batches (the model is switched back to the attention it was loaded with after)."""
    lengths = [len(ids) for ids in loaded.tokenizer(texts)["input_ids"]]
    batches = [[texts[i] for i in b] for b in length_batches(lengths, BATCH)]
    loaded_with = CAPTURE if loaded.attention_mode == "captured" else EAGER
    set_mode(loaded.model, "sdpa")
    try:
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                enc = loaded.tokenizer(batch, padding=True, return_tensors="pt")
                loaded.encoder(**enc)
        return time.perf_counter() - start
    finally:
        set_mode(loaded.model, loaded_with)


class _Noop:
    def __call__(self, batch):
        return batch


def per_block_overhead_ms(blocks: int) -> float:
    """Ray Data cost of one more task (window) through an actor pool, from a no-op UDF on K vs 1 blocks."""
    import pyarrow as pa
    import ray.data
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file by name

    def run(k: int) -> float:
        tables = [pa.table({"text_index": np.arange(BATCH), "text": ["x"] * BATCH}) for _ in range(k)]
        start = time.perf_counter()
        ds = ray.data.from_arrow(tables).map_batches(
            _Noop,
            batch_size=None,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=1,
        )
        for _ in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            pass
        return time.perf_counter() - start

    run(1)  # warm-up
    one, many = statistics.median(run(1) for _ in range(3)), statistics.median(run(blocks) for _ in range(3))
    return (many - one) / (blocks - 1) * 1000


def interleaved_compute_ratio(loaded, texts: list[str]) -> float:
    """Bare forward time over the worker's whole computation (``process_texts``: tokenize, sort, forward,
    statistics, Arrow rows) for the same windows, alternating window by window in this process: the extra
    work of the pipeline without Ray, measured so that load changes hit both sides alike."""
    from visualizeai.corpus.worker import process_texts

    bare = work = 0.0
    for start in range(0, len(texts), WINDOW):
        window = texts[start : start + WINDOW]
        bare += bare_forward_s(loaded, window)
        t = time.perf_counter()
        process_texts(loaded, np.arange(len(window)), window, BATCH)
        work += time.perf_counter() - t
    return bare / work


def run() -> list[tuple[str, object]]:
    cpus = os.cpu_count() or 1
    torch.set_num_threads(cpus)
    settings = Settings(offline=True)
    spec = Catalog(load_rows(), ()).resolve(settings.default_model)
    loaded = load_model(spec, offline=True, device="cpu")
    texts = bench_texts(loaded.tokenizer)
    bare_forward_s(loaded, texts[:BATCH])  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_file, one_file = tmp / "texts.txt", tmp / "one.txt"
        corpus_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
        one_file.write_text(texts[0] + "\n", encoding="utf-8")

        def pipeline(path: Path, name: str) -> runner.CorpusReport:
            options = runner.CorpusOptions(
                input=path, out=tmp / name, batch_size=BATCH, window=WINDOW, progress=False
            )
            return runner.run_corpus(options, settings)

        start = time.perf_counter()
        started = runner.start_ray(None, cpus)
        ray_start = time.perf_counter() - start
        try:
            bare = [bare_forward_s(loaded, texts)]
            fixed, full = [], []
            for i in range(ROUNDS):
                fixed.append(pipeline(one_file, f"one{i}"))
                full.append(pipeline(corpus_file, f"all{i}"))
                bare.append(bare_forward_s(loaded, texts))
            overhead = per_block_overhead_ms(NOOP_BLOCKS)
            compute_ratio = interleaved_compute_ratio(loaded, texts)
        finally:
            if started:
                import ray

                ray.shutdown()
    bare_rates = [TEXTS / s for s in bare]
    rates, ratios, end_to_end = [], [], []
    for i, (one, report) in enumerate(zip(fixed, full, strict=True)):
        around = (bare_rates[i] + bare_rates[i + 1]) / 2  # the bare pass just before and just after
        rates.append(TEXTS / max(report.process_s - one.process_s, 1e-9))
        ratios.append(rates[-1] / around)
        end_to_end.append(TEXTS / report.total_s / around)
    return [
        ("corpus_texts", TEXTS),
        ("corpus_batch_size", BATCH),
        ("corpus_bare_forward_texts_per_s", statistics.median(bare_rates)),
        ("corpus_pipeline_texts_per_s", statistics.median(rates)),
        ("corpus_throughput_ratio", statistics.median(ratios)),
        ("corpus_throughput_ratio_min", min(ratios)),
        ("corpus_throughput_ratio_max", max(ratios)),
        ("corpus_end_to_end_ratio", statistics.median(end_to_end)),
        ("corpus_worker_compute_ratio", compute_ratio),
        ("corpus_ray_start_s", ray_start),
        ("corpus_worker_start_s", statistics.median(one.process_s for one in fixed)),
        ("corpus_per_batch_overhead_ms", overhead),
    ]


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = run()
    for name, value in results:
        print(f"{name}: {value:.3g}" if isinstance(value, float) else f"{name}: {value}", flush=True)
    ratio = dict(results)["corpus_throughput_ratio"]
    print(f"corpus_throughput_ratio target ≥ {TARGET}: {'met' if ratio >= TARGET else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
