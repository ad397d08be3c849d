"""Corpus mode: the page that shows a corpus summary as a head atlas, and the endpoint that reads one.

The browser sends the ``summary.parquet`` that ``visualizeai corpus`` wrote as the raw request body; the
server validates it (``corpus.summary.load_summary``), answers its numbers as JSON and keeps nothing, so no
path on the server is ever named by a request. The body is capped at ``settings.max_body_bytes`` (the app's
BodyLimit middleware and this handler both check).
"""

from __future__ import annotations

import math

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from visualizeai.corpus.extremes import ExtremeText, LoadedExtremes, load_extremes
from visualizeai.corpus.qk_sample import LoadedQKMap, load_qk_map
from visualizeai.corpus.summary import CorpusSummary, load_summary
from visualizeai.errors import InputError
from visualizeai.web.api_analyses import ERRORS
from visualizeai.web.schemas import ErrorResponse

PARQUET_BODY = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "required": True,
    "description": "The summary.parquet file of a corpus run, as raw bytes.",
}
SUMMARY_DOC = (
    "Reads a corpus summary (the `summary.parquet` of `visualizeai corpus`: one row per layer, head and "
    "statistic with mean, std, count) sent as the raw request body, checks it, and returns its numbers: "
    "`mean`, `std` and `count` per statistic as `[layers][heads]` arrays (`null` where no value). Nothing is "
    "stored. 400 with the reason for a file that is not such a summary; 413 past the body limit."
)


class CorpusSummaryResponse(BaseModel):
    """A corpus summary as the corpus page draws it."""

    model: str | None
    revision: str | None
    texts: int | None
    skipped: int | None
    truncated_texts: int | None
    layers: int
    heads: int
    statistics: list[str]
    descriptions: dict[str, str]
    mean: dict[str, list[list[float | None]]]
    std: dict[str, list[list[float | None]]]
    count: dict[str, list[list[int]]]


EXTREMES_BODY = {**PARQUET_BODY, "description": "The extremes.parquet file of a corpus run, as raw bytes."}
EXTREMES_DOC = (
    "Reads the `extremes.parquet` of a corpus run (for every statistic, layer and head, the texts with the "
    "highest and the lowest value) sent as the raw request body, checks it, and returns its entries; each "
    "names its text by an index into `texts`, where every distinct text appears once. Nothing is stored. "
    "400 with the reason for a file that is not such a table; 413 past the body limit."
)


class CorpusExtremesResponse(BaseModel):
    """The extremes of a corpus run as the corpus page lists them."""

    model: str | None
    revision: str | None
    layers: int
    heads: int
    k: int
    texts: list[str]
    entries: list[ExtremeText]  # one text of a head's list: its value and where it is in the corpus


QK_MAP_BODY = {**PARQUET_BODY, "description": "The qk_map.parquet file of a corpus run, as raw bytes."}
QK_MAP_DOC = (
    "Reads the `qk_map.parquet` of a corpus run (a uniform sample of the corpus's tokens, each with its "
    "query and its key drawn on every head's first two principal axes) sent as the raw request body, checks "
    "it, and returns the sampled tokens once and each head's points as `queries[layer][head]` and "
    "`keys[layer][head]`, lists of `[x, y]` in token order. Nothing is stored. 400 with the reason for a "
    "file that is not such a map; 413 past the body limit."
)


class SampledTokens(BaseModel):
    """The sampled tokens, one entry per token in each list."""

    text_index: list[int]
    window: list[int]
    position: list[int]
    piece: list[str]
    before: list[str]
    after: list[str]
    special: list[bool]


class HeadMapInfo(BaseModel):
    explained: list[float]
    translated: bool


class CorpusQKMapResponse(BaseModel):
    """Every head's query–key map over the corpus sample."""

    model: str | None
    revision: str | None
    layers: int
    heads: int
    tokens: SampledTokens
    heads_info: list[list[HeadMapInfo]]
    queries: list[list[list[list[float]]]]
    keys: list[list[list[list[float]]]]


api = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["corpus"])


