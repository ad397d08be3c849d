"""Settings: one frozen dataclass, built from defaults, environment variables and CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_PREFIX = "VISUALIZEAI_"
# English runs at about 4–5 characters per token for modern tokenizers; 8 leaves room for code and numbers.
CHARS_PER_TOKEN = 8
# A character may arrive JSON-escaped as "\\uXXXX" (6 bytes), twice for a character outside the BMP.
BODY_BYTES_PER_CHAR = 6
BODY_OVERHEAD = 65_536  # the rest of a JSON body: model id, options
# A form field percent-encodes each UTF-8 byte of a character ("%F0%9F%98%80"): at most 12 bytes a character.
FORM_BYTES_PER_CHAR = 12


def _env_bool(name: str) -> bool | None:
    value = os.environ.get(ENV_PREFIX + name)
    if value is None or value == "":
        return None
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a VisualizeAI process.

    Attributes:
        default_model: catalog id used when a request names no model.
        catalog_file: optional JSON file with extra catalog entries.
        extra_models: ids or paths given with ``--model`` that join the catalog for this process.
        allowed_roots: directories under which local model directories may be loaded.
        allow_pickle: load ``pytorch_model.bin`` checkpoints that have no safetensors weights.
        offline: True forbids the hub, False always tries it, None probes reachability once.
        device: "auto", "cpu" or "cuda[:N]".
        dtype: "float32", "float16" or "bfloat16" for the model weights (attention is returned as float32).
        model_cache_size / model_cache_bytes: bounds of the loaded-model LRU (count, and bytes of weights; the
            model loaded last always stays).
        result_cache_size / result_cache_bytes: bounds of the analysis result cache.
        max_tokens: most tokens analysed at once: a model's own context window is capped at this; longer texts
            are truncated and the truncation is reported.
        max_text_chars: longest accepted input text in characters; by default ``CHARS_PER_TOKEN`` per token
            of ``max_tokens`` (262,144 for 32,768 tokens), so a text that fills the cap is never refused.
        max_body_bytes: largest request body (JSON, a corpus summary), with or without Content-Length; by
            default room for ``max_text_chars`` characters JSON-escaped (``BODY_BYTES_PER_CHAR`` each) plus
            ``BODY_OVERHEAD``.
        max_attention_bytes: most bytes one analysis's attention may hold: captured queries and keys, or the
            dense float32 weights of a model that runs in dense mode; a longer input is refused with the
            figures before the model runs.
        max_upload_bytes: largest saved analysis (.npz) the app opens; it may unpack to at most four times
            this.
        work_budget: most elements (multiply-adds or array cells, whichever dominates) one derived computation
            (rollout, flow, head statistics, exports, thumbnails, comparisons) may cost; over it the request
            is refused with the figure before any work starts.
        max_uploads / max_generations / max_heavy: how many saved-analysis uploads, generation streams and
            heavy derived computations may run at once; one more gets a 503 with ``Retry-After``.
        retry_after_s: the ``Retry-After`` those 503s carry.
        request_timeout_s: a request whose headers or body stall this long is closed.
        max_connections: most connections served at once (more get a 503 from the server).
        max_header_bytes / max_url_bytes: request headers over this get a 431, a URL over this a 414.
        max_form_bytes: largest HTML form body (the index page's form posted to ``/analysis``); by default
            room for ``max_text_chars`` characters percent-encoded (``FORM_BYTES_PER_CHAR`` each) plus
            ``BODY_OVERHEAD``.
        inputs_store_size / inputs_store_bytes: bounds of the store of analysed inputs (model id and text by
            result key), which outlives the result cache so that an expired analysis page can offer to run
            the same input again.
    """

    host: str = "127.0.0.1"
    port: int = 5000
    default_model: str = "all-MiniLM-L6-v2"
    catalog_file: Path | None = None
    extra_models: tuple[str, ...] = ()
    allowed_roots: tuple[Path, ...] = field(default_factory=lambda: (Path.cwd(),))
    allow_pickle: bool = False
    offline: bool | None = None
    device: str = "auto"
    dtype: str = "float32"
    model_cache_size: int = 2
    model_cache_bytes: int = 4_000_000_000
    result_cache_size: int = 32
    result_cache_bytes: int = 1_000_000_000
    max_tokens: int = 32_768
    max_text_chars: int = 0  # 0: derived from max_tokens
    max_body_bytes: int = 0  # 0: derived from max_text_chars
    max_attention_bytes: int = 8_000_000_000
    max_upload_bytes: int = 200_000_000  # an opened saved analysis (.npz); bert-base at 512 tokens is ~100 MB
    thumbnail_size: int = 48
    work_budget: int = 4_000_000_000
    max_uploads: int = 2
    max_generations: int = 4
    max_heavy: int = 2
    retry_after_s: int = 5
    request_timeout_s: float = 30.0
    max_connections: int = 64
    max_header_bytes: int = 16_384
    max_url_bytes: int = 65_536
    max_form_bytes: int = 0  # 0: derived from max_text_chars
    inputs_store_size: int = 256
    inputs_store_bytes: int = 64 * 2**20

    def __post_init__(self) -> None:
        # frozen: derived defaults are filled in through object.__setattr__
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if not self.max_text_chars:
            object.__setattr__(self, "max_text_chars", CHARS_PER_TOKEN * self.max_tokens)
        if not self.max_body_bytes:
            body = BODY_BYTES_PER_CHAR * self.max_text_chars + BODY_OVERHEAD
            object.__setattr__(self, "max_body_bytes", body)
        if not self.max_form_bytes:
            form = FORM_BYTES_PER_CHAR * self.max_text_chars + BODY_OVERHEAD
            object.__setattr__(self, "max_form_bytes", form)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then ``VISUALIZEAI_*`` environment variables, then explicit overrides."""
        values: dict[str, object] = {}
        env = os.environ
        if catalog := env.get(ENV_PREFIX + "CATALOG"):
            values["catalog_file"] = Path(catalog)
        if roots := env.get(ENV_PREFIX + "ALLOWED_ROOTS"):
            values["allowed_roots"] = tuple(Path(p) for p in roots.split(os.pathsep) if p)
        for name, key in (("ALLOW_PICKLE", "allow_pickle"), ("OFFLINE", "offline")):
            if (flag := _env_bool(name)) is not None:
                values[key] = flag
        for name, key in (("DEVICE", "device"), ("DTYPE", "dtype"), ("DEFAULT_MODEL", "default_model")):
            if value := env.get(ENV_PREFIX + name):
                values[key] = value
        for name, key in (
            ("MODEL_CACHE_SIZE", "model_cache_size"),
            ("MODEL_CACHE_BYTES", "model_cache_bytes"),
            ("MAX_BODY_BYTES", "max_body_bytes"),
            ("RESULT_CACHE_SIZE", "result_cache_size"),
            ("RESULT_CACHE_BYTES", "result_cache_bytes"),
            ("MAX_TEXT_CHARS", "max_text_chars"),
            ("MAX_TOKENS", "max_tokens"),
            ("MAX_ATTENTION_BYTES", "max_attention_bytes"),
            ("WORK_BUDGET", "work_budget"),
            ("MAX_UPLOADS", "max_uploads"),
            ("MAX_GENERATIONS", "max_generations"),
            ("MAX_HEAVY", "max_heavy"),
            ("RETRY_AFTER_S", "retry_after_s"),
            ("MAX_CONNECTIONS", "max_connections"),
            ("MAX_HEADER_BYTES", "max_header_bytes"),
            ("MAX_URL_BYTES", "max_url_bytes"),
            ("MAX_UPLOAD_BYTES", "max_upload_bytes"),
            ("MAX_FORM_BYTES", "max_form_bytes"),
            ("INPUTS_STORE_SIZE", "inputs_store_size"),
            ("INPUTS_STORE_BYTES", "inputs_store_bytes"),
        ):
            if value := env.get(ENV_PREFIX + name):
                values[key] = int(value)
        if value := env.get(ENV_PREFIX + "REQUEST_TIMEOUT_S"):
            values["request_timeout_s"] = float(value)
        if env.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
            values.setdefault("offline", True)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
