"""Corpus-scale head statistics: readers, batching, padding invariance, the Ray pipeline, resumability.

One local Ray (2 CPUs) is shared by the whole module, and so is the worker it keeps between runs; runs that
need no Ray (readers, batching, padding, windows) do not touch it. The driver-kill test and the missing-extra
test run the command line in a subprocess.
"""

from __future__ import annotations

import glob
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from visualizeai import derived
from visualizeai.analysis.head_stats import STAT_NAMES, head_statistics_from_store
from visualizeai.attention.capture import recording
from visualizeai.cli import main
from visualizeai.config import Settings
from visualizeai.corpus import batching, cluster, extremes, qk_sample, reader, runner, summary
from visualizeai.corpus import stats as device_stats
from visualizeai.corpus.worker import batch_statistics, forward_stores, process_texts, text_bytes
from visualizeai.errors import InputError
from visualizeai.models.catalog import Catalog, load_rows
from visualizeai.models.inference import analyze_text
from visualizeai.models.loading import load_model

pytestmark = pytest.mark.models

FAMILIES = ["bert", "distilbert", "albert", "roberta", "gpt2"]
# grouped queries (llama, qwen2, mistral), sliding windows (mistral, gemma2), soft-capping (gemma2), fused qkv
DECODERS = ["llama", "qwen2", "mistral", "gemma2", "phi3", "gpt_neox"]
WORDS = (
    "the cat sat on a mat , and the dog ran far away . why ? because it was tired ! "
    "attention is all you need ; therefore I think [MASK] words"
).split()
TINY_TEXTS = 300
SHARD = 64


def make_texts(count: int, seed: int, longest: int = 40) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, longest))) for _ in range(count)]


def tiny_corpus_lines() -> list[str]:
    """A few hundred lines: short and long, some empty, one far beyond the tiny models' 128 tokens."""
    lines = make_texts(TINY_TEXTS, seed=0)
    lines[7] = ""
    lines[100] = "   "
    lines[150] = " ".join(["word"] * 400)
    return lines


# ---- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module (runs find it initialised and leave it running)."""
    with cluster.start_ray(None, 2):
        yield


@pytest.fixture(scope="module")
def settings(tiny_models):
    return Settings(allowed_roots=(next(iter(tiny_models.values())).parent,), offline=True)


@pytest.fixture(scope="module")
def loaded_models(tiny_models, minilm_path):
    catalog = Catalog(load_rows(), (next(iter(tiny_models.values())).parent,))
    out = {
        family: load_model(catalog.resolve(str(tiny_models[family])), offline=True)
        for family in [*FAMILIES, *DECODERS]
    }
    out["minilm"] = load_model(catalog.resolve("all-MiniLM-L6-v2"), offline=True)
    # the eager fallback: dense attention, read through a DenseStore by the same statistics
    out["bert-dense"] = load_model(catalog.resolve(str(tiny_models["bert"])), offline=True, capture=False)
    return out


@pytest.fixture(scope="module")
def tiny_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "texts.txt"
    path.write_text("\n".join(tiny_corpus_lines()) + "\n", encoding="utf-8")
    return path


def options(input_path: Path, out: Path, model: Path | str, **extra) -> runner.CorpusOptions:
    return runner.CorpusOptions(
        input=input_path, out=out, model=str(model), shard_size=SHARD, batch_size=16, progress=False, **extra
    )


@pytest.fixture(scope="module")
def tiny_run(ray_session, tiny_input, tiny_models, settings, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-run") / "out"
    report = runner.run_corpus(options(tiny_input, out, tiny_models["bert"]), settings)
    return report, read_rows(out)


def read_rows(out: Path) -> pd.DataFrame:
    return (
        pq.read_table(out / "texts")
        .to_pandas()
        .sort_values(["text_index", "layer", "head"], ignore_index=True)
    )


def direct_statistics(loaded, text: str) -> dict[str, np.ndarray]:
    """The app's own single-text path: analyze_text, then the head statistics of its result."""
    return derived.head_stats(analyze_text(loaded, text))


def text_stats(rows: pd.DataFrame, index: int, layers: int, heads: int) -> dict[str, np.ndarray]:
    one = rows[rows.text_index == index].sort_values(["layer", "head"])
    return {name: one[name].to_numpy().reshape(layers, heads) for name in STAT_NAMES}


# ---- readers ----------------------------------------------------------------------------------------------


def test_txt_reader_keeps_line_numbers(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufefffirst line\r\n\r\n  \nsecond, with [MASK]\nthird".encode())
    corpus = reader.read_corpus(path)
    assert corpus.texts == ["first line", "second, with [MASK]", "third"]
    assert corpus.indices.tolist() == [0, 3, 4]
    assert (corpus.records, corpus.skipped) == (5, 2)


def test_jsonl_and_parquet_readers(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "one", "id": 1}\n\n{"text": null}\n{"body": "x", "text": "four"}\n')
    corpus = reader.read_corpus(path)
    assert corpus.texts == ["one", "four"] and corpus.indices.tolist() == [0, 3]
    path = tmp_path / "b.jsonl"
    path.write_text('{"body": "one"}\n{"body": "two"}\n')
    assert reader.read_corpus(path, "body").texts == ["one", "two"]
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"n": [1, 2, 3], "sentence": ["a b", None, "c"]}), path)
    corpus = reader.read_corpus(path, "sentence")
    assert corpus.texts == ["a b", "c"] and corpus.indices.tolist() == [0, 2] and corpus.skipped == 1


