"""Corpus pipeline throughput against the bare batched forward pass, on the embedded model, same texts.

The bare pass is what a person would write by hand: batches of ``BATCH`` texts sorted by length over the whole
set, ``tokenizer(batch, padding=True)`` and ``model(**enc)`` with SDPA attention (the pipeline's models run
SDPA and capture queries and keys; eager ``output_attentions=True`` would be a slower reference), nothing
else, all CPUs.
The corpus pipeline (``visualizeai.corpus.runner``) additionally computes and writes every head statistic,
through a Ray actor. Its fixed costs are stated separately (starting Ray once; per run, starting the actor and
loading the model into it, ``CorpusReport.worker_start_s``); its rate is its texts over
``CorpusReport.process_s``, from the first block submitted to the last shard written. Bare and pipeline runs
alternate ``ROUNDS`` times, and the median ratio is reported with its min and max: on a shared machine the
load of other processes changes from one second to the next. ``corpus_worker_compute_ratio`` is the steadiest
number: the bare pass against the worker's own computation on the same blocks, alternating block by block in
one process (Ray adds to it only the per-block overhead).

``node_scaling`` runs the pipeline on Ray's local cluster utility (``ray.cluster_utils.Cluster``: separate
raylets on this machine) with one node and one worker, then two nodes and two workers, one CPU each.

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
BLOCK = runner.BLOCK_BATCHES * BATCH  # the pipeline's default block
ROUNDS = 3
SHORTEST, LONGEST = 16, 128  # tokens per text, specials included
NOOP_BLOCKS = 24
SCALING_TEXTS = 1536
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
    def process(self, task, indices, texts, options):
        return task, "", None


def per_block_overhead_ms(blocks: int) -> float:
    """Ray's cost of one more block through an actor, from a no-op actor method called K times vs once."""
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file by name
    runner.release_workers()  # the pipeline's kept workers hold every CPU
    actor = ray.remote(_Noop).options(num_cpus=1).remote()
    texts = ["x"] * BLOCK

    def run(k: int) -> float:
        start = time.perf_counter()
        ray.get([actor.process.remote(i, np.arange(BLOCK), texts, {}) for i in range(k)])
        return time.perf_counter() - start

    run(1)  # warm-up
    one, many = statistics.median(run(1) for _ in range(3)), statistics.median(run(blocks) for _ in range(3))
    ray.kill(actor)
    return (many - one) / (blocks - 1) * 1000


def interleaved_compute_ratio(loaded, texts: list[str]) -> float:
    """Bare forward time over the worker's whole computation (``process_texts``: tokenize, sort, forward,
    statistics, Arrow rows) for the same blocks, alternating block by block in this process: the extra
    work of the pipeline without Ray, measured so that load changes hit both sides alike."""
    from visualizeai.corpus.worker import process_texts

    bare = work = 0.0
    for start in range(0, len(texts), BLOCK):
        block = texts[start : start + BLOCK]
        bare += bare_forward_s(loaded, block)
        t = time.perf_counter()
        process_texts(loaded, np.arange(len(block)), block, batch_size=BATCH)
        work += time.perf_counter() - t
    return bare / work


def run() -> list[tuple[str, object]]:
    from visualizeai.corpus import cluster

    cpus = os.cpu_count() or 1
    torch.set_num_threads(cpus)
    # Ray starts its workers at niceness 15; the bare pass runs in this process at 0. Compare like with like.
    os.environ.setdefault("RAY_worker_niceness", "0")
    settings = Settings(offline=True)
    spec = Catalog(load_rows(), ()).resolve(settings.default_model)
    loaded = load_model(spec, offline=True, device="cpu")
    texts = bench_texts(loaded.tokenizer)
    bare_forward_s(loaded, texts[:BATCH])  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_file = tmp / "texts.txt"
        corpus_file.write_text("\n".join(texts) + "\n", encoding="utf-8")

        def pipeline(name: str) -> runner.CorpusReport:
            options = runner.CorpusOptions(
                input=corpus_file, out=tmp / name, batch_size=BATCH, block=BLOCK, progress=False
            )
            return runner.run_corpus(options, settings)

        start = time.perf_counter()
        with cluster.start_ray(None, cpus):
            ray_start = time.perf_counter() - start
            bare = [bare_forward_s(loaded, texts)]
            full = []
            for i in range(ROUNDS):
                full.append(pipeline(f"all{i}"))
                bare.append(bare_forward_s(loaded, texts))
            overhead = per_block_overhead_ms(NOOP_BLOCKS)
            compute_ratio = interleaved_compute_ratio(loaded, texts)
    bare_rates = [TEXTS / s for s in bare]
    rates, ratios, end_to_end = [], [], []
    for i, report in enumerate(full):
        around = (bare_rates[i] + bare_rates[i + 1]) / 2  # the bare pass just before and just after
        rates.append(TEXTS / max(report.process_s, 1e-9))
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
        ("corpus_worker_start_s", statistics.median(r.worker_start_s for r in full)),
        ("corpus_per_batch_overhead_ms", overhead),
        *node_scaling(),
    ]


def node_scaling() -> list[tuple[str, object]]:
    """Texts/s of the pipeline on one node with one worker, then two nodes with two workers (one CPU
    each), on Ray's local cluster utility; the second over the first is the scaling."""
    import ray
    from ray.cluster_utils import Cluster

    from visualizeai.corpus.cluster import use_own_token

    use_own_token()
    settings = Settings(offline=True)
    spec = Catalog(load_rows(), ()).resolve(settings.default_model)
    loaded = load_model(spec, offline=True, device="cpu")
    texts = (bench_texts(loaded.tokenizer) * (SCALING_TEXTS // TEXTS + 1))[:SCALING_TEXTS]
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_file = tmp / "texts.txt"
        corpus_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
        for nodes in (1, 2):
            local = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
            try:
                for _ in range(nodes - 1):
                    local.add_node(num_cpus=1)
                local.wait_for_nodes()
                ray.init(address=local.address, log_to_driver=False, logging_level="ERROR")
                options = runner.CorpusOptions(
                    input=corpus_file,
                    out=tmp / f"nodes{nodes}",
                    batch_size=BATCH,
                    block=BLOCK,
                    num_workers=nodes,
                    progress=False,
                )
                report = runner.run_corpus(options, settings)
                rates[nodes] = (SCALING_TEXTS / report.process_s, len(report.nodes))
            finally:
                ray.shutdown()
                local.shutdown()
    return [
        ("corpus_one_node_texts_per_s", rates[1][0]),
        ("corpus_two_nodes_texts_per_s", rates[2][0]),
        ("corpus_two_nodes_used", rates[2][1]),
        ("corpus_scaling_two_over_one_node", rates[2][0] / rates[1][0]),
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
