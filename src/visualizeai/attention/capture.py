"""Recording queries and keys during a forward pass, through transformers' ``AttentionInterface``.

``CAPTURE`` names an attention implementation registered with transformers (and its mask function, SDPA's):
each layer hands its post-RoPE query and key, mask and softmax settings to ``capture_attention``, which
records them when a ``recording()`` is active and lets SDPA compute the output. Where SDPA would run the CPU
flash kernel, that kernel is called directly: the same output, and each row's log-sum-exp, from which the
first picture of a long head is drawn with its scores alone (``CapturedStore.quick_max_picture``). Layers
whose softmax SDPA cannot do (logit soft-capping, sink logits) get their output from the same chunked
recomputation the store uses, so capture never builds n×n. A recording with a ``consumer`` also hands each
layer to it as the pass reaches it; the consumer may return the layer's output computed from the weights it
recomputes anyway (the corpus statistics), so those weights are computed once, not by SDPA and again after
the pass.
``self_check`` proves on a short input that the recomputation equals the model's eager
``output_attentions=True``; a model that fails stays on eager attention (dense mode).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn.attention import SDPBackend
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from visualizeai.attention.captured import CapturedStore, CaptureUnsupported, LayerQK, mask_intervals, weights

log = logging.getLogger(__name__)

CAPTURE = "visualizeai_capture"
EAGER = "eager"
# What the self-check accepts, by model dtype: (largest, mean) absolute difference from eager attention.
# In float32 the two agree to rounding. In half precision eager rounds q·kᵀ to the dtype before the softmax
# while the recomputation works in float32, so single weights of peaked heads can differ by 0.1 or more
# (measured on the tiny random models); a wrong mask, scale or window shows as a large mean difference and
# as weights on keys the other side gives none.
SELF_CHECK_TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.float16: (1.0, 5e-3), torch.bfloat16: (1.0, 5e-3)}
STRAY_WEIGHT = 1e-3  # a weight this large on a key the other side gives exactly 0 is a mask mismatch
SELF_CHECK_TOKENS = 48
SELF_CHECK_TEXT = (
    "The quick brown fox jumps over the lazy dog, and then the dog sleeps while the fox runs far away "
    "into the green forest near the river. "
)


@dataclass
class Recorder:
    """The layers recorded during one forward pass, in call order.

    With ``eager_output`` every layer's output is computed from the recomputed weights (eager attention's
    arithmetic) instead of by SDPA, so that later layers see exactly the hidden states eager attention gives;
    parity tests use it to separate recomputation error from the rounding differences of SDPA kernels.

    With ``consumer``, each layer is also handed to ``consumer(layer, value)`` as the pass reaches it; the
    consumer returns the layer's attention output ``[batch, q, heads, dv]`` in ``value``'s dtype (eager
    attention's arithmetic on the recomputed weights), or None to leave it to SDPA.
    """

    layers: list[LayerQK] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    eager_output: bool = False
    consumer: Callable[[LayerQK, torch.Tensor], torch.Tensor | None] | None = None
    # key intervals of the masks seen in this pass: every layer gets the same mask object (one per kind of
    # layer), so each is read once; the mask is kept with them so that its id stays its own
    _intervals: dict = field(default_factory=dict, repr=False)

    def intervals(
        self, attention_mask: torch.Tensor | None, q_len: int, k_len: int, causal: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``mask_intervals`` of the arguments, computed once per mask of this pass."""
        key = (id(attention_mask), q_len, k_len, causal)
        held = self._intervals.get(key)
        if held is None or held[0] is not attention_mask:
            held = (attention_mask, *mask_intervals(attention_mask, q_len, k_len, causal))
            self._intervals[key] = held
        return held[1], held[2]

    def store(self, item: int = 0, n: int | None = None) -> CapturedStore:
        """The attention store of batch item ``item`` (its first ``n`` tokens)."""
        if self.unsupported:
            raise CaptureUnsupported(self.unsupported[0])
        length = n if n is not None else int(self.layers[0].query.shape[2])
        return CapturedStore([layer.item(item, length) for layer in self.layers])


_ACTIVE: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "visualizeai_recorder", default=None
)


@contextmanager
def recording(
    eager_output: bool = False, consumer: Callable[[LayerQK, torch.Tensor], torch.Tensor | None] | None = None
) -> Iterator[Recorder]:
    """Record every attention layer run by this thread inside the block (see ``Recorder``)."""
    recorder = Recorder(eager_output=eager_output, consumer=consumer)
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)