@pytest.mark.parametrize(
    ("name", "content", "field", "message"),
    [
        ("a.csv", b"text\nx\n", "text", "unsupported input format '.csv'"),
        ("a.txt", None, "text", "no such file"),
        ("a.txt", b"fine\n\xff\xfe broken\n", "text", "line 2 is not valid UTF-8"),
        ("a.txt", b"\n  \n", "text", "no texts (all 2 records are empty)"),
        ("a.jsonl", b'{"text": "ok"}\n{"text": "cut\n', "text", "line 2 is not valid JSON"),
        ("a.jsonl", b'["text"]\n', "text", "line 1 is a JSON list, not an object"),
        ("a.jsonl", b'{"body": "x"}\n', "text", "line 1 has no 'text' field (its fields: 'body')"),
        ("a.jsonl", b'{"text": 3}\n', "text", "line 1: field 'text' is a int, not a string"),
        ("a.parquet", b"not parquet at all", "text", "not a readable Parquet file"),
    ],
)
def test_reader_errors_are_clear(tmp_path, name, content, field, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=None) as info:
        reader.read_corpus(path, field)
    assert message in str(info.value) and str(path) in str(info.value)


def test_parquet_reader_column_errors(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"body": ["x"], "n": [1]}), path)
    with pytest.raises(InputError, match=r"no column 'text' \(its columns: 'body', 'n'\)"):
        reader.read_corpus(path)
    with pytest.raises(InputError, match="column 'n' holds int64, not strings"):
        reader.read_corpus(path, "n")


def test_scan_reads_shards_directories_globs_and_datasets_layouts(tmp_path):
    """Records are numbered through the files in path order; a datasets layout picks its split."""
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.jsonl").write_text('{"text": "one"}\n{"text": ""}\n')
    (shards / "b.jsonl").write_text('{"text": "three"}\n')
    pq.write_table(pa.table({"text": ["four", None, "six"]}), shards / "c.parquet", row_group_size=1)
    plan = reader.scan(shards, shard_size=2)
    assert [(f.path.name, f.first_index, f.records) for f in plan.files] == [
        ("a.jsonl", 0, 2),
        ("b.jsonl", 2, 1),
        ("c.parquet", 3, 3),
    ]
    assert (plan.records, plan.texts, plan.skipped, plan.shard_texts) == (6, 4, 2, [1, 2, 1])
    assert list(reader.iter_texts(plan)) == [(0, "one"), (2, "three"), (3, "four"), (5, "six")]
    assert list(reader.iter_texts(plan, start=4)) == [(5, "six")]
    assert [f.path.name for f in reader.scan(str(shards / "*.jsonl")).files] == ["a.jsonl", "b.jsonl"]
    before = plan.identity()
    (shards / "b.jsonl").write_text('{"text": "three!"}\n')
    assert reader.scan(shards, shard_size=2).identity() != before

    wiki = tmp_path / "wiki"
    (wiki / "data").mkdir(parents=True)
    for i, texts in enumerate([["x", "y"], ["z"]]):
        table = pa.table({"id": [f"{i}-{j}" for j in range(len(texts))], "text": texts})
        pq.write_table(table, wiki / "data" / f"train-{i:05d}-of-00002.parquet")
    pq.write_table(pa.table({"text": ["t"]}), wiki / "data" / "test-00000-of-00001.parquet")
    assert reader.read_corpus(wiki).texts == ["x", "y", "z"]
    assert reader.read_corpus(wiki, split="test").texts == ["t"]
    with pytest.raises(InputError, match=r"no split 'dev' \(its splits: test, train\); use --split"):
        reader.scan(wiki, split="dev")
    with pytest.raises(InputError, match="no file matches"):
        reader.scan(str(tmp_path / "*.nothing"))
    (shards / "d.jsonl").write_text('{"text": "ok"}\n{"text": 5}\n')
    with pytest.raises(InputError, match=r"d\.jsonl: line 2: field 'text' is a int"):
        reader.scan(shards)


# ---- batching and padding ---------------------------------------------------------------------------------


