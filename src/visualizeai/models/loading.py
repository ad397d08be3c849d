"""Loading models offline-first into a bounded LRU that is safe under concurrent requests."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
from transformers import logging as hf_logging

from visualizeai.attention.capture import SelfCheck, self_check
from visualizeai.cache import KeyedLocks
from visualizeai.errors import ModelUnavailable
from visualizeai.models.catalog import ModelSpec, kind_from_config
from visualizeai.models.hub import files_dir, is_offline, revision_of
from visualizeai.models.quirks import Quirks, quirks_for

log = logging.getLogger(__name__)

HEAD_CLASS = {"masked-lm": AutoModelForMaskedLM, "causal-lm": AutoModelForCausalLM, "encoder": AutoModel}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Weight files that repeat the sharded checkpoint in another layout (Mistral's repos ship both): 14 GB more.
SKIPPED_WEIGHTS = ["consolidated*.safetensors", "original/*"]
# A tokenizer without a real limit reports this huge sentinel as model_max_length.
_NO_LIMIT = 1_000_000
# transformers' from_pretrained builds models under process-global state (the default device and dtype, the
# meta-device init context): two loads at once in different threads can leave a model on the meta device
# ("Cannot copy out of meta tensor") and poison later loads. So models load one at a time, process-wide.
_LOAD_LOCK = threading.Lock()


@dataclass
class LoadedModel:
    """A tokenizer and model ready for inference, plus what loading revealed about them.

    Attributes:
        kind: "masked-lm", "causal-lm" or "encoder" (from the catalog or the checkpoint's config).
        model: the task model (with its LM head where the kind has one); ``encoder`` is its base model,
            which the attention analysis runs so that no vocabulary projection is computed for nothing.
        lm_head_trained: the checkpoint carried weights for every parameter of ``model``; False means
            transformers initialised some (an encoder loaded as a masked LM gets a random head).
        missing_keys: parameter names the checkpoint did not provide.
        max_length: most tokens (specials included) the model accepts.
    """

    spec: ModelSpec
    kind: str
    revision: str
    tokenizer: object
    model: torch.nn.Module
    encoder: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    max_length: int
    quirks: Quirks
    lm_head_trained: bool
    missing_keys: tuple[str, ...] = ()
    # how attention is read: captured queries/keys when the load-time self-check passed, else dense (eager)
    attention_check: SelfCheck | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # A fast tokenizer keeps its truncation setting in state that each call with truncation=… rewrites, so
    # concurrent calls could see each other's setting (an untruncated count comes back truncated): serialise.
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def attention_mode(self) -> str:
        """ "captured" (attention recomputed from recorded queries and keys) or "dense" (eager weights)."""
        return self.attention_check.mode if self.attention_check is not None else "dense"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(f"Device {device!r} was requested but no CUDA GPU is available.")
    return torch.device(device)


def _max_length(tokenizer, config, quirks: Quirks) -> int:
    limits = []
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < _NO_LIMIT:
        limits.append(tok_max)
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            limits.append(value - quirks.position_offset)
            break
    return min(limits) if limits else 512


def _check_weights(directory: Path, allow_pickle: bool, name: str) -> bool:
    """True to load safetensors; refuses pickle-only checkpoints unless allowed."""
    if any(directory.glob("*.safetensors")):
        return True
    if any(directory.glob("*.bin")) or any(directory.glob("*.pt")):
        if allow_pickle:
            return False
        raise ModelUnavailable(
            f"Model {name!r} has only pickle (.bin) weights, which can execute code when loaded; "
            "convert it to safetensors or start VisualizeAI with --allow-pickle."
        )
    raise ModelUnavailable(f"Model {name!r} has no weight files (.safetensors).")


def load_model(
    spec: ModelSpec,
    *,
    device: str = "auto",
    dtype: str = "float32",
    offline: bool | None = None,
    allow_pickle: bool = False,
    capture: bool = True,
) -> LoadedModel:
    """Load ``spec`` from disk (or the hub when online). Never runs remote code.

    With ``capture`` a self-check decides whether attention is recomputed from captured queries and keys
    (the model then runs SDPA) or read densely from eager attention (``LoadedModel.attention_check``).
    """
    directory = files_dir(spec)
    if directory is None:
        if is_offline(offline):
            raise ModelUnavailable(
                f"Model {spec.id!r} is not in the local Hugging Face cache and the hub cannot be reached "
                "(offline). Download it once while online, or pass a local model directory with --model."
            )
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.txt", "*.model", "*.safetensors"] + (["*.bin"] if allow_pickle else [])
        try:
            directory = Path(
                snapshot_download(spec.location, allow_patterns=patterns, ignore_patterns=SKIPPED_WEIGHTS)
            )
        except Exception as exc:  # the hub client raises many types; the user needs the message
            raise ModelUnavailable(f"Model {spec.id!r} could not be downloaded: {exc}") from None
    use_safetensors = _check_weights(directory, allow_pickle, spec.id)
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    kind = spec.kind or kind_from_config(config)
    torch_device = resolve_device(device)
    if dtype not in DTYPES:
        raise ModelUnavailable(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    common = dict(
        trust_remote_code=False,
        local_files_only=True,
        attn_implementation="eager",
        use_safetensors=use_safetensors,
        dtype=DTYPES[dtype],
    )
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the loading info below is what we act on, not log lines
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False, local_files_only=True)
        head_class = AutoModelForMaskedLM if kind in ("masked-lm", "encoder") else HEAD_CLASS[kind]
        try:
            model, info = head_class.from_pretrained(directory, output_loading_info=True, **common)
        except ValueError:
            if kind != "encoder":
                raise
            # Architectures without a masked-LM class (an encoder only) load as their base model.
            model, info = AutoModel.from_pretrained(directory, output_loading_info=True, **common)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"Model {spec.id!r} could not be loaded: {exc}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.to(torch_device).eval()
    missing = tuple(info.get("missing_keys") or ())
    quirks = quirks_for(model.config.model_type)
    max_length = _max_length(tokenizer, model.config, quirks)
    check = self_check(model, model.base_model, tokenizer, max_length, DTYPES[dtype]) if capture else None
    log.info(
        "loaded %s (%s) on %s, missing keys: %d, attention: %s",
        spec.id,
        kind,
        torch_device,
        len(missing),
        check.mode if check else "dense (capture off)",
    )
    return LoadedModel(
        spec=spec,
        kind=kind,
        revision=revision_of(spec, directory),
        tokenizer=tokenizer,
        model=model,
        encoder=model.base_model,
        device=torch_device,
        dtype=DTYPES[dtype],
        max_length=max_length,
        quirks=quirks,
        lm_head_trained=not missing,
        missing_keys=missing,
        attention_check=check,
    )


def model_bytes(loaded: LoadedModel) -> int:
    """Bytes held by a loaded model's parameters and buffers (0 for anything that is not a torch model)."""
    model = getattr(loaded, "model", None)
    if not isinstance(model, torch.nn.Module):
        return 0
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())  # tied: once