def _describe(
    module, query, key, attention_mask, scaling, kwargs, recorder: Recorder | None = None
) -> LayerQK:
    """What a layer's softmax needs, in the form ``captured.weights`` reads (mask intervals through
    ``recorder``'s per-pass cache when there is one)."""
    if kwargs.get("position_bias") is not None:
        raise CaptureUnsupported("a position bias added to the attention scores")
    q_len, k_len = int(query.shape[2]), int(key.shape[2])
    causal = kwargs.get("is_causal")
    causal = getattr(module, "is_causal", True) if causal is None else causal
    causal = bool(q_len > 1 and attention_mask is None and causal)  # as SDPA decides
    if causal and k_len > q_len:  # SDPA then reads the first q_len keys only
        key = key[:, :, :q_len]
    intervals = mask_intervals if recorder is None else recorder.intervals
    lo, hi = intervals(attention_mask, q_len, int(key.shape[2]), causal)
    lo, hi = lo.expand(query.shape[0], -1), hi.expand(query.shape[0], -1)
    if scaling is None:
        scaling = float(query.shape[-1]) ** -0.5
    softcap = kwargs.get("softcap")
    sinks = kwargs.get("s_aux")
    return LayerQK(_owned(query), _owned(key), lo, hi, float(scaling), softcap, sinks)


def _owned(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, copied when it is a view into a larger buffer (GPT-2 splits one fused query/key/value
    projection), so that keeping it does not keep the rest alive and its bytes are what it holds."""
    if tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size():
        return tensor.clone()
    return tensor


def _own_output(layer: LayerQK, value: torch.Tensor) -> torch.Tensor:
    """The attention output ``[batch, q, heads, dv]`` from the recomputed weights (soft-capping, sinks)."""
    batch, heads, q_len, _ = layer.query.shape
    out = torch.empty((batch, heads, q_len, value.shape[-1]), dtype=value.dtype, device=value.device)
    kv_index = torch.arange(heads, device=value.device) // layer.group
    k_len = int(layer.key.shape[2])
    for item in range(batch):
        v = value[item, kv_index, :k_len]  # [heads, k, dv]
        for start, w in weights(layer, range(heads), (0, q_len), (0, k_len), item):
            out[item, :, start : start + w.shape[1]] = torch.matmul(w.to(value.dtype), v)
    return out.transpose(1, 2).contiguous()


def capture_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """An attention function for ``AttentionInterface``: SDPA's output, with the inputs recorded."""
    recorder = _ACTIVE.get()
    own = kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None
    own = own or (recorder is not None and recorder.eager_output)
    layer = None
    if recorder is not None or own:
        try:
            layer = _describe(module, query, key, attention_mask, scaling, kwargs, recorder)
        except CaptureUnsupported as exc:
            if recorder is None:
                raise
            recorder.unsupported.append(str(exc))
        if recorder is not None and layer is not None:
            recorder.layers.append(layer)
            if recorder.consumer is not None:
                output = recorder.consumer(layer, value)
                if output is not None and not dropout:
                    return output, None
    if own:
        if layer is None or dropout:
            raise CaptureUnsupported("soft-capping or sinks together with a mask that is not an interval")
        return _own_output(layer, value), None
    kwargs.pop("output_attentions", None)
    if (
        layer is not None
        and not dropout
        and (flash := _flash_with_lse(module, query, key, value, attention_mask, scaling, kwargs)) is not None
    ):
        output, layer.lse = flash
        return output, None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)