def test_length_batches_cover_every_text_once_longest_first():
    lengths = np.random.default_rng(0).integers(1, 200, size=500)
    batches = batching.length_batches(lengths, 16, budget=16 * 50 * 50)
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(500))
    assert all(len(b) <= 16 for b in batches)
    assert all(len(b) * lengths[b].max() ** 2 <= 16 * 50 * 50 or len(b) == 1 for b in batches)
    assert any(len(b) < 16 for b in batches[:-1])  # the budget, not only batch_size, cut some batches
    assert np.all(np.diff(lengths[order]) <= 0)  # sorted by length, longest first
    linear = batching.length_batches(lengths, 64, budget=1000, cost=lambda longest: 10 * longest)
    assert all(len(b) * 10 * lengths[b].max() <= 1000 or len(b) == 1 for b in linear)
    assert sorted(np.concatenate(linear).tolist()) == list(range(500))
    with pytest.raises(ValueError, match="batch_size"):
        batching.length_batches(lengths, 0)


@pytest.mark.parametrize("family", [*FAMILIES, "minilm", *DECODERS, "bert-dense"])
def test_padding_invariance_and_app_parity(loaded_models, family):
    """A short text alone and in a padded batch with longer texts gives the same statistics, and they equal
    the app's single-text analysis; a truncated text counts its dropped tokens."""
    loaded = loaded_models[family]
    short = "I think, therefore I am."
    longer = make_texts(5, seed=1, longest=60)
    too_long = " ".join(["word"] * (loaded.max_length + 30))
    texts = [longer[0], short, *longer[1:], too_long]
    alone = process_texts(loaded, [1], [short]).to_pandas()
    batched = process_texts(loaded, np.arange(len(texts)), texts, batch_size=8).to_pandas()
    assert batched.n_tokens[batched.text_index == 1].iloc[0] < batched.n_tokens.max()  # it really was padded
    layers, heads = alone["layer"].nunique(), alone["head"].nunique()
    expected = direct_statistics(loaded, short)
    for name in STAT_NAMES:
        got_alone = text_stats(alone, 1, layers, heads)[name]
        got_batched = text_stats(batched, 1, layers, heads)[name]
        np.testing.assert_allclose(got_batched, got_alone, atol=1e-5, rtol=0, err_msg=name)
        np.testing.assert_allclose(got_alone, expected[name], atol=1e-5, rtol=0, err_msg=name)
    cut = batched[batched.text_index == len(texts) - 1].iloc[0]
    assert cut.n_tokens == loaded.max_length and cut.dropped_tokens > 0
    truth = analyze_text(loaded, too_long)
    assert (cut.n_tokens, cut.dropped_tokens) == (truth.n, truth.dropped_tokens)


def test_slicing_equals_valid_mask(loaded_models):
    """A text's store cut out of the padded batch equals the padded store read with the padding as
    valid_mask (captured queries and keys of the whole padded row)."""
    loaded = loaded_models["bert"]
    assert loaded.attention_mode == "captured"
    items = batching.encode_texts(loaded, ["a short one .", "a much longer text , with more words in it ."])
    inputs = batching.pad_batch(loaded, items)
    with loaded.lock, torch.inference_mode(), recording() as recorder:
        loaded.encoder(**inputs)
    padded = recorder.store(0)  # the short text's row, padding included
    n, longest = items[0].n, padded.n
    assert n < longest
    valid = np.arange(longest) < n
    pad = np.zeros(longest - n, bool)
    masked = head_statistics_from_store(
        padded, np.concatenate([items[0].special, pad]), np.concatenate([items[0].punctuation, pad]), valid
    )
    sliced = batch_statistics(loaded, items)[0]
    for name in STAT_NAMES:
        np.testing.assert_allclose(sliced[name], masked[name], atol=1e-6, rtol=0, err_msg=name)


def test_captured_and_dense_batches_give_the_same_statistics(loaded_models):
    """One statistics path: the captured store and the eager fallback's DenseStore agree on a padded batch."""
    texts = make_texts(6, seed=4, longest=50)
    captured, dense = loaded_models["bert"], loaded_models["bert-dense"]
    assert (captured.attention_mode, dense.attention_mode) == ("captured", "dense")
    items = batching.encode_texts(captured, texts)
    for a, b in zip(batch_statistics(captured, items), batch_statistics(dense, items), strict=True):
        for name in STAT_NAMES:
            np.testing.assert_allclose(a[name], b[name], atol=1e-5, rtol=0, err_msg=name)


