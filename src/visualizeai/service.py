"""The one object the web layer, the CLI and the Python API talk to: models, locks and the result cache."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass

from visualizeai.analysis.result import AnalysisResult
from visualizeai.cache import BoundedLRU
from visualizeai.config import Settings
from visualizeai.errors import InputError, ResultExpired
from visualizeai.models.catalog import Catalog, ModelSpec, load_rows
from visualizeai.models.hub import availability
from visualizeai.models.inference import EMPTY_TEXT, analyze_text
from visualizeai.models.loading import LoadedModel, ModelRegistry


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    availability: str  # embedded | local | cached | download | unavailable | loaded
    reason: str | None


@dataclass(frozen=True)
class Analysis:
    """A cached result and what serving it cost."""

    key: str
    result: AnalysisResult
    cached: bool
    total_ms: float


def result_key(model_id: str, revision: str, text: str, options: dict) -> str:
    payload = json.dumps([model_id, revision, text, options], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _result_bytes(result: AnalysisResult) -> int:
    return int(result.attentions.nbytes) + 64 * result.n


class Service:
    """Owns the catalog, the model LRU and the result cache; everything here is thread-safe."""

    def __init__(self, settings: Settings, registry: ModelRegistry | None = None):
        self.settings = settings
        self.catalog = Catalog(load_rows(settings.catalog_file), settings.allowed_roots)
        for extra in settings.extra_models:
            self.catalog.add(self.catalog.resolve(extra))
        self.registry = registry or ModelRegistry(
            settings.model_cache_size, device=settings.device, dtype=settings.dtype,
            offline=settings.offline, allow_pickle=settings.allow_pickle,
        )
        self.results: BoundedLRU[AnalysisResult] = BoundedLRU(
            settings.result_cache_size, settings.result_cache_bytes, _result_bytes
        )
        # key of the latest result per (model, text, options), so a repeat request skips loading the model
        self._recent: dict[tuple, str] = {}
        self._recent_lock = threading.Lock()

    # -- models -----------------------------------------------------------------------------------------
    def models(self) -> list[ModelStatus]:
        loaded = set(self.registry.loaded_ids())
        out = []
        for spec in self.catalog:
            if spec.id in loaded:
                out.append(ModelStatus(spec, "loaded", None))
            else:
                out.append(ModelStatus(spec, *availability(spec, self.settings.offline)))
        return out

    def resolve(self, model: str | None) -> ModelSpec:
        return self.catalog.resolve(model or self.settings.default_model)

    def model(self, model: str | None) -> LoadedModel:
        return self.registry.get(self.resolve(model))

    # -- analysis ---------------------------------------------------------------------------------------
    def check_text(self, text: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise InputError(EMPTY_TEXT)
        if len(text) > self.settings.max_text_chars:
            raise InputError(
                f"Text is {len(text):,} characters long; the limit is {self.settings.max_text_chars:,}."
            )
        return text

    def analyze(self, text: str, model: str | None = None) -> Analysis:
        """Attention of ``text`` under ``model``; a repeat of the same request is served from the cache."""
        start = time.perf_counter()
        text = self.check_text(text)
        spec = self.resolve(model)
        options: dict = {}
        recent_id = (spec.id, text, json.dumps(options, sort_keys=True))
        with self._recent_lock:
            key = self._recent.get(recent_id)
        if key is not None and (hit := self.results.get(key)) is not None:
            return Analysis(key, hit, True, (time.perf_counter() - start) * 1000)
        loaded = self.registry.get(spec)
        key = result_key(spec.id, loaded.revision, text, options)
        result = self.results.get(key)
        cached = result is not None
        if result is None:
            result = analyze_text(loaded, text)
            self.results.put(key, result)
        with self._recent_lock:
            self._recent[recent_id] = key
            if len(self._recent) > 4 * self.settings.result_cache_size:
                self._recent.pop(next(iter(self._recent)))
        return Analysis(key, result, cached, (time.perf_counter() - start) * 1000)

    def result(self, key: str) -> AnalysisResult:
        result = self.results.get(key)
        if result is None:
            raise ResultExpired(f"Analysis {key!r} is unknown or has expired from the cache; run it again.")
        return result

    def check_layer_head(self, result: AnalysisResult, layer: int, head: int | None) -> None:
        if not 0 <= layer < result.layers:
            raise InputError(f"Layer {layer} is out of range: this model has layers 0–{result.layers - 1}.")
        if head is not None and not 0 <= head < result.heads:
            raise InputError(f"Head {head} is out of range: this model has heads 0–{result.heads - 1}.")