def _flash_with_lse(
    module, query, key, value, attention_mask, scaling, kwargs
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """SDPA's output as transformers' ``sdpa_attention_forward`` gets it, with each row's log-sum-exp, when
    SDPA would run the CPU flash kernel on these inputs (which returns both; the output is the very tensor
    SDPA hands back): a CPU pass without a mask, dropout or position bias. None otherwise."""
    q_len = int(query.shape[2])
    if query.device.type != "cpu" or attention_mask is not None or q_len < 2:
        return None
    if kwargs.get("position_bias") is not None or kwargs.get("cache") is not None:
        return None
    causal = kwargs.get("is_causal")
    causal = bool(getattr(module, "is_causal", True) if causal is None else causal)
    if causal and key.shape[2] > q_len:  # as transformers does: the first q_len keys
        key, value = key[:, :, :q_len], value[:, :, :q_len]
    groups = query.shape[1] // key.shape[1]
    gqa = groups > 1 and key.shape[-1] == value.shape[-1] <= 256
    if groups > 1 and not gqa:
        return None
    try:  # torch's own dispatch rule (a private function: a torch without it leaves the output to SDPA)
        choice = torch._fused_sdp_choice(query, key, value, None, 0.0, causal, scale=scaling, enable_gqa=gqa)
        flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    except (AttributeError, TypeError, RuntimeError):
        return None
    if choice != int(SDPBackend.FLASH_ATTENTION):
        return None
    if groups > 1:
        key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    output, lse = flash(query, key, value, 0.0, causal, scale=scaling)[:2]
    return output.transpose(1, 2).contiguous(), lse.float()


AttentionInterface.register(CAPTURE, capture_attention)
AttentionMaskInterface.register(CAPTURE, sdpa_mask)


@dataclass(frozen=True)
class SelfCheck:
    """Outcome of comparing recomputed attention with eager ``output_attentions=True`` on a short input.

    Attributes:
        mode: "captured" (attention recomputed from recorded queries and keys) or "dense" (eager weights).
        max_difference: largest absolute difference between the two on the check's input, if compared.
        tokens: length of the check's input.
        layers, heads: shape of the model's attention.
        bytes_per_token: what captured queries and keys hold per token (0 in dense mode).
        reason: why the model runs dense, for people.
    """

    mode: str
    max_difference: float | None
    tokens: int
    layers: int
    heads: int
    bytes_per_token: int = 0
    reason: str | None = None

    def attention_bytes(self, n: int) -> int:
        """Bytes the attention of an ``n``-token analysis holds in this mode."""
        if self.mode == "captured":
            return self.bytes_per_token * n
        return 4 * self.layers * self.heads * n * n


def set_mode(model: torch.nn.Module, implementation: str) -> None:
    """Switch every attention layer of ``model`` to ``implementation`` (CAPTURE or EAGER)."""
    model.set_attn_implementation(implementation)


def _self_check_inputs(tokenizer, max_length: int, device: torch.device) -> dict[str, torch.Tensor]:
    length = max(2, min(SELF_CHECK_TOKENS, max_length))
    text = SELF_CHECK_TEXT * 4
    enc = tokenizer(text, truncation=True, max_length=length, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def self_check(
    model: torch.nn.Module, encoder: torch.nn.Module, tokenizer, max_length: int, dtype: torch.dtype
) -> SelfCheck:
    """Run a short input through ``encoder`` (``model``'s base) with eager attention and with capture and
    compare every head; leaves ``model`` in CAPTURE mode when they agree within ``SELF_CHECK_TOLERANCE`` and
    in EAGER mode otherwise."""
    device = next(model.parameters()).device
    inputs = _self_check_inputs(tokenizer, max_length, device)
    n = int(inputs["input_ids"].shape[1])
    set_mode(model, EAGER)
    with torch.inference_mode():
        out = encoder(**inputs, output_attentions=True)
    reference = np.stack([a[0].float().cpu().numpy() for a in out.attentions])
    layers, heads = int(reference.shape[0]), int(reference.shape[1])

    def dense(reason: str, difference: float | None = None) -> SelfCheck:
        set_mode(model, EAGER)
        log.info("attention capture off: %s", reason)
        return SelfCheck("dense", difference, n, layers, heads, reason=reason)

    try:
        set_mode(model, CAPTURE)
        with torch.inference_mode(), recording() as recorder:
            encoder(**inputs)
        store = recorder.store()
        recomputed = store.dense()
    except (CaptureUnsupported, ValueError, TypeError, RuntimeError, NotImplementedError) as exc:
        return dense(f"queries and keys cannot be captured: {exc}")
    if reference.shape != recomputed.shape:
        return dense(f"captured attention of shape {recomputed.shape} but eager gave {reference.shape}")
    gap = np.abs(reference - recomputed)
    difference, mean = float(gap.max()), float(gap.mean())
    largest, average = SELF_CHECK_TOLERANCE.get(dtype, SELF_CHECK_TOLERANCE[torch.float32])
    if not (difference <= largest and mean <= average):
        return dense(
            f"recomputed attention differs from eager by up to {difference:.2e} (mean {mean:.2e})", difference
        )
    stray = ((reference == 0) & (recomputed > STRAY_WEIGHT)) | (
        (recomputed == 0) & (reference > STRAY_WEIGHT)
    )
    if stray.any():
        return dense(f"recomputed attention puts weight on {int(stray.sum())} masked keys", difference)
    return SelfCheck("captured", difference, n, layers, heads, -(-store.nbytes // n))