@pytest.mark.parametrize("chunk", [None, 64, 3000])
@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "mistral", "gemma2"])
def test_one_pass_statistics_and_outputs_in_any_chunking(loaded_models, family, chunk, monkeypatch):
    """The forward pass whose layer outputs come from the statistics' own weights (``BatchStatistics`` as
    the recording's consumer) gives each text of an unsorted padded batch the statistics of its own store
    and eager attention's layer outputs (every later layer's weights equal those of ``eager_output``),
    whether a chunk of weights is a single row of one text (64 elements), a few whole texts (3000), or the
    default; grouped queries (llama), sliding windows (mistral, gemma2) and soft-capping (gemma2)."""
    loaded = loaded_models[family]
    if chunk is not None:
        monkeypatch.setattr(device_stats, "STAT_CHUNK_ELEMENTS", chunk)
    items = batching.encode_texts(loaded, make_texts(6, seed=7, longest=50))
    assert len({item.n for item in items}) > 3  # several lengths, not sorted
    inputs = batching.pad_batch(loaded, items)
    reducer = device_stats.BatchStatistics(
        [i.n for i in items],
        [i.special for i in items],
        [i.punctuation for i in items],
        int(inputs["input_ids"].shape[1]),
        loaded.device,
    )
    with loaded.lock, torch.inference_mode():
        with recording(consumer=reducer.layer) as one_pass:
            hidden = loaded.encoder(**inputs).last_hidden_state
        with recording(eager_output=True) as eager:
            expected_hidden = loaded.encoder(**inputs).last_hidden_state
    got = reducer.result()
    assert got.shape == (len(items), len(STAT_NAMES), len(eager.layers), eager.layers[0].heads)
    for b, item in enumerate(items):
        expected = head_statistics_from_store(eager.store(b, item.n), item.special, item.punctuation)
        for s, name in enumerate(STAT_NAMES):
            np.testing.assert_allclose(got[b, s], expected[name], atol=1e-5, rtol=0, err_msg=f"{b} {name}")
        # (q·scale)·kᵀ and (e·v)/z against (q·kᵀ)·scale and (e/z)·v: rounding, 1e-6 after a layer and up to
        # 1.2e-5 in the peaked soft-capped heads of gemma2
        np.testing.assert_allclose(
            one_pass.store(b, item.n).dense(), eager.store(b, item.n).dense(), atol=5e-5, rtol=0
        )
        # the last hidden states, relative to their largest: at most 9e-6 here (gemma2); an attention output
        # 1% off gives 8e-5 or more (bert, gpt2; weights of the next layer far more for the decoders)
        drift = (hidden[b, : item.n] - expected_hidden[b, : item.n]).abs().max()
        assert float(drift) <= 2e-5 * float(expected_hidden[b, : item.n].abs().max())


