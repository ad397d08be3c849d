"""JSON and binary API under /api/v1. Handlers are sync (FastAPI runs them in a worker thread): torch
work never blocks the event loop."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Response

from visualizeai.service import TILE_MAX_SIZE, TILE_SIZE, TOP_KEYS_MAX
from visualizeai.web import serialize
from visualizeai.web.deps import ServiceDep
from visualizeai.web.schemas import (
    AnalysisBrief,
    AnalysisMeta,
    AnalyzeRequest,
    ErrorResponse,
    ModelList,
    TopKeys,
)

ERRORS = {
    400: {"model": ErrorResponse, "description": "Bad input, with a message saying what is wrong"},
    404: {"model": ErrorResponse, "description": "Unknown model or expired analysis"},
    422: {"model": ErrorResponse, "description": "Request body or parameters of the wrong shape"},
    503: {"model": ErrorResponse, "description": "Model cannot be loaded here (offline, pickle-only…)"},
}
ANALYZE_DOC = (
    "Runs the text (or reads the result cache) and answers its metadata, `AnalysisMeta`: the token table, "
    "text, predictions and the attention's shape; the matrices are read by `key` from the binary endpoints. "
    "`brief=true` answers `AnalysisBrief` instead (key, model, sizes, truncation, timings), for a client "
    "that opens the analysis by key and reads the metadata once there (`GET /api/v1/analyses/{key}`). For a "
    "long input the server starts computing the heatmap's first picture (layer 0, head 0, max-pooled) as it "
    "answers."
)
HEAD_DOC = (
    "Attention as raw little-endian float16 in C order, no header; rows are query positions, columns key "
    "positions. `agg=none` (default): `layer` is required; with `head` the shape is `[n, n]`, without "
    "`[heads, n, n]`. `agg=mean_heads`: the layer's heads averaged, `[n, n]` (no `layer`: `[layers, n, n]`). "
    "`agg=mean_layers`: head `head` averaged over the layers, `[n, n]` (no `head`: `[heads, n, n]`). "
    "`agg=mean_all`: every head of every layer averaged, `[n, n]`. An averaged axis cannot be picked (400). "
    "`hide_special=true` removes special tokens' rows and columns and renormalises each row to sum to 1 over "
    "the tokens left; `merge_words=true` merges subword pieces into words (sum over key pieces, mean over "
    "query pieces). Headers: `X-Shape` and `X-Dtype` repeat the shape and type; `X-Tokens` lists, per "
    "displayed row (= column), the token positions it stands for, comma-separated, each as `i` or a range "
    "`a-b` (non-contiguous pieces joined by `+`); `X-Renormalized` is `true` when rows were renormalised."
)
THUMBS_DOC = (
    "All-heads overview as raw uint8 in C order, shape `[layers, heads, s, s]` with `s = min(size, n)`: "
    "each head's matrix pooled into s×s blocks (mean by default, or max; the bins of the tile endpoint), "
    "divided by its own maximum, quantised as round(255·v). With `layer`: only that layer's heads, shape "
    "`[heads, s, s]` (header `X-Layer`), so a client can stream the overview a layer at a time; each layer "
    "is computed once and shared with the all-layers form. Over the work budget (every cell of the heads "
    "asked for is read): 400 naming the figures."
)
ROW_DOC = (
    "One query row of a head, exact, as raw little-endian float16: shape `[n]`, the weights query `row` "
    "gives every key position. `head` left out: the mean of the layer's heads; `layer` left out too: the "
    "mean of every head of every layer (`layer` left out with a `head`: that head averaged over the layers). "
    "`per_head=true` (with `layer`, without `head`): every head of the layer, `[heads, n]`. Headers: "
    "`X-Shape`, `X-Dtype: float16`, `X-Row: i`. A row, layer or head out of range answers 400 naming the "
    "valid range."
)
TOP_KEYS_DOC = (
    "The key positions query rows `a:b` attend to most: the exact weights of a head (or a mean, selected as "
    "for the tile endpoint) averaged over the rows, then the `k` largest (ties: lower position first), "
    f"strongest first. `k` is 1 to {TOP_KEYS_MAX}; fewer come back when the analysis has fewer tokens. "
    "The rows are read from the store in bounded chunks; the cost (heads averaged × rows × n cells) is "
    "checked against the work budget first (400 with the figures when over)."
)
TILE_DOC = (
    "A block of one head as raw little-endian float16 in C order, no header, shape `[r, c]` with "
    "`r = min(size, b − a)`, `c = min(size, d − c)` for `rows=a:b`, `cols=c:d` (default: every token). "
    "When the block fits (`b − a ≤ size` and `d − c ≤ size`) the values are the exact weights; otherwise "
    "cell `(i, j)` is the mean (`pool=mean`) or maximum (`pool=max`) of rows `a + ⌊i(b−a)/r⌋` up to "
    "`a + ⌊(i+1)(b−a)/r⌋` (exclusive) and the matching columns. `head` left out: the mean of the layer's "
    "heads; `layer` left out too: the mean of every head of every layer (`layer` left out with a `head`: "
    "that head averaged over the layers). Headers: `X-Shape: r,c`, `X-Dtype: float16`, "
    "`X-Exact: true|false`, `X-Pool` (the pooling asked for), `X-Rows: a:b`, `X-Cols: c:d`. A malformed "
    "or out-of-range range, layer or head answers 400 naming the valid range."
)
Aggregate = Literal["none", "mean_heads", "mean_layers", "mean_all"]
Pool = Literal["mean", "max"]
BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/models", response_model=ModelList, summary="The model catalog with availability")
def list_models(service: ServiceDep) -> ModelList:
    return ModelList(
        default=service.settings.default_model,
        models=[serialize.model_info(status) for status in service.models()],
    )


@router.post(
    "/analyze",
    response_model=AnalysisMeta | AnalysisBrief,
    summary="Run a text through a model",
    description=ANALYZE_DOC,
)
def analyze(
    body: AnalyzeRequest,
    service: ServiceDep,
    background: BackgroundTasks,
    brief: Annotated[bool, Query(description="answer the key and sizes only (AnalysisBrief)")] = False,
) -> AnalysisMeta | AnalysisBrief:
    """Tokens and shape of the attention; the matrices are fetched from the binary endpoints by `key`."""
    analysis = service.analyze(body.text, body.model)
    spec = service.resolve(analysis.result.model_id)
    background.add_task(service.warm, analysis.key)  # the first picture, while the client opens the page
    if brief:
        return serialize.analysis_brief(analysis, spec.label)
    return serialize.analysis_meta(analysis, spec.label)


@router.get(
    "/analyses/{key}/attention",
    response_class=Response,
    responses={200: {**BINARY, "description": HEAD_DOC}},
    summary="Attention of a layer or a head, or an average, as displayed (binary float16)",
    description=HEAD_DOC,
)
def attention(
    key: str,
    service: ServiceDep,
    layer: Annotated[int | None, Query(ge=0, le=1000)] = None,
    head: Annotated[int | None, Query(ge=0, le=1000)] = None,
    agg: Annotated[Aggregate, Query(description="average over heads, layers or both")] = "none",
    hide_special: Annotated[bool, Query(description="hide special tokens and renormalise rows")] = False,
    merge_words: Annotated[bool, Query(description="merge subword pieces into words")] = False,
) -> Response:
    view = service.attention_view(
        key, layer=layer, head=head, agg=agg, hide_special=hide_special, merge_words=merge_words
    )
    data, headers = serialize.display_payload(view)
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get(
    "/analyses/{key}/thumbnails",
    response_class=Response,
    responses={200: {**BINARY, "description": THUMBS_DOC}},
    summary="Downsampled thumbnails of every head (binary uint8)",
    description=THUMBS_DOC,
)
def thumbnails(
    key: str,
    service: ServiceDep,
    size: Annotated[int, Query(ge=4, le=128)] = 48,
    pool: Annotated[Pool, Query(description="how a block of cells becomes one pixel")] = "mean",
    layer: Annotated[int | None, Query(description="one layer's heads; left out: every layer")] = None,
) -> Response:
    pictures = service.thumbnails(key, size, pool, layer)
    data, headers = serialize.thumbnails_payload(pictures)
    if layer is not None:
        headers["X-Layer"] = str(layer)
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get(
    "/analyses/{key}/row",
    response_class=Response,
    responses={200: {**BINARY, "description": ROW_DOC}},
    summary="One query row, exact (binary float16)",
    description=ROW_DOC,
)
def row(
    key: str,
    service: ServiceDep,
    row: Annotated[int, Query(description="query position, 0 to n − 1")],
    layer: Annotated[int | None, Query(description="layer; left out: averaged over the layers")] = None,
    head: Annotated[int | None, Query(description="head; left out: the layer's heads averaged")] = None,
    per_head: Annotated[bool, Query(description="every head of the layer, [heads, n]")] = False,
) -> Response:
    values = service.row(key, layer, head, row, per_head)
    data, headers = serialize.float16_payload(values)
    headers["X-Row"] = str(row)
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get(
    "/analyses/{key}/top-keys",
    response_model=TopKeys,
    summary="The keys a range of query rows attends to most (JSON)",
    description=TOP_KEYS_DOC,
)
def top_keys(
    key: str,
    service: ServiceDep,
    rows: Annotated[str, Query(description="query positions a:b (b exclusive)")],
    layer: Annotated[int | None, Query(description="layer; left out: averaged over the layers")] = None,
    head: Annotated[int | None, Query(description="head; left out: the layer's heads averaged")] = None,
    k: Annotated[int, Query(description=f"how many keys, 1 to {TOP_KEYS_MAX}")] = 16,
) -> TopKeys:
    return serialize.top_keys(service.top_keys(key, layer, head, rows, k))


@router.get(
    "/analyses/{key}/tile",
    response_class=Response,
    responses={200: {**BINARY, "description": TILE_DOC}},
    summary="A block of a head, exact or pooled to a size (binary float16)",
    description=TILE_DOC,
)
def tile(
    key: str,
    service: ServiceDep,
    layer: Annotated[int | None, Query(description="layer; left out: averaged over the layers")] = None,
    head: Annotated[int | None, Query(description="head; left out: the layer's heads averaged")] = None,
    rows: Annotated[str | None, Query(description="query positions a:b; default all")] = None,
    cols: Annotated[str | None, Query(description="key positions c:d; default all")] = None,
    size: Annotated[int, Query(ge=1, le=TILE_MAX_SIZE, description="most cells per side")] = TILE_SIZE,
    pool: Annotated[Pool, Query(description="how cells are pooled when the block exceeds size")] = "mean",
) -> Response:
    block = service.tile(key, layer, head, rows, cols, size, pool)
    data, headers = serialize.tile_payload(block)
    return Response(data, media_type="application/octet-stream", headers=headers)
