"""A uniform sample of the corpus's tokens with every head's query and key vectors, and the query–key map of
each head drawn from it (the corpus form of ``analysis.vectors.qk_map``).

Sampling is bottom-k by a hash of ``(text_index, window, position)``: a token is in the sample when its hash
is among the ``k`` smallest of the corpus. That is a uniform sample without replacement, the same whatever
the order blocks finish in, and mergeable: the sample of two parts is the bottom k of their samples. The
driver tells each block the largest hash it still keeps (``below``), so once the sample is full a block
sends only the few tokens that can still enter it.

``DIR/qk_map.parquet``, one row per (layer, head, kind, sampled token)::

    layer, head   int16
    kind          string   "query" or "key"
    x, y          float32  the token's vector on the head's first two principal axes (queries and keys
                           together, moved into one space without changing any weight: vectors.shared_space)
    token         int32    row of the token in the sample (the same for every head)
    text_index    int64    the token's text, window and position (special tokens included)
    window        int32
    position      int32
    piece         string   the token as the model saw it (models.tokens.readable_token)
    before, after string   the pieces around it, decoded
    special       bool

Its metadata key ``visualizeai`` holds JSON: format, version, model, revision, layers, heads, sampled
tokens, and per head the variance each axis explains and whether keys were translated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from visualizeai.analysis.vectors import HeadVectors, qk_map
from visualizeai.corpus.schema import read_checked_table
from visualizeai.errors import InputError
from visualizeai.extras import require

QK_FORMAT = "visualizeai-corpus-qk-map"
QK_VERSION = 1
METADATA_KEY = b"visualizeai"
DEFAULT_SAMPLE = 256  # tokens, each with its query and key in every head
NO_LIMIT = np.iinfo(np.uint64).max
MAX_SAMPLE_BYTES = 64 * 2**20  # the sample's vectors, held by the driver and saved after every shard
MIN_SAMPLE = 16
CONTEXT_TOKENS = 6  # pieces decoded on each side of a sampled token
NOT_QK_MAP = "This is not the qk_map.parquet of a corpus run: {reason}"


def token_hashes(text_index: int, window: int, n: int) -> np.ndarray:
    """uint64 ``[n]``: a fixed, well-mixed hash of ``(text_index, window, position)`` (splitmix64)."""
    with np.errstate(over="ignore"):
        x = np.uint64(text_index) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.uint64(window) * np.uint64(0xD1B54A32D192ED03)
        x = x + np.arange(n, dtype=np.uint64) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


@dataclass(frozen=True)
class TokenSample:
    """Sampled tokens in order of their hash: ``hash`` uint64 ``[m]``, ``text_index``/``window``/``position``
    int ``[m]``, ``piece``/``before``/``after`` lists of ``m`` strings, ``special`` bool ``[m]``, ``queries``
    float16 ``[m, layers, heads, dim]``, ``keys`` float16 ``[m, layers, kv_heads, dim]``; ``scaling``,
    ``softcap`` and ``sinks`` per layer (sinks: a ``[heads]`` list or None), as the softmax uses them."""

    hash: np.ndarray
    text_index: np.ndarray
    window: np.ndarray
    position: np.ndarray
    piece: list[str]
    before: list[str]
    after: list[str]
    special: np.ndarray
    queries: np.ndarray
    keys: np.ndarray
    scaling: list[float]
    softcap: list[float | None]
    sinks: list[list[float] | None]

    def __len__(self) -> int:
        return int(self.hash.size)

    def largest_kept(self, k: int) -> int:
        """The hash a token must be below to enter a sample of ``k`` (no limit until the sample is full)."""
        return int(self.hash[k - 1]) if len(self) >= k else int(NO_LIMIT)

    def take(self, rows: np.ndarray) -> TokenSample:
        pick = [int(r) for r in rows]
        return TokenSample(
            self.hash[rows],
            self.text_index[rows],
            self.window[rows],
            self.position[rows],
            [self.piece[r] for r in pick],
            [self.before[r] for r in pick],
            [self.after[r] for r in pick],
            self.special[rows],
            self.queries[rows],
            self.keys[rows],
            self.scaling,
            self.softcap,
            self.sinks,
        )

    def merge(self, other: TokenSample | None, k: int) -> TokenSample:
        """The ``k`` tokens of smallest hash of both, each token once (a block computed again after a
        restart brings tokens the saved sample already holds)."""
        both = self if other is None else _concat(self, other)
        order = np.lexsort((both.position, both.window, both.text_index, both.hash))
        keys = np.stack([both.text_index[order], both.window[order], both.position[order]], axis=1)
        first = np.ones(len(order), dtype=bool)
        first[1:] = (keys[1:] != keys[:-1]).any(axis=1)
        return both.take(order[first][:k])

    def save(self, path) -> None:
        """Write the sample as an ``.npz`` (no pickles), for a restarted run to merge into."""
        meta = {"scaling": self.scaling, "softcap": self.softcap, "sinks": self.sinks}
        with open(path, "wb") as f:
            np.savez(
                f,
                hash=self.hash,
                text_index=self.text_index,
                window=self.window,
                position=self.position,
                piece=np.asarray(self.piece, dtype=np.str_),
                before=np.asarray(self.before, dtype=np.str_),
                after=np.asarray(self.after, dtype=np.str_),
                special=self.special,
                queries=self.queries,
                keys=self.keys,
                meta=np.asarray(json.dumps(meta)),
            )

    @classmethod
    def load(cls, path) -> TokenSample:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            return cls(
                f["hash"],
                f["text_index"],
                f["window"],
                f["position"],
                f["piece"].tolist(),
                f["before"].tolist(),
                f["after"].tolist(),
                f["special"],
                f["queries"],
                f["keys"],
                meta["scaling"],
                meta["softcap"],
                meta["sinks"],
            )


def sample_size(requested: int, layers: int, heads: int, kv_heads: int, dim: int) -> int:
    """Tokens to sample: ``requested``, or fewer so that their vectors (float16) stay within
    ``MAX_SAMPLE_BYTES``; at least ``MIN_SAMPLE`` unless 0 is asked for."""
    if requested <= 0:
        return 0
    per_token = layers * (heads + kv_heads) * dim * 2
    return max(MIN_SAMPLE, min(requested, MAX_SAMPLE_BYTES // per_token))


def _concat(a: TokenSample, b: TokenSample) -> TokenSample:
    return TokenSample(
        np.concatenate([a.hash, b.hash]),
        np.concatenate([a.text_index, b.text_index]),
        np.concatenate([a.window, b.window]),
        np.concatenate([a.position, b.position]),
        a.piece + b.piece,
        a.before + b.before,
        a.after + b.after,
        np.concatenate([a.special, b.special]),
        np.concatenate([a.queries, b.queries]),
        np.concatenate([a.keys, b.keys]),
        a.scaling,
        a.softcap,
        a.sinks,
    )


def sample_batch(layers, items, indices, tokenizer, scheme: str, below: int, k: int) -> TokenSample | None:
    """The tokens of one padded batch whose hash is below ``below``, at most ``k`` of smallest hash, with
    their vectors in every layer (``layers``: the batch's ``LayerQK`` list; ``items``: its ``EncodedText``s;
    ``indices``: each item's text index). None when no token qualifies."""
    from visualizeai.models.tokens import readable_token

    chosen = []  # (hash, item row, position)
    for row, (item, text_index) in enumerate(zip(items, indices, strict=True)):
        h = token_hashes(int(text_index), item.window, item.n)
        for position in np.flatnonzero(h < np.uint64(below)).tolist():
            chosen.append((int(h[position]), row, position))
    if not chosen:
        return None
    chosen.sort()
    chosen = chosen[:k]
    rows = np.asarray([c[1] for c in chosen])
    positions = np.asarray([c[2] for c in chosen])
    queries = np.stack([layer.query[rows, :, positions].float().cpu().numpy() for layer in layers], axis=1)
    keys = np.stack([layer.key[rows, :, positions].float().cpu().numpy() for layer in layers], axis=1)
    pieces, before, after, special = [], [], [], []
    for _, row, position in chosen:
        ids = items[row].inputs["input_ids"]
        pieces.append(readable_token(tokenizer.convert_ids_to_tokens(ids[position]), scheme))
        before.append(tokenizer.decode(ids[max(0, position - CONTEXT_TOKENS) : position]))
        after.append(tokenizer.decode(ids[position + 1 : position + 1 + CONTEXT_TOKENS]))
        special.append(bool(items[row].special[position]))
    return TokenSample(
        np.asarray([c[0] for c in chosen], dtype=np.uint64),
        np.asarray([int(indices[r]) for r in rows], dtype=np.int64),
        np.asarray([items[r].window for r in rows], dtype=np.int32),
        positions.astype(np.int32),
        pieces,
        before,
        after,
        np.asarray(special, dtype=bool),
        queries.astype(np.float16),
        keys.astype(np.float16),
        [float(layer.scaling) for layer in layers],
        [None if layer.softcap is None else float(layer.softcap) for layer in layers],
        [None if layer.sinks is None else layer.sinks.float().cpu().tolist() for layer in layers],
    )


def head_maps(sample: TokenSample) -> tuple[np.ndarray, np.ndarray, list[list[dict]]]:
    """Every head's query–key map of the sample: float32 ``queries`` and ``keys`` ``[layers, heads, m, 2]``
    and per head ``{explained, translated}``."""
    m, layers, heads = sample.queries.shape[:3]
    group = heads // sample.keys.shape[2]
    q_out = np.zeros((layers, heads, m, 2), np.float32)
    k_out = np.zeros((layers, heads, m, 2), np.float32)
    info = []
    for layer in range(layers):
        row = []
        for head in range(heads):
            sinks = sample.sinks[layer]
            vectors = HeadVectors(
                queries=sample.queries[:, layer, head].astype(np.float32),
                keys=sample.keys[:, layer, head // group].astype(np.float32),
                scaling=sample.scaling[layer],
                lo=np.zeros(m, np.int64),
                hi=np.full(m, m, np.int64),
                softcap=sample.softcap[layer],
                sink=None if sinks is None else float(sinks[head]),
            )
            found = qk_map(vectors, max_points=max(2, m))
            q_out[layer, head], k_out[layer, head] = found["queries"], found["keys"]
            row.append({"explained": found["explained"], "translated": found["translated"]})
        info.append(row)
    return q_out, k_out, info


def qk_map_table(sample: TokenSample, metadata: dict):
    """The ``pyarrow.Table`` of ``qk_map.parquet`` (module docstring)."""
    pa = require("pyarrow")
    queries, keys, info = head_maps(sample)
    layers, heads, m = queries.shape[:3]
    kinds = np.stack([queries, keys], axis=2)  # [L, H, 2, m, 2]
    layer_i, head_i, kind_i, token_i = np.meshgrid(
        np.arange(layers), np.arange(heads), np.arange(2), np.arange(m), indexing="ij"
    )
    flat = kinds.reshape(-1, 2)
    token = token_i.reshape(-1)
    table = pa.table(
        {
            "layer": pa.array(layer_i.reshape(-1), pa.int16()),
            "head": pa.array(head_i.reshape(-1), pa.int16()),
            "kind": pa.array(np.asarray(["query", "key"])[kind_i.reshape(-1)], pa.string()),
            "x": pa.array(flat[:, 0], pa.float32()),
            "y": pa.array(flat[:, 1], pa.float32()),
            "token": pa.array(token, pa.int32()),
            "text_index": pa.array(sample.text_index[token], pa.int64()),
            "window": pa.array(sample.window[token], pa.int32()),
            "position": pa.array(sample.position[token], pa.int32()),
            "piece": pa.array([sample.piece[t] for t in token.tolist()], pa.string()),
            "before": pa.array([sample.before[t] for t in token.tolist()], pa.string()),
            "after": pa.array([sample.after[t] for t in token.tolist()], pa.string()),
            "special": pa.array(sample.special[token], pa.bool_()),
        }
    )
    meta = {
        "format": QK_FORMAT,
        "version": QK_VERSION,
        **metadata,
        "layers": int(layers),
        "heads": int(heads),
        "tokens": int(m),
        "heads_info": info,
    }
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})


