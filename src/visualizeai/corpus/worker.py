"""Per-text head statistics for a window of texts: tokenize, batch by length, one forward pass per batch.

``process_texts`` is the whole computation and needs no Ray; ``CorpusWorker`` is the callable class Ray Data
runs in an actor pool (``map_batches(CorpusWorker, compute=ActorPoolStrategy(...))``): each actor loads the
model once, through the same ``load_model`` the app uses, and then serves window after window.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from visualizeai.analysis.head_stats import STAT_NAMES, head_statistics
from visualizeai.corpus.batching import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_BYTES,
    EncodedText,
    encode_texts,
    length_batches,
    pad_batch,
)
from visualizeai.corpus.schema import TEXT_ROWS_SCHEMA
from visualizeai.models.catalog import ModelSpec
from visualizeai.models.loading import LoadedModel, load_model

NO_ATTENTION_ERROR = "{model} returned no attention weights (eager attention is required)"


def model_shape(loaded: LoadedModel) -> tuple[int, int]:
    """(layers, heads) of the attention the model returns."""
    config = loaded.encoder.config
    return int(config.num_hidden_layers), int(config.num_attention_heads)


def forward_attentions(loaded: LoadedModel, inputs: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """One forward pass of the bare encoder: float32 ``[batch, heads, longest, longest]`` per layer."""
    with loaded.lock, torch.inference_mode():
        out = loaded.encoder(**inputs, output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise RuntimeError(NO_ATTENTION_ERROR.format(model=loaded.spec.id))
    return [a.float().cpu().numpy() for a in out.attentions]


def batch_statistics(loaded: LoadedModel, items: list[EncodedText]) -> list[dict[str, np.ndarray]]:
    """Statistics of each text of one padded batch: ``{name: float32 [layers, heads]}`` per item.

    Each text's own ``[layers, heads, n, n]`` block is cut out of the padded attention (right padding puts
    it in the top-left corner), so padding never enters a statistic.
    """
    layers = forward_attentions(loaded, pad_batch(loaded, items))
    out = []
    for row, item in enumerate(items):
        block = np.stack([layer[row, :, : item.n, : item.n] for layer in layers])  # [layers, heads, n, n]
        out.append(head_statistics(block, item.special, item.punctuation))
    return out


def process_texts(
    loaded: LoadedModel,
    indices,
    texts: list[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
) -> pa.Table:
    """Per-text rows (``schema.TEXT_ROWS_SCHEMA``, one per text, layer and head) for ``texts``, in their
    order. Texts are sorted by token count into batches of at most ``batch_size`` whose attention stays
    under ``max_batch_bytes``."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size != len(texts):
        raise ValueError(f"{indices.size} indices for {len(texts)} texts")
    n_layers, n_heads = model_shape(loaded)
    count = len(texts)
    encoded = encode_texts(loaded, texts) if count else []
    stats = {name: np.full((count, n_layers, n_heads), np.nan, dtype=np.float32) for name in STAT_NAMES}
    lengths = np.array([e.n for e in encoded], dtype=np.int64)
    nonempty = np.flatnonzero(lengths > 0)
    max_cells = max(1, max_batch_bytes // (4 * n_layers * n_heads))
    for batch in length_batches(lengths[nonempty], batch_size, max_cells):
        positions = nonempty[batch]
        results = batch_statistics(loaded, [encoded[p] for p in positions])
        for p, result in zip(positions, results, strict=True):
            for name in STAT_NAMES:
                stats[name][p] = result[name]
    per_text = n_layers * n_heads
    columns = {
        "text_index": np.repeat(indices, per_text),
        "layer": np.tile(np.repeat(np.arange(n_layers, dtype=np.int16), n_heads), count),
        "head": np.tile(np.arange(n_heads, dtype=np.int16), n_layers * count),
        "n_tokens": np.repeat(lengths.astype(np.int32), per_text),
        "dropped_tokens": np.repeat(np.array([e.dropped_tokens for e in encoded], dtype=np.int32), per_text),
        **{name: stats[name].reshape(-1) for name in STAT_NAMES},
    }
    return pa.Table.from_pydict(columns, schema=TEXT_ROWS_SCHEMA)


class CorpusWorker:
    """Ray Data callable class: loads the model once per actor, then turns windows of texts into rows.

    Args:
        spec: the model's catalog entry (resolved by the driver).
        load_options: keyword arguments of ``load_model`` (device, dtype, offline, allow_pickle).
        threads: torch intra-op threads for this actor (its CPU share); None leaves torch's default.
    """

    def __init__(
        self,
        spec: ModelSpec,
        load_options: dict,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        threads: int | None = None,
    ):
        if threads:
            torch.set_num_threads(threads)
        self.loaded = load_model(spec, **load_options)
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes

    def __call__(self, batch: pa.Table) -> pa.Table:
        return process_texts(
            self.loaded,
            batch["text_index"].to_numpy(),
            batch["text"].to_pylist(),
            self.batch_size,
            self.max_batch_bytes,
        )