class ModelRegistry:
    """Bounded LRU of loaded models; a model is loaded once even when requests race for it.

    Bounded by count (``capacity``) and by the bytes of the models' weights (``max_bytes``, None: no byte
    bound); the model loaded last always stays, even alone over the byte bound.
    """

    def __init__(self, capacity: int = 2, loader=load_model, *, max_bytes: int | None = None, **load_options):
        if capacity < 1:
            raise ValueError("model cache capacity must be at least 1")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._loader = loader
        self._options = load_options
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._bytes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loading = KeyedLocks()  # one load per model id however many requests race for it
        self.load_count = 0

    def loaded_ids(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def peek(self, model_id: str) -> LoadedModel | None:
        """The loaded model ``model_id`` if it is held now, without loading it or changing its LRU place."""
        with self._lock:
            return self._models.get(model_id)

    def get(self, spec: ModelSpec) -> LoadedModel:
        with self._lock:
            if spec.id in self._models:
                self._models.move_to_end(spec.id)
                return self._models[spec.id]
        with self._loading.hold(spec.id):
            with self._lock:  # another request may have finished loading while we waited
                if spec.id in self._models:
                    self._models.move_to_end(spec.id)
                    return self._models[spec.id]
            with _LOAD_LOCK:
                loaded = self._loader(spec, **self._options)
            size = model_bytes(loaded)
            with self._lock:
                self.load_count += 1
                self._models[spec.id] = loaded
                self._bytes[spec.id] = size
                while len(self._models) > 1 and (
                    len(self._models) > self.capacity
                    or (self.max_bytes is not None and sum(self._bytes.values()) > self.max_bytes)
                ):
                    evicted, _ = self._models.popitem(last=False)
                    self._bytes.pop(evicted, None)
                    log.info("evicted model %s", evicted)
            return loaded

    @property
    def nbytes(self) -> int:
        """Bytes of the weights of the models held now."""
        with self._lock:
            return sum(self._bytes.values())
