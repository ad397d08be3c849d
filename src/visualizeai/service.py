"""The one object the web layer, the CLI and the Python API talk to: models, locks, the result cache, the work
budget of every derived computation (``budgets``) and the caps on concurrent heavy work (``limits``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from visualizeai import budgets, derived, export, limits, validation
from visualizeai.analysis import display
from visualizeai.analysis.result import AnalysisResult
from visualizeai.attention.store import (
    CHUNK_ELEMENTS,
    POOLS,
    aligned_edges,
    bin_edges,
    check_dense,
    check_range,
)
from visualizeai.cache import BoundedLRU, KeyedLocks
from visualizeai.config import Settings
from visualizeai.errors import InputError, ResultExpired
from visualizeai.inputs import Inputs, InputsStore
from visualizeai.models import generate as generation
from visualizeai.models import predict
from visualizeai.models.catalog import Catalog, ModelSpec, load_rows
from visualizeai.models.hub import availability
from visualizeai.models.inference import analyze_text
from visualizeai.models.loading import LoadedModel, ModelRegistry

HEAVY_WORK = "heavy computations (rollout, flow, head statistics, thumbnails, comparisons, exports)"
TILE_SIZE = 256  # default side of a tile, in cells
TILE_MAX_SIZE = 1024  # largest side: 1024² float16 = 2 MiB
# Pooled pictures (tiles that are not exact) kept once computed, by analysis, head, ranges, size and pooling:
# zooming back out, or another view of the same head, does not recompute the weights behind them.
PICTURE_CACHE_BYTES = 128 * 2**20
PICTURE_CACHE_ITEMS = 1024
# A whole head max-pooled is computed once in bins of a power of two cells aligned at 0, at most this many a
# side (a 16 MiB float32 picture at 2,048), whatever tile is asked for: every tile of the heatmap's grid whose
# bins are that power of two or coarser (tiles start at multiples of their span, a span is samples × 2^level)
# is cut from it exactly (a maximum of maxima), so the first picture of every screen size and the next zoom
# levels cost one pass over the head.
WHOLE_PICTURE_BINS = 2048
REFINE_NICENESS = 10  # the exact pass after a quick first picture yields the CPU to the page's requests
SPAN_PATTERN = re.compile(r"(\d{1,12}):(\d{1,12})", re.ASCII)
SPAN_ERROR = (
    "{name} must be a range a:b of token positions with 0 ≤ a < b ≤ {n} (this analysis has {n} tokens); "
    "got {got!r}."
)
TILE_SIZE_ERROR = "size must be between 1 and {most}; got {size}."
TILE_POOL_ERROR = "pool must be one of {pools}; got {pool!r}."
KEY_PATTERN = re.compile(r"[0-9a-f]{12,32}", re.ASCII)
DIGEST_LENGTH = 12  # hex characters of a key that name it in a short permalink while it is unique
TOP_KEYS_MAX = 256
ROW_ERROR = "row {row} is out of range: this analysis has {n:,} tokens (rows 0–{last})."
TOP_K_ERROR = "k must be between 1 and {most}; got {k}."
PER_HEAD_ERROR = "per_head=true sends every head of one layer: give a layer and leave head out."
TILE_HINT = (
    " Read it in tiles instead: GET /api/v1/analyses/{key}/tile?layer=L&head=H&rows=a:b&cols=c:d&size=S "
    "(exact blocks, or mean/max-pooled pictures of any range)."
)


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    availability: str  # embedded | local | cached | download | unavailable | loaded
    reason: str | None
    attention_mode: str | None = None  # "captured" | "dense" once loaded; None: not loaded, not known yet
    attention_reason: str | None = None  # why a loaded model reads attention densely


@dataclass(frozen=True)
class Analysis:
    """A cached result and what serving it cost."""

    key: str
    result: AnalysisResult
    cached: bool
    total_ms: float


@dataclass(frozen=True)
class KeyLookup:
    """What the server knows of an analysis key or a short digest of one (``Service.lookup``).

    Attributes:
        key: the full key it names, or None when nothing is known of it.
        cached: True while the result is in the result cache (every view can be served).
        inputs: the model and text analysed under it, while the inputs store remembers them (a result
            that expired can then be run again); None for an opened saved analysis or a forgotten one.
    """

    key: str | None
    cached: bool
    inputs: Inputs | None


class AmbiguousKey(InputError):
    """A short digest that is the start of more than one key held (the page answers 409)."""


def result_key(model_id: str, revision: str, text: str, options: dict) -> str:
    payload = json.dumps([model_id, revision, text, options], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Tile:
    """A block of one head (or a mean) as the tiles endpoint sends it.

    Attributes:
        matrix: float32 ``[r, c]``: exact weights, or mean/max-pooled (``AttentionStore.pooled``).
        rows, cols: the token ranges ``(a, b)``, ``(c, d)`` it covers.
        exact: True when ``matrix`` holds the weights themselves (the block fit ``size``).
        pool: the pooling asked for ("mean" or "max"); it applies only when not exact.
    """

    matrix: np.ndarray  # float32 [r, c]
    rows: tuple[int, int]
    cols: tuple[int, int]
    exact: bool
    pool: str


@dataclass(frozen=True)
class TopKeys:
    """The keys a range of query rows attends to most (``Service.top_keys``): ``keys`` holds
    ``(position, mean weight)`` pairs, strongest first."""

    rows: tuple[int, int]
    layer: int | None
    head: int | None
    n: int
    keys: list[tuple[int, float]]


def parse_span(span: str | tuple[int, int] | None, n: int, name: str) -> tuple[int, int]:
    """A token range as ``(a, b)`` with ``0 <= a < b <= n``: from ``"a:b"``, a pair, or None (all of
    ``0:n``); InputError naming the valid range otherwise."""
    if span is None:
        return 0, n
    if isinstance(span, str):
        match = SPAN_PATTERN.fullmatch(span)
        if match is None:
            raise InputError(SPAN_ERROR.format(name=name, n=n, got=span[:40]))
        a, b = int(match[1]), int(match[2])
    else:
        a, b = (int(v) for v in span)
    try:
        return check_range((a, b), n, name)  # the store's rule, 0 <= a < b <= n
    except ValueError:
        got = span if isinstance(span, str) else f"{a}:{b}"
        raise InputError(SPAN_ERROR.format(name=name, n=n, got=got)) from None


def whole_bin_width(n: int) -> int:
    """Cells a side of a whole picture's bin for ``n`` tokens: the smallest power of two that keeps the
    picture within ``WHOLE_PICTURE_BINS`` bins a side."""
    width = 1
    while -(-n // width) > WHOLE_PICTURE_BINS:
        width *= 2
    return width


def cut_plan(
    edges: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the bins of the tile of ``rows``, ``cols`` at ``size`` (the tiles API's bins) start among a
    picture's bin ``edges``, when every bin of the tile is a union of the picture's bins; None otherwise."""

    def starts(a: int, b: int) -> np.ndarray | None:
        wanted = a + bin_edges(b - a, min(size, b - a))
        at = np.searchsorted(edges, wanted)
        if at[-1] >= len(edges) or not np.array_equal(edges[at], wanted):
            return None
        return at

    r, c = starts(*rows), starts(*cols)
    return None if r is None or c is None else (r, c)


