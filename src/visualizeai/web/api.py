"""JSON and binary API under /api/v1. Handlers are sync (FastAPI runs them in a worker thread): torch
work never blocks the event loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from visualizeai.service import Service
from visualizeai.web import serialize
from visualizeai.web.schemas import AnalysisMeta, AnalyzeRequest, ErrorResponse, ModelList

ERRORS = {
    400: {"model": ErrorResponse, "description": "Bad input, with a message saying what is wrong"},
    404: {"model": ErrorResponse, "description": "Unknown model or expired analysis"},
    422: {"model": ErrorResponse, "description": "Request body or parameters of the wrong shape"},
    503: {"model": ErrorResponse, "description": "Model cannot be loaded here (offline, pickle-only…)"},
}
HEAD_DOC = (
    "Attention of one layer as raw little-endian float16 in C order, no header. With `head`: shape "
    "`[n, n]`; without: `[heads, n, n]`. Rows are query positions, columns key positions; headers "
    "`X-Shape` and `X-Dtype` repeat the shape and type."
)
THUMBS_DOC = (
    "All-heads overview as raw uint8 in C order, shape `[layers, heads, s, s]` with `s = min(size, n)`: "
    "each head's matrix mean-pooled into s×s blocks, divided by its own maximum, quantised as round(255·v)."
)
BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}

router = APIRouter(prefix="/api/v1", responses=ERRORS)


def service_of(request: Request) -> Service:
    return request.app.state.service


@router.get("/models", response_model=ModelList, summary="The model catalog with availability")
def list_models(request: Request) -> ModelList:
    service = service_of(request)
    return ModelList(
        default=service.settings.default_model,
        models=[serialize.model_info(status) for status in service.models()],
    )


@router.post("/analyze", response_model=AnalysisMeta, summary="Run a text through a model")
def analyze(body: AnalyzeRequest, request: Request) -> AnalysisMeta:
    """Tokens and shape of the attention; the matrices are fetched from the binary endpoints by `key`."""
    service = service_of(request)
    analysis = service.analyze(body.text, body.model)
    spec = service.resolve(analysis.result.model_id)
    return serialize.analysis_meta(analysis, spec.label)


@router.get(
    "/analyses/{key}/attention",
    response_class=Response,
    responses={200: {**BINARY, "description": HEAD_DOC}},
    summary="Attention of one layer or one head (binary float16)",
    description=HEAD_DOC,
)
def attention(
    key: str,
    request: Request,
    layer: Annotated[int, Query(ge=0, le=1000)],
    head: Annotated[int | None, Query(ge=0, le=1000)] = None,
) -> Response:
    service = service_of(request)
    result = service.result(key)
    service.check_layer_head(result, layer, head)
    matrix = result.attentions[layer] if head is None else result.attentions[layer, head]
    data, headers = serialize.float16_payload(matrix)
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get(
    "/analyses/{key}/thumbnails",
    response_class=Response,
    responses={200: {**BINARY, "description": THUMBS_DOC}},
    summary="Downsampled thumbnails of every head (binary uint8)",
    description=THUMBS_DOC,
)
def thumbnails(
    key: str, request: Request, size: Annotated[int, Query(ge=4, le=128)] = 48
) -> Response:
    result = service_of(request).result(key)
    data, headers = serialize.thumbnails_payload(result, size)
    return Response(data, media_type="application/octet-stream", headers=headers)