@pytest.mark.parametrize("family", [*FAMILIES, *DECODERS, "bert-dense"])
def test_batch_budget_covers_what_a_batch_records(loaded_models, family):
    """``text_bytes`` of a padded text covers its recorded queries, keys and key intervals, plus the mask, and
    is linear in the length (captured); it is the text's dense float32 weights (dense)."""
    loaded = loaded_models[family]
    items = batching.encode_texts(loaded, make_texts(1, seed=6, longest=40))
    inputs = batching.pad_batch(loaded, items)
    n = items[0].n
    if loaded.attention_mode == "dense":
        store = next(forward_stores(loaded, inputs, [n]))
        assert text_bytes(loaded, n) == store.dense_nbytes
        return
    with loaded.lock, torch.inference_mode(), recording() as recorder:
        loaded.encoder(**inputs)
    recorded = recorder.store(0, n).nbytes
    masks = text_bytes(loaded, n) - recorded
    assert n * n <= masks <= 2 * n * n  # one boolean mask per kind of layer, nothing else


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_long_texts_split_into_overlapping_windows(loaded_models, family):
    """Windows cover the text's tokens in order with the stated overlap, say where they start, and the
    first window's statistics equal those of the truncated text."""
    loaded = loaded_models[family]
    text = " ".join(["the cat sat on a mat , and the dog ran far away ."] * (loaded.max_length // 5))
    overlap = 16
    items = batching.encode_texts(loaded, ["a short one .", text], "window", overlap)
    assert [(i.source, i.window) for i in items][:2] == [(0, 0), (1, 0)]
    windows = [i for i in items if i.source == 1]
    whole = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    step = batching.window_step(loaded, overlap)
    assert len(windows) >= 3 and [w.window for w in windows] == list(range(len(windows)))
    for w in windows:
        content = [t for t, special in zip(w.inputs["input_ids"], w.special, strict=True) if not special]
        assert w.token_start == w.window * step and w.n <= loaded.max_length
        assert content == whole["input_ids"][w.token_start : w.token_start + len(content)]
        assert w.char_start == (whole["offset_mapping"][w.token_start][0] if w.window else 0)
        assert w.dropped_tokens == 0
    assert windows[-1].token_start + windows[-1].n - (windows[0].n - step - overlap) == len(
        whole["input_ids"]
    )
    rows = process_texts(loaded, [7, 9], ["a short one .", text], long_texts="window", overlap=overlap)
    rows = rows.to_pandas()
    layers, heads = rows["layer"].nunique(), rows["head"].nunique()
    assert len(rows) == (1 + len(windows)) * layers * heads
    mine = rows[rows.text_index == 9]
    assert sorted(mine.window.unique()) == list(range(len(windows)))
    assert (mine.dropped_tokens == 0).all()
    truncated = process_texts(loaded, [9], [text]).to_pandas()
    assert truncated.dropped_tokens.iloc[0] > 0
    first = mine[mine.window == 0].sort_values(["layer", "head"])
    for name in STAT_NAMES:
        np.testing.assert_allclose(first[name], truncated[name], atol=1e-5, rtol=0, err_msg=name)
    with pytest.raises(ValueError, match="--window-overlap must be from 0 to"):
        batching.window_step(loaded, loaded.max_length)


# ---- summary ----------------------------------------------------------------------------------------------


def test_moments_merge_equals_numpy():
    rng = np.random.default_rng(3)
    rows = pd.DataFrame(
        {
            "text_index": np.repeat(np.arange(50), 6),
            "layer": np.tile([0, 0, 0, 1, 1, 1], 50),
            "head": np.tile([0, 1, 2], 100),
            "n_tokens": 5,
            "dropped_tokens": 0,
        }
    )
    for name in STAT_NAMES:
        rows[name] = rng.normal(3.0, 0.5, len(rows)).astype(np.float32)
    rows.loc[rows.index[:4], "entropy"] = np.nan  # a text without tokens has NaN statistics
    table = pa.Table.from_pandas(rows, preserve_index=False)
    whole = summary.table_moments(table, 2, 3)
    merged = summary.Moments.empty(2, 3)
    for start in (0, 60, 61, 200):
        merged = merged.merge(
            summary.table_moments(table.slice(start, {0: 60, 60: 1, 61: 139, 200: 100}[start]), 2, 3)
        )
    grouped = rows.groupby(["layer", "head"])
    for s, name in enumerate(STAT_NAMES):
        for m in (whole, merged):
            np.testing.assert_allclose(m.mean[s], grouped[name].mean().to_numpy().reshape(2, 3), rtol=1e-6)
            np.testing.assert_allclose(m.std()[s], grouped[name].std().to_numpy().reshape(2, 3), rtol=1e-5)
            np.testing.assert_array_equal(m.count[s], grouped[name].count().to_numpy().reshape(2, 3))


# ---- the pipeline on Ray ----------------------------------------------------------------------------------


def test_tiny_corpus_rows_and_summary(tiny_run, tiny_input, loaded_models):
    report, rows = tiny_run
    lines = tiny_corpus_lines()
    expected_indices = [i for i, line in enumerate(lines) if line.strip()]
    assert (report.texts, report.skipped, report.truncated_texts) == (TINY_TEXTS - 2, 2, 1)
    assert (report.layers, report.heads, report.shards, report.shards_run) == (2, 4, 5, 5)
    # every text exactly once per (layer, head); empty lines absent
    assert len(rows) == len(expected_indices) * 8
    assert rows.groupby("text_index").size().eq(8).all()
    assert sorted(rows.text_index.unique()) == expected_indices
    assert not rows[list(STAT_NAMES)].isna().any().any()
    assert rows[rows.text_index == 150].dropped_tokens.iloc[0] > 0
    # per-text statistics equal the app's single-text analysis
    loaded = loaded_models["bert"]
    for index in (0, 3, 150, 299):
        expected = direct_statistics(loaded, lines[index])
        got = text_stats(rows, index, 2, 4)
        for name in STAT_NAMES:
            np.testing.assert_allclose(
                got[name], expected[name], atol=1e-5, rtol=0, err_msg=f"{index} {name}"
            )
    # the summary is the mean (and sample std, count) of the per-text statistics
    table = pq.read_table(report.summary_path)
    meta = json.loads(table.schema.metadata[b"visualizeai"])
    assert meta["texts"] == TINY_TEXTS - 2 and meta["layers"] == 2 and meta["heads"] == 4
    summ = table.to_pandas()
    assert len(summ) == 8 * len(STAT_NAMES)
    grouped = rows.groupby(["layer", "head"])
    for name in STAT_NAMES:
        part = summ[summ.statistic == name].sort_values(["layer", "head"])
        np.testing.assert_allclose(part["mean"], grouped[name].mean().to_numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(part["std"], grouped[name].std().to_numpy(), rtol=1e-5, atol=1e-7)
        assert (part["count"] == len(expected_indices)).all()


def expected_extremes(rows: pd.DataFrame, k: int = extremes.DEFAULT_K) -> pd.DataFrame:
    """The extremes file computed directly: for each statistic, layer, head and side, the k texts with the
    highest (lowest) value, ties to the lower text index."""
    out = []
    for name in STAT_NAMES:
        for (layer, head), part in rows.groupby(["layer", "head"]):
            for side, ascending in (("high", False), ("low", True)):
                best = part.sort_values([name, "text_index"], ascending=[ascending, True]).head(k)
                for rank, row in enumerate(best.itertuples()):
                    out.append((name, layer, head, side, rank, getattr(row, name), row.text_index))
    return pd.DataFrame(out, columns=["statistic", "layer", "head", "side", "rank", "value", "text_index"])


def assert_extremes_of(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The extremes file at ``path`` holds exactly the extremes of ``rows``; returns it sorted."""
    keys = ["statistic", "layer", "head", "side", "rank"]
    got = pq.read_table(path).to_pandas().sort_values(keys, ignore_index=True)
    expected = expected_extremes(rows).sort_values(keys, ignore_index=True)
    assert len(got) == 8 * len(STAT_NAMES) * 2 * extremes.DEFAULT_K
    for column in [*keys, "text_index"]:
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_array_equal(got["value"].to_numpy(), expected["value"].to_numpy().astype(np.float32))
    return got


def test_extremes_are_the_texts_with_the_highest_and_lowest_values(tiny_run):
    report, rows = tiny_run
    lines = tiny_corpus_lines()
    table = pq.read_table(report.extremes_path)
    meta = json.loads(table.schema.metadata[b"visualizeai"])
    assert (meta["layers"], meta["heads"], meta["k"]) == (2, 4, extremes.DEFAULT_K)
    got = assert_extremes_of(report.extremes_path, rows)
    # each row carries its text, whole when short, cut to 32 characters a token when long
    for row in got.itertuples():
        whole = lines[row.text_index]
        assert row.text == whole[: extremes.CHARS_PER_TOKEN * row.n_tokens]
        assert row.text_cut == (len(whole) > len(row.text))
    # and the corpus page's reader takes it back
    loaded = extremes.load_extremes(report.extremes_path.read_bytes())
    assert len(loaded.entries) == len(got)
    assert {loaded.texts[e.text] for e in loaded.entries} == set(got["text"])


def sample_keys(sample: qk_sample.TokenSample) -> list[tuple[int, int, int]]:
    return list(
        zip(sample.text_index.tolist(), sample.window.tolist(), sample.position.tolist(), strict=True)
    )


def test_qk_sample_is_the_bottom_k_by_hash_with_the_apps_vectors(tiny_run, loaded_models):
    """The sample is the 256 tokens of smallest hash over the whole corpus (every token of every non-empty
    text, as tokenized), each with the query and key the app's own analysis of its text records."""
    report, rows = tiny_run
    sample = qk_sample.TokenSample.load(report.out / "qk_sample.npz")
    lines = tiny_corpus_lines()
    tokens = rows[(rows["layer"] == 0) & (rows["head"] == 0)]
    every = [
        (int(h), index, 0, position)
        for index, n in zip(tokens.text_index, tokens.n_tokens, strict=True)
        for position, h in enumerate(qk_sample.token_hashes(index, 0, n))
    ]
    expected = [key[1:] for key in sorted(every)[: qk_sample.DEFAULT_SAMPLE]]
    assert sample_keys(sample) == expected
    assert np.all(np.diff(sample.hash.astype(np.float64)) >= 0)
    loaded = loaded_models["bert"]
    tokenizer = loaded.tokenizer
    for i in (0, 77, 255):
        index, _, position = expected[i]
        store = analyze_text(loaded, lines[index]).attention
        for layer in range(2):
            captured = store.captured[layer]
            np.testing.assert_allclose(
                sample.queries[i, layer].astype(np.float32),
                captured.query[0, :, position].float().numpy(),
                rtol=1e-3,
                atol=1e-3,
            )
            np.testing.assert_allclose(
                sample.keys[i, layer].astype(np.float32),
                captured.key[0, :, position].float().numpy(),
                rtol=1e-3,
                atol=1e-3,
            )
        ids = tokenizer(lines[index], truncation=True, max_length=loaded.max_length)["input_ids"]
        assert sample.piece[i] == tokenizer.convert_ids_to_tokens(ids[position]).removeprefix("##")


def test_qk_map_file_holds_every_heads_map_of_the_sample(tiny_run):
    report, _ = tiny_run
    sample = qk_sample.TokenSample.load(report.out / "qk_sample.npz")
    data = (report.out / "qk_map.parquet").read_bytes()
    loaded = qk_sample.load_qk_map(data)
    assert (loaded.metadata["layers"], loaded.metadata["heads"], loaded.metadata["tokens"]) == (2, 4, 256)
    queries, keys, info = qk_sample.head_maps(sample)
    np.testing.assert_array_equal(loaded.queries, queries)
    np.testing.assert_array_equal(loaded.keys, keys)
    assert loaded.metadata["heads_info"] == info
    assert loaded.tokens["text_index"] == sample.text_index.tolist()
    assert loaded.tokens["piece"] == sample.piece
    # a head's map keeps the order of its points' dot products: shared_space changes no weight
    from visualizeai.analysis.vectors import HeadVectors, shared_space

    v = HeadVectors(
        sample.queries[:, 1, 2].astype(np.float32),
        sample.keys[:, 1, 2].astype(np.float32),
        sample.scaling[1],
        np.zeros(256, np.int64),
        np.full(256, 256, np.int64),
        None,
        None,
    )
    q, k, translated = shared_space(v)
    assert translated
    logits = q @ k.T
    original = v.queries.astype(np.float64) @ v.keys.astype(np.float64).T
    shift = (logits - original)[:, :1]  # a translation of the keys moves a whole row by the same amount
    np.testing.assert_allclose(logits - shift, original, atol=1e-6 * np.abs(original).max())


def test_resume_after_failure_equals_uninterrupted(tiny_run, tiny_input, tiny_models, settings, tmp_path):
    """A run that dies after two shards leaves two whole shards and no summary; the restart (with another
    batch size, which may change) computes only the rest, and the result equals an uninterrupted run."""
    _, uninterrupted = tiny_run
    out = tmp_path / "out"
    done = []

    def fail_after_two(shard: int) -> None:
        done.append(shard)
        if len(done) == 2:
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        runner.run_corpus(
            options(tiny_input, out, tiny_models["bert"]), settings, on_shard_done=fail_after_two
        )
    assert sorted(p.name for p in (out / "texts").iterdir()) == [
        f"shard-{k:05d}.parquet" for k in sorted(done)
    ]
    assert not (out / "summary.parquet").exists()
    again = runner.run_corpus(replace(options(tiny_input, out, tiny_models["bert"]), batch_size=7), settings)
    assert (again.shards_run, again.texts_run) == (
        3,
        again.texts
        - sum(len(pq.read_table(runner.shard_path(out, k), columns=["text_index"])) // 8 for k in done),
    )
    assert_same_rows(read_rows(out), uninterrupted)
    # the extremes merge shards read back from disk with shards computed in this run
    assert_extremes_of(out / "extremes.parquet", read_rows(out))
    # the token sample saved with each shard, merged with the restart's blocks, is the uninterrupted one's
    resumed = qk_sample.TokenSample.load(out / "qk_sample.npz")
    assert sample_keys(resumed) == sample_keys(qk_sample.TokenSample.load(tiny_run[0].out / "qk_sample.npz"))
    finished = runner.run_corpus(
        options(tiny_input, out, tiny_models["bert"]), settings
    )  # nothing left to do
    assert finished.shards_run == 0 and finished.ray_start_s == 0


def assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(got) == len(expected)
    for column in ("text_index", "layer", "head", "n_tokens", "dropped_tokens"):
        np.testing.assert_array_equal(got[column], expected[column], err_msg=column)
    for name in STAT_NAMES:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-5, rtol=0, err_msg=name)


KILLED_RUN = """
import sys, time
import visualizeai.corpus.runner as runner
from visualizeai.cli import main

run_corpus = runner.run_corpus


def slow_after_first(shard):
    time.sleep(120)  # the test kills the process while it waits here


# the command line, with a pause after the first shard so that the kill lands mid-run
runner.run_corpus = lambda options, settings=None, on_shard_done=None: run_corpus(
    options, settings, on_shard_done=slow_after_first
)
sys.exit(main(["corpus", "--offline", "--input", sys.argv[1], "--out", sys.argv[2], "--model", sys.argv[3],
               "--shard-size", "{shard}", "--batch-size", "16", "--num-cpus", "1"]))
"""


def recorded_shards(out: Path) -> list[str]:
    try:
        return list(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError, KeyError):
        return []


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop",
    [
        signal.SIGKILL,
        pytest.param(signal.SIGTERM, marks=pytest.mark.scale),
        pytest.param(signal.SIGINT, marks=pytest.mark.scale),
    ],
    ids=lambda s: s.name,
)
def test_resume_after_the_driver_is_stopped(stop, tiny_run, tiny_input, tiny_models, settings, tmp_path):
    """Stop the command line's driver alone once its first shard is on disk (SIGKILL, which no code sees;
    SIGTERM and SIGINT, the other ways a driver is stopped, in ``make test-scale``): every process of the
    local Ray it started (GCS, raylet, dashboard and runtime-env agents, workers) is gone soon after, the
    terminal showed the progress bar and nothing of Ray (that went to DIR/ray.log), and the restart completes
    the run with every text exactly once."""
    _, uninterrupted = tiny_run
    out = tmp_path / "out"
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN.format(shard=SHARD)))
    tag = secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VISUALIZEAI_TEST_TAG=tag)
    process = subprocess.Popen(
        [sys.executable, str(script), str(tiny_input), str(out), str(tiny_models["bert"])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    before = ray_temp_dirs()
    try:
        deadline = time.monotonic() + 120
        while not recorded_shards(out):  # on disk and in the manifest: the outcome, not the file alone
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the first shard never appeared"
            time.sleep(0.2)
        directories = ray_temp_dirs() - before
        running = cluster_processes(tag, directories)
    finally:
        process.send_signal(stop)  # to the driver alone
        process.wait(timeout=60)
    names = " ".join(running.values())
    assert "ray::DashboardAgent" in names and "ray::RuntimeEnvAgent" in names and "raylet" in names
    deadline = time.monotonic() + 60
    while (left := cluster_processes(tag, directories)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == {}
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert "corpus:" in stderr and "text" in stderr  # the progress bar
    if stop == signal.SIGINT:  # the command line says where the finished shards are
        assert "interrupted: finished shards are saved in" in stderr
        stderr = stderr.split("interrupted:")[0]
    for noise in ("core_worker", "Token authentication", "WARNING", "INFO", "ray", "Traceback"):
        assert noise not in stderr, stderr[-2000:]
    assert "Token authentication" not in (out / "ray.log").read_text()  # a token of its own, no warning
    assert len(list((out / "texts").glob("shard-*.parquet"))) == 1
    report = runner.run_corpus(options(tiny_input, out, tiny_models["bert"]), settings)
    assert report.shards_run == 4
    assert_same_rows(read_rows(out), uninterrupted)


def cluster_processes(tag: str, directories: set[str]) -> dict[int, str]:
    """Live processes (zombies aside) with VISUALIZEAI_TEST_TAG=tag in their environment or a file open
    under one of ``directories`` (a Ray process that renames itself may overwrite its environment's memory,
    but keeps its logs open): pid -> command line."""
    needle = f"VISUALIZEAI_TEST_TAG={tag}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or entry.name == str(os.getpid()):
                continue
            ours = needle in (entry / "environ").read_bytes().split(b"\0")
            if not ours and directories:
                files = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
                ours = any(f.startswith(d) for f in files for d in directories)
            if ours and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def ray_temp_dirs() -> set[str]:
    return {os.path.join(p, "") for p in glob.glob(os.path.join(tempfile.gettempdir(), "vai-ray-*"))}


def test_refuses_other_arguments_and_foreign_directories(
    tiny_run, tiny_input, tiny_models, settings, tmp_path
):
    report, _ = tiny_run
    with pytest.raises(InputError, match=r"different arguments \(shard_size: 64 → 32\)"):
        runner.run_corpus(
            replace(options(tiny_input, report.out, tiny_models["bert"]), shard_size=32), settings
        )
    with pytest.raises(InputError, match="different arguments .*model"):
        runner.run_corpus(options(tiny_input, report.out, tiny_models["roberta"]), settings)
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(InputError, match="is not empty and holds no corpus run"):
        runner.run_corpus(options(tiny_input, tmp_path, tiny_models["bert"]), settings)
    import fcntl

    with (report.out / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InputError, match="Another corpus run is writing"):
            runner.run_corpus(options(tiny_input, report.out, tiny_models["bert"]), settings)


def test_cli_on_minilm_jsonl(ray_session, tmp_path, loaded_models, capsys):
    """The real embedded model through the command line, on 64 texts of a .jsonl file."""
    texts = make_texts(64, seed=5, longest=30)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "out"
    code = main(
        [
            "corpus",
            "--offline",
            "--input",
            str(path),
            "--out",
            str(out),
            "--text-field",
            "body",
            "--batch-size",
            "16",
            "--shard-size",
            "32",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert "64 texts (0 empty skipped, 0 truncated) × 6 layers × 12 heads; 2 of 2 shards" in printed.out
    rows = read_rows(out)
    assert rows.groupby("text_index").size().eq(72).all() and rows.text_index.nunique() == 64
    for index in (0, 41):
        expected = direct_statistics(loaded_models["minilm"], texts[index])
        got = text_stats(rows, index, 6, 12)
        for name in STAT_NAMES:
            np.testing.assert_allclose(
                got[name], expected[name], atol=1e-5, rtol=0, err_msg=f"{index} {name}"
            )
    summ = pq.read_table(out / "summary.parquet").to_pandas()
    means = rows.groupby(["layer", "head"])["sink_share"].mean().to_numpy()
    np.testing.assert_allclose(
        summ[summ.statistic == "sink_share"].sort_values(["layer", "head"])["mean"], means, rtol=1e-6
    )
    assert main(["corpus", "--offline", "--input", str(tmp_path / "missing.txt"), "--out", str(out)]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err


NO_RAY = """
import sys
import visualizeai, visualizeai.cli, visualizeai.corpus.runner, visualizeai.corpus.summary
import visualizeai.corpus.cluster, visualizeai.corpus.reader, visualizeai.corpus.schema
print(sorted(m for m in ("ray", "pyarrow") if m in sys.modules), flush=True)
sys.modules["ray"] = None  # as if the corpus extra were not installed
sys.exit(visualizeai.cli.main(["corpus", "--offline", "--input", sys.argv[1], "--out", sys.argv[2]]))
"""


def test_corpus_without_ray_names_the_extra(tmp_path):
    """Ray and pyarrow are the optional corpus extra: importing the package never imports them, and the
    corpus command without Ray prints one line naming the install command."""
    path = tmp_path / "in.txt"
    path.write_text("one text\n")
    result = subprocess.run(
        [sys.executable, "-c", NO_RAY, str(path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "[]" and result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'visualizeai[corpus]'" in lines[0], result.stderr
    assert not (tmp_path / "out").exists()