async def _read_upload(request: Request, name: str, load):
    """The raw body, a corpus run's ``{name}.parquet``, read by ``load`` in a worker thread; 413 over the body
    limit (the middleware refuses larger bodies first; this keeps the handler safe alone), 400 when empty."""
    limit = request.app.state.settings.max_body_bytes
    data = await request.body()
    if len(data) > limit:
        raise HTTPException(413, f"The {name} file is larger than the limit of {limit:,} bytes.")
    if not data:
        raise InputError(f"No file was sent: choose the {name}.parquet of a corpus run.")
    return await run_in_threadpool(load, data)


router = APIRouter()


def _grid(values: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in row] for row in values.tolist()]


def summary_payload(summary: CorpusSummary) -> CorpusSummaryResponse:
    meta = summary.metadata
    return CorpusSummaryResponse(
        model=meta.get("model"),
        revision=meta.get("revision"),
        texts=meta.get("texts"),
        skipped=meta.get("skipped"),
        truncated_texts=meta.get("truncated_texts"),
        layers=summary.layers,
        heads=summary.heads,
        statistics=summary.statistics,
        descriptions=summary.descriptions,
        mean={name: _grid(summary.mean[s]) for s, name in enumerate(summary.statistics)},
        std={name: _grid(summary.std[s]) for s, name in enumerate(summary.statistics)},
        count={name: summary.count[s].tolist() for s, name in enumerate(summary.statistics)},
    )


@api.post(
    "/corpus/summary",
    response_model=CorpusSummaryResponse,
    summary="Read a corpus summary (Parquet upload)",
    description=SUMMARY_DOC,
    openapi_extra={"requestBody": PARQUET_BODY},
    responses={413: {"model": ErrorResponse, "description": "The file is larger than the body limit"}},
)
async def read_corpus_summary(request: Request) -> CorpusSummaryResponse:
    summary = await _read_upload(request, "summary", load_summary)
    return summary_payload(summary)


def extremes_payload(loaded: LoadedExtremes) -> CorpusExtremesResponse:
    meta = loaded.metadata
    return CorpusExtremesResponse(
        model=meta.get("model") if isinstance(meta.get("model"), str) else None,
        revision=meta.get("revision") if isinstance(meta.get("revision"), str) else None,
        layers=meta["layers"],
        heads=meta["heads"],
        k=meta["k"] if isinstance(meta.get("k"), int) else 0,
        texts=loaded.texts,
        entries=loaded.entries,
    )


@api.post(
    "/corpus/extremes",
    response_model=CorpusExtremesResponse,
    summary="Read the extremes of a corpus run (Parquet upload)",
    description=EXTREMES_DOC,
    openapi_extra={"requestBody": EXTREMES_BODY},
    responses={413: {"model": ErrorResponse, "description": "The file is larger than the body limit"}},
)
async def read_corpus_extremes(request: Request) -> CorpusExtremesResponse:
    return extremes_payload(await _read_upload(request, "extremes", load_extremes))


def qk_map_payload(loaded: LoadedQKMap) -> CorpusQKMapResponse:
    meta = loaded.metadata
    return CorpusQKMapResponse(
        model=meta.get("model") if isinstance(meta.get("model"), str) else None,
        revision=meta.get("revision") if isinstance(meta.get("revision"), str) else None,
        layers=meta["layers"],
        heads=meta["heads"],
        tokens=SampledTokens(**loaded.tokens),
        heads_info=meta["heads_info"],
        queries=loaded.queries.tolist(),
        keys=loaded.keys.tolist(),
    )


@api.post(
    "/corpus/qk-map",
    response_model=CorpusQKMapResponse,
    summary="Read the query–key maps of a corpus run (Parquet upload)",
    description=QK_MAP_DOC,
    openapi_extra={"requestBody": QK_MAP_BODY},
    responses={413: {"model": ErrorResponse, "description": "The file is larger than the body limit"}},
)
async def read_corpus_qk_map(request: Request) -> CorpusQKMapResponse:
    return qk_map_payload(await _read_upload(request, "qk_map", load_qk_map))


@router.get("/corpus", response_class=HTMLResponse, include_in_schema=False)
def corpus_page(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request,
        "corpus.html",
        {"active_page": "corpus", "max_bytes": request.app.state.settings.max_body_bytes},
    )


router.include_router(api)