# ---- reading it back (the corpus page) --------------------------------------------------------------------

MAX_ROWS = 20_000_000


@dataclass(frozen=True)
class LoadedQKMap:
    metadata: dict
    tokens: dict[str, list]  # text_index, window, position, piece, before, after, special: one per token
    queries: np.ndarray  # float32 [layers, heads, m, 2]
    keys: np.ndarray


def _heads_info_ok(info, layers: int, heads: int) -> bool:
    """``[layers][heads]`` of ``{explained: [two numbers], translated: bool}``."""

    def entry_ok(e) -> bool:
        if not isinstance(e, dict) or set(e) != {"explained", "translated"}:
            return False
        explained = e["explained"]
        return (
            isinstance(e["translated"], bool)
            and isinstance(explained, list)
            and len(explained) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 1 for x in explained)
        )

    return (
        isinstance(info, list)
        and len(info) == layers
        and all(isinstance(row, list) and len(row) == heads and all(map(entry_ok, row)) for row in info)
    )


def load_qk_map(data: bytes) -> LoadedQKMap:
    """Read and check a ``qk_map.parquet`` (its bytes); ``InputError`` saying what is wrong otherwise."""
    expected = {
        "layer": "int16",
        "head": "int16",
        "kind": "string",
        "x": "float32",
        "y": "float32",
        "token": "int32",
        "text_index": "int64",
        "window": "int32",
        "position": "int32",
        "piece": "string",
        "before": "string",
        "after": "string",
        "special": "bool_",
    }
    table, meta = read_checked_table(
        data, what="qk_map.parquet", fmt=QK_FORMAT, version=QK_VERSION, columns=expected, max_rows=MAX_ROWS
    )
    layers, heads, m = meta.get("layers"), meta.get("heads"), meta.get("tokens")
    if not all(isinstance(v, int) and v > 0 for v in (layers, heads, m)):
        raise InputError(NOT_QK_MAP.format(reason="its metadata has no layers, heads and tokens."))
    if not _heads_info_ok(meta.get("heads_info"), layers, heads):
        raise InputError(NOT_QK_MAP.format(reason="its heads_info is not one entry per layer and head."))
    if table.num_rows != layers * heads * 2 * m:
        reason = f"it has {table.num_rows:,} rows, not {layers} × {heads} × 2 × {m:,}."
        raise InputError(NOT_QK_MAP.format(reason=reason))
    order = [("layer", "ascending"), ("head", "ascending"), ("kind", "descending"), ("token", "ascending")]
    table = table.sort_by(order)
    layer = table.column("layer").to_numpy()
    head = table.column("head").to_numpy()
    kind = np.asarray(table.column("kind").to_pylist())
    token = table.column("token").to_numpy()
    grid = np.meshgrid(np.arange(layers), np.arange(heads), np.arange(2), np.arange(m), indexing="ij")
    if not (
        np.array_equal(layer, grid[0].reshape(-1))
        and np.array_equal(head, grid[1].reshape(-1))
        and np.array_equal(kind, np.asarray(["query", "key"])[grid[2].reshape(-1)])
        and np.array_equal(token, grid[3].reshape(-1))
    ):
        raise InputError(NOT_QK_MAP.format(reason="its rows are not every layer, head, kind and token once."))
    xy = np.stack([table.column("x").to_numpy(), table.column("y").to_numpy()], axis=-1).reshape(
        layers, heads, 2, m, 2
    )
    if not np.isfinite(xy).all():
        raise InputError(NOT_QK_MAP.format(reason="it has coordinates that are not finite."))
    first = table.slice(0, m)  # layer 0, head 0, queries: one row per token
    tokens = {
        name: first.column(name).to_pylist()
        for name in ("text_index", "window", "position", "piece", "before", "after", "special")
    }
    return LoadedQKMap(meta, tokens, xy[:, :, 0], xy[:, :, 1])