def cut_max_picture(picture: np.ndarray, plan: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The max-pooled tile that ``plan`` (``cut_plan``) places on ``picture``: each of its bins the maximum
    of the picture's bins inside it, exactly the values a pass over the weights gives."""
    r, c = plan
    block = picture[r[0] : r[-1], c[0] : c[-1]]
    return np.maximum.reduceat(np.maximum.reduceat(block, r[:-1] - r[0], axis=0), c[:-1] - c[0], axis=1)


def _result_bytes(result: AnalysisResult) -> int:
    return int(result.attention.nbytes) + 64 * result.n


class Service:
    """Owns the catalog, the model LRU and the result cache; everything here is thread-safe."""

    def __init__(self, settings: Settings, registry: ModelRegistry | None = None):
        self.settings = settings
        self.catalog = Catalog(load_rows(settings.catalog_file), settings.allowed_roots)
        for extra in settings.extra_models:
            self.catalog.add(self.catalog.resolve(extra))
        self.registry = registry or ModelRegistry(
            settings.model_cache_size,
            max_bytes=settings.model_cache_bytes,
            device=settings.device,
            dtype=settings.dtype,
            offline=settings.offline,
            allow_pickle=settings.allow_pickle,
        )
        self.results: BoundedLRU[AnalysisResult] = BoundedLRU(
            settings.result_cache_size, settings.result_cache_bytes, _result_bytes
        )
        self.pictures: BoundedLRU[np.ndarray] = BoundedLRU(
            PICTURE_CACHE_ITEMS, PICTURE_CACHE_BYTES, lambda a: int(a.nbytes)
        )
        # key of the latest result per (model, text, options), so a repeat request skips loading the model
        self._recent: dict[tuple, str] = {}
        self._recent_lock = threading.Lock()
        self._computing = KeyedLocks()  # concurrent requests for one result run the model once
        # model and text of each analysis, kept longer than its result: an expired page can offer a re-run
        self.inputs = InputsStore(settings.inputs_store_size, settings.inputs_store_bytes)
        # rollout, flow, head statistics and thumbnails of cached results, each computed once per key
        # (derived.py); a value over the cache's bytes (only with a raised work budget) in a tier of two
        self.aggregates = derived.AggregateCache(
            oversize_bytes=2 * budgets.largest_value_bytes(settings.work_budget)
        )
        # Concurrency caps (limits.py): one more than the cap is refused at once with a 503, never queued
        retry = settings.retry_after_s
        self.heavy = limits.Limit(HEAVY_WORK, settings.max_heavy, "VISUALIZEAI_MAX_HEAVY", retry)
        self.generations = limits.Limit(
            "generation streams", settings.max_generations, "VISUALIZEAI_MAX_GENERATIONS", retry
        )
        self.uploads = limits.Limit("uploads", settings.max_uploads, "VISUALIZEAI_MAX_UPLOADS", retry)
        limits.check_caps(
            {
                "VISUALIZEAI_MAX_HEAVY": settings.max_heavy,
                "VISUALIZEAI_MAX_GENERATIONS": settings.max_generations,
                "VISUALIZEAI_MAX_UPLOADS": settings.max_uploads,
            }
        )

    # -- models -----------------------------------------------------------------------------------------
    def models(self) -> list[ModelStatus]:
        out = []
        for spec in self.catalog:
            if (held := self.registry.peek(spec.id)) is not None:
                check = held.attention_check
                reason = check.reason if check is not None else None
                out.append(ModelStatus(spec, "loaded", None, held.attention_mode, reason))
            else:
                out.append(ModelStatus(spec, *availability(spec, self.settings.offline)))
        return out

    def resolve(self, model: str | None) -> ModelSpec:
        """The catalog entry ``model`` names; None, empty or blank mean ``settings.default_model``."""
        return self.catalog.resolve((model or "").strip() or self.settings.default_model)

    def model(self, model: str | None) -> LoadedModel:
        return self.registry.get(self.resolve(model))

    # -- analysis ---------------------------------------------------------------------------------------
    def check_text(self, text: str) -> str:
        """``text`` if it can be analysed (see ``validation.check_text``), else an InputError saying why."""
        return validation.check_text(text, self.settings.max_text_chars)

    def analyze(self, text: str, model: str | None = None, top_k: int = predict.DEFAULT_TOP_K) -> Analysis:
        """Attention of ``text`` under ``model``, with the LM head's top-k guesses at ``[MASK]`` positions
        (masked LMs) or for the next token (causal LMs); a repeat is served from the cache."""
        start = time.perf_counter()
        text = self.check_text(text)
        top_k = predict.check_top_k(top_k)
        spec = self.resolve(model)
        options: dict = {} if top_k == predict.DEFAULT_TOP_K else {"top_k": top_k}
        recent_id = (spec.id, text, json.dumps(options, sort_keys=True))
        with self._recent_lock:
            key = self._recent.get(recent_id)
        if key is not None and (hit := self.results.get(key)) is not None:
            self.inputs.remember(key, spec.id, text)
            return Analysis(key, hit, True, (time.perf_counter() - start) * 1000)
        loaded = self.registry.get(spec)
        key = result_key(spec.id, loaded.revision, text, options)
        with self._computing.hold(key):
            result = self.results.get(key)
            cached = result is not None
            if result is None:
                result = analyze_text(
                    loaded,
                    text,
                    top_k,
                    max_tokens=self.settings.max_tokens,
                    max_attention_bytes=self.settings.max_attention_bytes,
                )
                self.results.put(key, result)
        self.inputs.remember(key, spec.id, text)
        with self._recent_lock:
            self._recent[recent_id] = key
            if len(self._recent) > 4 * self.settings.result_cache_size:
                self._recent.pop(next(iter(self._recent)))
        return Analysis(key, result, cached, (time.perf_counter() - start) * 1000)

    def fill_mask(self, text: str, model: str | None = None, top_k: int = predict.DEFAULT_TOP_K) -> Analysis:
        """Like ``analyze``, for a text that must contain ``[MASK]`` (or the model's mask token): refuses a
        model that cannot fill masks (TaskUnsupported) and a text without a mask (InputError)."""
        text = self.check_text(text)
        predict.check_fill_mask(self.model(model))
        analysis = self.analyze(text, model, top_k)
        if not analysis.result.predictions:
            mask = getattr(self.model(model).tokenizer, "mask_token", None) or predict.MASK_ALIAS
            shown = predict.MASK_ALIAS if mask == predict.MASK_ALIAS else f"{predict.MASK_ALIAS} or {mask}"
            raise InputError(f"The text has no mask to fill: write {shown} where a word should be guessed.")
        return analysis

    def generate(
        self,
        text: str,
        model: str | None = None,
        max_new_tokens: int = generation.DEFAULT_NEW_TOKENS,
        *,
        greedy: bool = True,
        seed: int | None = None,
    ) -> generation.Generation:
        """Start generating from ``text``: checks now (errors raise here), runs the model as ``steps`` is
        iterated, one token per step, each step holding the model's lock only for its own forward pass."""
        text = self.check_text(text)
        return generation.start_generation(self.model(model), text, max_new_tokens, greedy=greedy, seed=seed)

    def result(self, key: str) -> AnalysisResult:
        result = self.results.get(key)
        if result is None:
            raise ResultExpired(f"Analysis {key!r} is unknown or has expired from the cache; run it again.")
        return result

    def lookup(self, ref: str) -> KeyLookup:
        """What ``ref`` names: a full key, or a short digest (its first ``DIGEST_LENGTH`` or more hex
        characters) that starts exactly one key held. Cached results are searched first, then the inputs
        store; AmbiguousKey when a digest starts several keys of the one searched. Anything else (not hex,
        unknown) is a lookup with ``key`` None."""
        ref = ref.strip().lower()
        if KEY_PATTERN.fullmatch(ref) is None:
            return KeyLookup(None, False, None)
        for keys, cached in ((self.results.keys(), True), (self.inputs.keys(), False)):
            matches = [key for key in keys if key.startswith(ref)]
            if len(matches) > 1:
                raise AmbiguousKey(
                    f"{ref!r} is the start of {len(matches)} analyses' keys; use more of the key "
                    f"(the full key has 32 characters)."
                )
            if matches:
                key = matches[0]
                return KeyLookup(key, cached and self.results.get(key) is not None, self.inputs.get(key))
        return KeyLookup(None, False, None)

    def adopt(self, result: AnalysisResult, digest: str) -> Analysis:
        """Keep a result not computed here (an opened saved analysis) in the result cache, under a key derived
        from its content (``digest``), so every view and export can serve it without a model."""
        start = time.perf_counter()
        key = result_key(result.model_id, result.revision or "", result.text, {"saved": digest})
        cached = self.results.get(key) is not None
        if not cached and not self.results.put(key, result):
            raise InputError(
                f"The saved analysis needs {_result_bytes(result):,} bytes in memory, more than the result "
                f"cache holds ({self.settings.result_cache_bytes:,}); raise VISUALIZEAI_RESULT_CACHE_BYTES."
            )
        return Analysis(key, result, cached, (time.perf_counter() - start) * 1000)

    def check_layer_head(self, result: AnalysisResult, layer: int | None, head: int | None) -> None:
        """InputError naming the valid range when ``layer`` or ``head`` is out of range (None passes)."""
        result.attention.check_layer(layer)
        result.attention.check_head(head)

    def attention_view(
        self,
        key: str,
        *,
        layer: int | None,
        head: int | None,
        agg: str = "none",
        hide_special: bool = False,
        merge_words: bool = False,
    ) -> display.DisplayMatrix:
        """What a view shows of analysis ``key`` (see ``analysis.display.display_attention``), read from the
        cached result's attention store, never by running the model again: only the matrices asked for are
        made dense. With ``agg="none"`` a layer is required, so no request asks for the whole model's
        attention at once; a request above ``DENSE_MAX_BYTES`` is refused (DenseTooLarge, naming tiles)."""
        result = self.result(key)
        store = result.attention
        if layer is None and agg == "none":
            raise InputError(
                "layer is required with agg=none (attention is sent one layer at a time); "
                "or average with agg=mean_heads, mean_layers or mean_all."
            )
        self.check_layer_head(result, layer, head)
        try:
            picks, lead = display.aggregate_selection(agg, layer, head, store.layers, store.heads)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        n = store.n
        check_dense(len(picks), n, n, hint=TILE_HINT.format(key=key))
        if agg == "none" and layer is not None and head is None:
            matrix = store.layer_array(layer)  # every head of the layer in one pass over its rows
        else:
            matrix = np.empty((len(picks), n, n), dtype=np.float32)
            for i, (pick_layer, pick_head) in enumerate(picks):
                matrix[i] = store.layer_dense(pick_layer, pick_head)
        try:
            return display.display_matrix(
                matrix.reshape(lead + (n, n)),
                result.special_mask,
                result.word_ids,
                hide_special=hide_special,
                merge_words=merge_words,
            )
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def tile(
        self,
        key: str,
        layer: int | None,
        head: int | None,
        rows: str | tuple[int, int] | None = None,
        cols: str | tuple[int, int] | None = None,
        size: int = TILE_SIZE,
        pool: str = "mean",
    ) -> Tile:
        """Rows ``a:b`` and columns ``c:d`` of a head of analysis ``key`` (``head`` None: the mean of
        ``layer``'s heads; both None: of every head) at most ``size × size``: the exact weights when the block
        fits, else mean- or max-pooled by ``AttentionStore.pooled``'s bins. Ranges default to all tokens."""
        result = self.result(key)
        self.check_layer_head(result, layer, head)
        n = result.n
        rows, cols = parse_span(rows, n, "rows"), parse_span(cols, n, "cols")
        if not 1 <= size <= TILE_MAX_SIZE:
            raise InputError(TILE_SIZE_ERROR.format(most=TILE_MAX_SIZE, size=size))
        if pool not in POOLS:
            raise InputError(TILE_POOL_ERROR.format(pools=", ".join(POOLS), pool=pool))
        exact = rows[1] - rows[0] <= size and cols[1] - cols[0] <= size
        matrices = (result.layers if layer is None else 1) * (result.heads if head is None else 1)
        budgets.check_tile(matrices, rows[1] - rows[0], cols[1] - cols[0], self.settings.work_budget)
        if exact:
            matrix = result.attention.pooled(layer, head, rows, cols, size=size, pool=pool)
        else:
            matrix = self._picture(key, result, layer, head, rows, cols, size, pool)
        return Tile(matrix, rows, cols, exact, pool)

    def _picture(self, key, result, layer, head, rows, cols, size, pool) -> np.ndarray:
        """A pooled tile from the picture cache, cut from a cached whole max-pooled head when its bins allow,
        or computed once (concurrent requests for one picture wait for the one computation)."""
        name = f"{key}|{layer}|{head}|{rows[0]}:{rows[1]}|{cols[0]}:{cols[1]}|{size}|{pool}"
        if (hit := self.pictures.get(name)) is not None:
            return hit
        n = result.n
        if layer is not None and head is not None and pool == "max" and n > TILE_MAX_SIZE:
            width = whole_bin_width(n)
            plan = cut_plan(aligned_edges(n, width), rows, cols, size)
            # the whole head costs one pass: worth it for a tile over at least half of it (the first picture
            # of every screen size and the next zoom level), and free once computed
            spans_half = 2 * (rows[1] - rows[0]) >= n and 2 * (cols[1] - cols[0]) >= n
            kept = self.pictures.get(self._whole_name(key, layer, head, width)) is not None
            if plan is not None and (spans_half or kept):
                cut = cut_max_picture(self._whole_picture(key, result, layer, head), plan)
                self.pictures.put(name, cut)
                return cut
        return self._computed(
            name, lambda: result.attention.pooled(layer, head, rows, cols, size=size, pool=pool)
        )

    @staticmethod
    def _whole_name(key: str, layer: int, head: int, width: int) -> str:
        return f"{key}|{layer}|{head}|whole:{width}"

    def _whole_picture(self, key: str, result: AnalysisResult, layer: int, head: int) -> np.ndarray:
        """The whole head max-pooled in ``whole_bin_width`` bins, kept, or computed once: from the forward
        pass's log-sum-exp where the store kept it (``quick_max_picture``), else by a softmax pass."""
        width = whole_bin_width(result.n)

        def compute() -> np.ndarray:
            quick = result.attention.quick_max_picture(layer, head, width)
            return quick if quick is not None else result.attention.max_picture(layer, head, width)

        return self._computed(self._whole_name(key, layer, head, width), compute)

    def _computed(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``name`` from the picture cache, or computed once under its lock and kept."""
        with self._computing.hold(name):
            if (hit := self.pictures.get(name)) is not None:
                return hit
            value = compute()
            self.pictures.put(name, value)
            return value

    def warm(self, key: str, layer: int = 0, head: int = 0) -> threading.Thread | None:
        """Compute what the heatmap of a long analysis asks for first (the whole head max-pooled), so that
        it is ready, or under way, when the page asks for it; nothing for inputs drawn as one exact tile.
        When that picture was the quick one, the softmax pass follows in a thread of low CPU priority
        (``refine``), which is returned. Errors are left to the request that would have met them."""
        try:
            result = self.result(key)
            if result.n > TILE_MAX_SIZE:
                self._whole_picture(key, result, layer, head)  # what the page asks for first
                if result.attention.has_quick_picture(layer):
                    thread = threading.Thread(
                        target=self.refine, args=(key, result, layer, head), name="refine", daemon=True
                    )
                    thread.start()
                    return thread
        except Exception:  # noqa: BLE001 - a warm-up never fails anything; the request asks again
            pass
        return None

    def refine(self, key: str, result: AnalysisResult, layer: int, head: int) -> None:
        """The softmax pass over a head whose first picture was the quick one: its normalisers make the
        zoomed-in tiles of the head cost only their own cells, and its picture (exact to float32 rounding)
        replaces the quick one. On Linux the calling thread lowers its own priority first (niceness is a
        thread's own there, and the threads its parallel loops start inherit it), so that the pass takes
        the CPU the page and its requests leave."""
        if sys.platform == "linux":
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REFINE_NICENESS)
            except OSError:
                pass
        try:
            width = whole_bin_width(result.n)
            exact = result.attention.max_picture(layer, head, width)
            self.pictures.put(self._whole_name(key, layer, head, width), exact)
        except Exception:  # noqa: BLE001 - the quick picture stays; tiles compute their own rows
            return

    def row(
        self, key: str, layer: int | None, head: int | None, row: int, per_head: bool = False
    ) -> np.ndarray:
        """Query row ``row`` of analysis ``key`` over every key position, exact: float32 ``[n]`` for a head
        or a mean (``head`` None: the layer's heads averaged; ``layer`` None too: every head of every layer),
        or ``[heads, n]`` with ``per_head`` (every head of ``layer``, read in one pass)."""
        result = self.result(key)
        self.check_layer_head(result, layer, head)
        n = result.n
        if not 0 <= row < n:
            raise InputError(ROW_ERROR.format(row=row, n=n, last=n - 1))
        store = result.attention
        if per_head:
            if layer is None or head is not None:
                raise InputError(PER_HEAD_ERROR)
            budgets.check_tile(result.heads, 1, n, self.settings.work_budget)
            _, weights = next(store.head_rows(layer, (row, row + 1)))  # one row: one chunk [heads, 1, n]
            return weights[:, 0]
        matrices = (result.layers if layer is None else 1) * (result.heads if head is None else 1)
        budgets.check_tile(matrices, 1, n, self.settings.work_budget)
        return store.block(layer, head, (row, row + 1), (0, n))[0]

    def top_keys(
        self, key: str, layer: int | None, head: int | None, rows: str | tuple[int, int] | None, k: int
    ) -> TopKeys:
        """The ``k`` key positions that query rows ``a:b`` of analysis ``key`` attend to most, on average:
        the exact weights of a head (or the mean ``layer``/``head`` select, as in ``tile``) summed in float64
        over row chunks of the store and divided by ``b - a``; strongest first, ties by lower position.
        ``k`` is at most ``TOP_KEYS_MAX``; fewer come back when ``n < k``."""
        result = self.result(key)
        self.check_layer_head(result, layer, head)
        n = result.n
        a, b = parse_span(rows, n, "rows")
        if not 1 <= k <= TOP_KEYS_MAX:
            raise InputError(TOP_K_ERROR.format(most=TOP_KEYS_MAX, k=k))
        matrices = (result.layers if layer is None else 1) * (result.heads if head is None else 1)
        budgets.check(
            f"The top keys of rows {a:,}:{b:,}",
            budgets.cost_cells(matrices, b - a, n),
            self.settings.work_budget,
            f"{matrices:,} head(s) averaged × {b - a:,} rows × {n:,} keys read",
            "Ask for fewer rows, or one head instead of a mean.",
        )
        total = np.zeros(n, dtype=np.float64)
        step = max(1, CHUNK_ELEMENTS // n)
        for start in range(a, b, step):
            block = result.attention.block(layer, head, (start, min(b, start + step)), (0, n))
            total += block.sum(axis=0, dtype=np.float64)
        mean = total / (b - a)
        order = np.lexsort((np.arange(n), -mean))[: min(k, n)]
        return TopKeys((a, b), layer, head, n, [(int(i), float(mean[i])) for i in order])

    def thumbnails(self, key: str, size: int, pool: str = "mean", layer: int | None = None) -> np.ndarray:
        """Every head of analysis ``key`` pooled to ``s × s``, ``s = min(size, n)``: float32
        ``[layers, heads, s, s]`` by ``AttentionStore.pooled_heads`` (mean or max); with ``layer`` only that
        layer's heads, ``[heads, s, s]``, so a client can fetch the overview a layer at a time. Each layer's
        pictures are computed once per key and shared by both forms."""
        result = self.result(key)
        if pool not in POOLS:
            raise InputError(TILE_POOL_ERROR.format(pools=", ".join(POOLS), pool=pool))
        store = result.attention
        budget = self.settings.work_budget

        def one_layer(index: int) -> Callable[[], np.ndarray]:
            return lambda: store.pooled_heads(index, size=size, pool=pool)

        if layer is not None:
            store.check_layer(layer)
            budgets.check_thumbnails(1, store.heads, store.n, budget)
            return self._derived(key, f"thumbnails:{size}:{pool}:{layer}", one_layer(layer))
        budgets.check_thumbnails(store.layers, store.heads, store.n, budget)

        def compute() -> np.ndarray:
            # layers already fetched one at a time are reused, the others computed here (one heavy slot)
            cached = [self.aggregates.peek(key, f"thumbnails:{size}:{pool}:{i}") for i in range(store.layers)]
            return np.stack([c if c is not None else one_layer(i)() for i, c in enumerate(cached)])

        return self._derived(key, f"thumbnails:{size}:{pool}", compute)

    # -- aggregates and comparisons (derived.py), computed from cached results ----------------------------
    # Each checks its work budget first (budgets.py: over it, a WorkTooLarge before any work), then computes
    # under a heavy slot (Busy when max_heavy are running); a cached value needs neither.
    def _derived(self, key: str, what: str, compute: Callable[[], Any]) -> Any:
        """``what`` of analysis ``key`` from the aggregate cache, or computed once under a heavy slot."""
        value = self.aggregates.peek(key, what)
        if value is not None:
            return value
        with self.heavy.hold():  # waiting for another request's computation of it holds a slot too
            return self.aggregates.get(key, what, compute)

    def rollout(self, key: str) -> np.ndarray:
        """Attention rollout of analysis ``key``, float32 ``[layers, n, n]``, computed once per key."""
        result = self.result(key)
        derived.check_rollout(result, self.settings.work_budget)
        return self._derived(key, "rollout", lambda: derived.rollout(result))

    def flow(self, key: str, layer: int) -> np.ndarray:
        """Attention flow at ``layer`` of analysis ``key``, float32 ``[n, n]``; FlowTooLarge when too long."""
        result = self.result(key)
        self.check_layer_head(result, layer, None)
        budget = self.settings.work_budget
        derived.check_flow(result, layer, budget)
        return self._derived(key, f"flow:{layer}", lambda: derived.flow(result, layer, budget))

    def flow_refusals(self, key: str) -> list[str | None]:
        """Per layer of analysis ``key``: why flow there would be refused, or None where it is allowed."""
        result = self.result(key)
        budget = self.settings.work_budget
        return [derived.flow_refusal(result, layer, budget) for layer in range(result.layers)]

    def flow_max_tokens(self, layer: int) -> int:
        """Most tokens for which flow of every token at ``layer`` is within the work budget."""
        return derived.flow_max_tokens(layer, self.settings.work_budget)

    def head_stats(self, key: str) -> dict[str, np.ndarray]:
        """Per-head statistics of analysis ``key``: name -> float32 ``[layers, heads]``, computed once."""
        result = self.result(key)
        budgets.check_head_stats(result.layers, result.heads, result.n, self.settings.work_budget)
        return self._derived(key, "head_stats", lambda: derived.head_stats(result))

    def compare(
        self,
        mode: str,
        key_a: str,
        key_b: str,
        layer: int,
        head: int | None,
        layer_b: int | None = None,
        head_b: int | None = None,
    ) -> derived.Comparison:
        """Analyses ``key_a`` and ``key_b`` side by side (two sentences, or two models on one text)."""
        a, b = self.result(key_a), self.result(key_b)
        derived.check_compare(mode, a, b, head, head if head_b is None else head_b, self.settings.work_budget)
        with self.heavy.hold():
            return derived.compare(mode, a, b, layer, head, layer_b, head_b)

    # -- files (export.py) -----------------------------------------------------------------------------------
    def write(self, result: AnalysisResult, path, fmt: str | None = None, **options) -> None:
        """Write ``result`` to ``path`` (format: ``fmt`` or the suffix) within ``export_bytes``'s budget."""
        path = Path(path)
        path.write_bytes(self.export_bytes(result, export.format_of(path, fmt), **options))

    def export_bytes(
        self,
        result: AnalysisResult,
        fmt: str,
        *,
        layer: int = 0,
        head: int = 0,
        layers: list[int] | None = None,
        scale: str = "linear",
    ) -> bytes:
        """``result`` as a file in ``fmt`` (``export.to_bytes``; a cached one, or one read from a file), after
        its work budget (``ExportTooLarge``, 413 on the web) and under a heavy slot."""
        if fmt in ("png", "svg"):
            export.check_layer_head(result, layer, head)  # a bad head is a 400 whatever it would cost
        budgets.check_export(fmt, result.layers, result.heads, result.n, self.settings.work_budget, layers)
        with self.heavy.hold():
            return export.to_bytes(result, fmt, layer=layer, head=head, layers=layers, scale=scale)
