"""Aggregates and comparisons under /api/v1: attention rollout and flow (binary float16), per-head statistics
(JSON) and side-by-side comparisons of two analyses (JSON with base64 float16 matrices).

Everything is computed from cached results (the model never runs again) by ``visualizeai.derived``; the
service keeps what is expensive beside the result, so each is computed once per analysis.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from visualizeai.analysis.head_stats import STAT_DESCRIPTIONS
from visualizeai.analysis.rollout import FLOW_MAX_TOKENS, FLOW_REFERENCE_LAYERS
from visualizeai.web import serialize
from visualizeai.web.api_analyses import BINARY, ERRORS
from visualizeai.web.deps import ServiceDep
from visualizeai.web.schemas import CompareResponse, FlowLimit, FlowLimits, HeadStats

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["aggregates"])

ROLLOUT_DOC = (
    "Attention rollout (Abnar & Zuidema 2020): per layer the heads' mean plus the residual, 0.5·A + 0.5·I, "
    "rows renormalised, multiplied from the first layer up. Raw little-endian float16, C order: `[n, n]` "
    "for `layer` (row i: how much of each input token reaches token i after that layer), `[layers, n, n]` "
    "without. Headers `X-Shape`, `X-Dtype`. Computed once per analysis."
)
FLOW_DOC = (
    "Attention flow (Abnar & Zuidema 2020): the maximum flow from each token at the output of `layer` "
    "(default: the last) down to each input token, the rollout's graph read as pipes. Raw little-endian "
    "float16 `[n, n]`. Flow costs about n⁴·(layer + 1) steps, so above the work budget it is refused at once "
    f"with 400 and a message saying so: by default about {FLOW_MAX_TOKENS} tokens through "
    f"{FLOW_REFERENCE_LAYERS} layers (a few seconds); shallower layers allow a few more tokens. Rollout and "
    "head statistics have work budgets too (VISUALIZEAI_WORK_BUDGET), far above flow's: over one, a 400 "
    "names the figure, its cost and the budget; over `max_heavy` computations at once, a 503 with "
    "Retry-After."
)
STATS_DOC = (
    "Per-head statistics of every (layer, head): `names`, their `descriptions`, and `values[name]` as "
    "`[layers][heads]`. Computed once per analysis (about 0.1 s at 512 tokens for 12 × 12 heads)."
)
COMPARE_DOC = (
    "Two analyses side by side. `mode=sentences` (minimal pairs: one model, two texts): each side's token "
    "matrix, and the difference a − b on the tokens `align_tokens` pairs up. `mode=models` (one text, two "
    "models): both sides pooled to the words the two tokenizations share, aligned through character "
    "offsets (special tokens hidden and rows renormalised, then keys summed and queries averaged per word), "
    "and their difference on that common axis. `head` omitted: the layer's heads averaged. B shows "
    "`layer_b`/`head_b`, by default the same as A. Matrices are base64 little-endian float16 (see "
    "docs/wire-format.md)."
)

Index = Annotated[int, Query(ge=0, le=1000)]


def _binary(matrix) -> Response:
    data, headers = serialize.float16_payload(matrix)
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get(
    "/analyses/{key}/rollout",
    response_class=Response,
    responses={200: {**BINARY, "description": ROLLOUT_DOC}},
    summary="Attention rollout of a layer, or of every layer (binary float16)",
    description=ROLLOUT_DOC,
)
def rollout(key: str, service: ServiceDep, layer: Index | None = None) -> Response:
    values = service.rollout(key)
    if layer is None:
        return _binary(values)
    service.check_layer_head(service.result(key), layer, None)
    return _binary(values[layer])


@router.get(
    "/analyses/{key}/flow",
    response_class=Response,
    responses={200: {**BINARY, "description": FLOW_DOC}},
    summary="Attention flow at a layer, for inputs small enough (binary float16)",
    description=FLOW_DOC,
)
def flow(key: str, service: ServiceDep, layer: Index | None = None) -> Response:
    if layer is None:
        layer = service.result(key).layers - 1
    return _binary(service.flow(key, layer))


@router.get(
    "/analyses/{key}/flow-limits",
    response_model=FlowLimits,
    summary="Where attention flow is allowed (JSON)",
    description="Per layer: whether GET /flow computes there (else it answers 400), and if not, why.",
)
def flow_limits(key: str, service: ServiceDep) -> FlowLimits:
    refusals = service.flow_refusals(key)
    return FlowLimits(
        max_tokens=service.flow_max_tokens(FLOW_REFERENCE_LAYERS - 1),
        reference_layers=FLOW_REFERENCE_LAYERS,
        layers=[
            FlowLimit(layer=i, allowed=r is None, max_tokens=service.flow_max_tokens(i), reason=r)
            for i, r in enumerate(refusals)
        ],
    )


@router.get(
    "/analyses/{key}/head-stats",
    response_model=HeadStats,
    summary="Per-head statistics (JSON)",
    description=STATS_DOC,
)
def head_stats(key: str, service: ServiceDep) -> HeadStats:
    return serialize.head_stats(service.head_stats(key), STAT_DESCRIPTIONS)


@router.get(
    "/compare",
    response_model=CompareResponse,
    summary="Two analyses side by side, and their difference",
    description=COMPARE_DOC,
)
def compare(
    service: ServiceDep,
    mode: Literal["sentences", "models"],
    key_a: Annotated[str, Query(max_length=64)],
    key_b: Annotated[str, Query(max_length=64)],
    layer: Index = 0,
    head: Index | None = None,
    layer_b: Index | None = None,
    head_b: Index | None = None,
) -> CompareResponse:
    comparison = service.compare(mode, key_a, key_b, layer, head, layer_b, head_b)
    return serialize.comparison(comparison, key_a, key_b)
