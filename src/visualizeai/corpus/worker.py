"""Per-text head statistics for a block of texts: tokenize, batch by length, one forward pass per batch.

``process_texts`` is the whole computation and needs no Ray; ``CorpusWorker`` is the class the runner
starts as Ray actors: each loads the model once, through the same ``load_model`` the app uses, and then
serves block after block. In captured mode (every model that passes the load-time self-check) the statistics
come from the batch's recorded queries and keys, reduced on the model's device (``corpus.stats``), so no
text's ``n × n`` weights are ever held; the eager fallback reads its dense weights through a ``DenseStore``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import torch

from visualizeai.analysis.head_stats import STAT_NAMES, head_statistics_from_store
from visualizeai.attention.capture import recording
from visualizeai.attention.store import AttentionStore, DenseStore
from visualizeai.corpus import qk_sample as qk_tokens
from visualizeai.corpus import stats as device_stats
from visualizeai.corpus.batching import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_BYTES,
    EncodedText,
    encode_texts,
    length_batches,
    pad_batch,
)
from visualizeai.corpus.schema import text_rows_schema
from visualizeai.extras import require
from visualizeai.models.catalog import ModelSpec
from visualizeai.models.inference import _accepts
from visualizeai.models.loading import LoadedModel, load_model
from visualizeai.models.tokens import token_scheme

NO_ATTENTION_ERROR = "{model} returned no attention weights (eager attention is required)"


def model_shape(loaded: LoadedModel) -> tuple[int, int]:
    """(layers, heads) of the attention the model returns."""
    config = loaded.encoder.config
    return int(config.num_hidden_layers), int(config.num_attention_heads)


def text_bytes(loaded: LoadedModel, longest: int) -> int:
    """Bytes one text padded to ``longest`` tokens makes its batch hold until its statistics are computed.

    The load-time self-check's figure (``SelfCheck.attention_bytes``, as the app budgets an analysis):
    dense mode, its float32 weights of every layer and head, ``4 · layers · heads · longest²``; captured
    mode, its recorded queries, keys and key intervals, linear in ``longest``, plus the model's boolean
    attention mask (``longest²`` bytes per kind of layer, full or sliding) while the forward pass runs.
    Not counted: one layer's working memory during the pass, and the chunks the statistics read, which
    ``attention.store.CHUNK_ELEMENTS`` bounds whatever the batch.
    """
    check = loaded.attention_check
    if check is None:  # capture turned off: eager weights
        layers, heads = model_shape(loaded)
        return 4 * layers * heads * longest * longest
    if check.mode != "captured":
        return check.attention_bytes(longest)
    mask_kinds = len(set(getattr(loaded.encoder.config, "layer_types", None) or ("full",)))
    return check.attention_bytes(longest) + mask_kinds * longest * longest


def forward_stores(
    loaded: LoadedModel, inputs: dict[str, torch.Tensor], lengths: list[int]
) -> Iterator[AttentionStore]:
    """One forward pass of the bare encoder over a right-padded batch (run now), and the attention store of
    each text, its first ``lengths[row]`` tokens, made as the iterator is read (right padding leaves a
    text's attention in the top-left corner, and its tokens give padded keys no weight).

    Captured mode records queries and keys (``attention.capture.recording``) and each store recomputes its
    text's weights on demand. Dense mode runs eager ``output_attentions``; each store copies its text's
    block out of the batch's weights, one text at a time.
    """
    extra = {"use_cache": False} if _accepts(loaded.encoder, "use_cache") else {}
    captured = loaded.attention_mode == "captured"
    with loaded.lock, torch.inference_mode():
        if captured:
            with recording() as recorder:
                loaded.encoder(**inputs, **extra)
        else:
            out = loaded.encoder(**inputs, output_attentions=True, **extra)
    if captured:
        return (recorder.store(row, n) for row, n in enumerate(lengths))
    if not out.attentions or out.attentions[0] is None:
        raise RuntimeError(NO_ATTENTION_ERROR.format(model=loaded.spec.id))
    # float32 [batch, heads, longest, longest] per layer; no copy for a float32 model on the CPU
    layers = [attention.float().cpu().numpy() for attention in out.attentions]
    return (
        DenseStore(np.stack([layer[row, :, :n, :n] for layer in layers])) for row, n in enumerate(lengths)
    )


def batch_statistics(
    loaded: LoadedModel, items: list[EncodedText], on_layers: Callable[[list], None] | None = None
) -> list[dict[str, np.ndarray]]:
    """Statistics of each text of one padded batch: ``{name: float32 [layers, heads]}`` per item.

    Captured mode reduces the whole batch on the model's device while the forward pass runs
    (``corpus.stats.BatchStatistics``; rows beyond a text's length and padded keys never counted). Dense
    mode cuts each text's own block out of the batch's weights and streams over it
    (``head_statistics_from_store``). Either way padding never enters a statistic. ``on_layers``, in
    captured mode, is also given the batch's recorded layers (the query–key sample reads them).
    """
    inputs = pad_batch(loaded, items)
    lengths = [item.n for item in items]
    if loaded.attention_mode == "captured":
        extra = {"use_cache": False} if _accepts(loaded.encoder, "use_cache") else {}
        reducer = device_stats.BatchStatistics(
            lengths,
            [i.special for i in items],
            [i.punctuation for i in items],
            int(inputs["input_ids"].shape[1]),
            loaded.device,
        )
        with loaded.lock, torch.inference_mode():
            # each layer's weights are recomputed once, for its statistics and its output (not also by SDPA)
            with recording(consumer=reducer.layer) as recorder:
                loaded.encoder(**inputs, **extra)
            if recorder.unsupported:
                raise RuntimeError(recorder.unsupported[0])
            values = reducer.result()
            if on_layers is not None:
                on_layers(recorder.layers)
        return [{name: values[b, s] for s, name in enumerate(STAT_NAMES)} for b in range(len(items))]
    stores = forward_stores(loaded, inputs, lengths)
    return [
        head_statistics_from_store(store, item.special, item.punctuation)
        for store, item in zip(stores, items, strict=True)
    ]


def process_texts(loaded: LoadedModel, indices, texts: list[str], **options):
    """Per-text rows (``schema.text_rows_schema()``, one per text or window, layer and head, a
    ``pyarrow.Table``) for ``texts``, in their order; ``process_block`` without the query–key sample."""
    return process_block(loaded, indices, texts, **options)[0]


def process_block(
    loaded: LoadedModel,
    indices,
    texts: list[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    long_texts: str = "truncate",
    overlap: int = 0,
    qk_sample: int = 0,
    qk_below: int = int(qk_tokens.NO_LIMIT),
) -> tuple:
    """``(rows, sample)``: the per-text rows (``schema.text_rows_schema()``, one per text or window, layer and
    head, a ``pyarrow.Table``) for ``texts``, in their order, and the block's query–key sample
    (``qk_sample.TokenSample`` of at most ``qk_sample`` tokens whose hash is below ``qk_below``; None when
    none, when ``qk_sample`` is 0, or when the model's attention is not captured). Texts are sorted by token
    count into batches of at most ``batch_size`` that hold at most ``max_batch_bytes`` of attention
    (``text_bytes`` per text; a text over it alone is a batch of one). ``long_texts`` and ``overlap`` as for
    ``batching.encode_texts``."""
    pa = require("pyarrow")
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size != len(texts):
        raise ValueError(f"{indices.size} indices for {len(texts)} texts")
    n_layers, n_heads = model_shape(loaded)
    encoded = encode_texts(loaded, texts, long_texts, overlap) if texts else []
    count = len(encoded)
    stats = {name: np.full((count, n_layers, n_heads), np.nan, dtype=np.float32) for name in STAT_NAMES}
    lengths = np.array([e.n for e in encoded], dtype=np.int64)
    nonempty = np.flatnonzero(lengths > 0)
    cost = partial(text_bytes, loaded)
    sample = None
    scheme = token_scheme(loaded.tokenizer) if qk_sample else ""
    for batch in length_batches(lengths[nonempty], batch_size, max_batch_bytes, cost):
        positions = nonempty[batch]
        items = [encoded[p] for p in positions]

        def take_sample(layers, items=items) -> None:
            nonlocal sample
            first = layers[0]
            shape = (len(layers), first.heads, int(first.key.shape[1]), int(first.query.shape[-1]))
            k = qk_tokens.sample_size(qk_sample, *shape)
            owners = [indices[i.source] for i in items]
            # once the block's sample is full, only tokens below its largest hash can still enter it
            below = qk_below if sample is None else min(qk_below, sample.largest_kept(k))
            found = qk_tokens.sample_batch(layers, items, owners, loaded.tokenizer, scheme, below, k)
            if found is not None:
                sample = found.merge(sample, k)

        results = batch_statistics(loaded, items, take_sample if qk_sample else None)
        for p, result in zip(positions, results, strict=True):
            for name in STAT_NAMES:
                stats[name][p] = result[name]
    per_text = n_layers * n_heads

    def column(values, dtype) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=dtype).reshape(count), per_text)

    columns = {
        "text_index": column([indices[e.source] for e in encoded], np.int64),
        "window": column([e.window for e in encoded], np.int32),
        "token_start": column([e.token_start for e in encoded], np.int32),
        "char_start": column([e.char_start for e in encoded], np.int32),
        "layer": np.tile(np.repeat(np.arange(n_layers, dtype=np.int16), n_heads), count),
        "head": np.tile(np.arange(n_heads, dtype=np.int16), n_layers * count),
        "n_tokens": column(lengths, np.int32),
        "dropped_tokens": column([e.dropped_tokens for e in encoded], np.int32),
        **{name: stats[name].reshape(-1) for name in STAT_NAMES},
    }
    return pa.Table.from_pydict(columns, schema=text_rows_schema()), sample


class CorpusWorker:
    """A model replica for the runner's Ray actors: loads the model once, then turns blocks into rows.

    Args:
        spec: the model's catalog entry (resolved by the driver).
        load_options: keyword arguments of ``load_model`` (device, dtype, offline, allow_pickle).
        threads: torch intra-op threads for this actor (its CPU share); None leaves torch's default.
    """

    def __init__(self, spec: ModelSpec, load_options: dict, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.loaded = load_model(spec, **load_options)
        self.node = ""
        try:
            import ray

            self.node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        except ImportError:
            pass

    def ready(self) -> str:
        """The id of the Ray node this worker runs on (empty outside Ray), once the model is loaded."""
        return self.node

    def process(self, task: int, indices: np.ndarray, texts: list[str], options: dict):
        """``(task, node id, rows, query–key sample)`` for one block of texts; ``options`` are
        ``process_block``'s keyword arguments (batch_size, max_batch_bytes, long_texts, overlap, qk_sample,
        qk_below)."""
        return (task, self.node, *process_block(self.loaded, indices, texts, **options))
