"""Export and reuse under /api/v1: download an analysis as a file, open a saved one, read one's metadata.

File formats are described in docs/export-format.md. Uploads are parsed from a size-capped stream and
loaded with ``allow_pickle=False`` after their archive members are checked (``export.loads_npz``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from visualizeai import export
from visualizeai.errors import InputError
from visualizeai.service import Analysis, Service
from visualizeai.web import serialize
from visualizeai.web.api_analyses import ERRORS
from visualizeai.web.deps import ServiceDep
from visualizeai.web.schemas import AnalysisMeta

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["export"])

UPLOAD_FIELD = "file"
UNPACK_FACTOR = 4  # a saved analysis may unpack to this many times the upload limit
EXPORT_DOC = (
    "The analysis as a file (see docs/export-format.md): `npz` (float32 arrays and JSON metadata; opens "
    "again with POST /api/v1/analyses), `json`, `html` (standalone offline page with the heatmap and "
    "all-heads overview of `layers`), `png` or `svg` (figure of `layer`/`head` with colour `scale`). Sent "
    "as an attachment."
)
UPLOAD_DOC = (
    "Open a saved analysis: a `.npz` written by the export endpoint, the CLI or `visualizeai.save`, sent as "
    f"multipart/form-data in the field `{UPLOAD_FIELD}`. Returns the same metadata as /analyze; the views "
    "then read its matrices by `key`, without a model. Nothing is unpickled; shapes are checked."
)
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
BINARY_SCHEMA = {"type": "string", "format": "binary"}
FILE_RESPONSES = {
    200: {
        "description": EXPORT_DOC,
        "content": {
            # the .json download is a JSON document (docs/export-format.md); the others are files
            media: {"schema": {"type": "object"} if media == "application/json" else BINARY_SCHEMA}
            for media in sorted(set(export.MEDIA_TYPES.values()))
        },
    },
    413: {"description": "The file would be too large; the message says what to choose instead"},
}


def _display_name(service: Service, result) -> str:
    model_id = result.model_id
    # Only catalog ids are looked up: a model id read from an uploaded file never reaches the file system.
    return service.catalog.resolve(model_id).label if model_id in service.catalog else model_id


def _meta(service: Service, analysis: Analysis) -> AnalysisMeta:
    return serialize.analysis_meta(analysis, _display_name(service, analysis.result))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.rsplit("/", 1)[-1]).strip("-.")[:60] or "analysis"


@router.get("/analyses/{key}", response_model=AnalysisMeta, summary="Metadata of a cached analysis")
def analysis_meta(key: str, service: ServiceDep) -> Response:
    """Tokens, shape and predictions of analysis `key`, as /analyze returned them (used to reopen a page)."""
    result = service.result(key)
    body = serialize.analysis_meta_json(Analysis(key, result, True, 0.0), _display_name(service, result))
    return Response(body, media_type="application/json")


@router.get(
    "/analyses/{key}/export",
    response_class=Response,
    responses=FILE_RESPONSES,
    summary="Download an analysis as npz, json, html, png or svg",
    description=EXPORT_DOC,
)
def export_analysis(
    key: str,
    service: ServiceDep,
    format: Literal["npz", "json", "html", "png", "svg"] = "npz",  # noqa: A002 (the query parameter's name)
    layer: Annotated[int, Query(ge=0, le=1000)] = 0,
    head: Annotated[int, Query(ge=0, le=1000)] = 0,
    layers: Annotated[str | None, Query(max_length=400, pattern=r"^[0-9,\- ]*$")] = None,
    scale: Literal["linear", "sqrt", "log"] = "linear",
) -> Response:
    result = service.result(key)
    chosen = export.parse_layers(layers, result.layers)
    # over the work budget: 413 naming the format, its cost and the budget; over max_heavy: 503
    data = service.export_bytes(result, format, layer=layer, head=head, layers=chosen, scale=scale)
    stem = f"visualizeai-{_slug(result.model_id)}"
    name = f"{stem}-L{layer}H{head}.{format}" if format in ("png", "svg") else f"{stem}-{key[:8]}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type=export.MEDIA_TYPES[format], headers=headers)


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The request body, refusing it once it passes ``limit`` bytes (also without a Content-Length)."""
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"The upload is larger than the limit of {limit:,} bytes.")
        yield chunk


def _open_saved(service: Service, data: bytes) -> AnalysisMeta:
    """Check and load an uploaded ``.npz`` under this server's limits (a fresh analysis's token and text
    caps; ``UNPACK_FACTOR`` times the upload limit unpacked) and keep it in the result cache."""
    settings = service.settings
    try:
        result = export.loads_npz(
            data,
            max_unpacked_bytes=UNPACK_FACTOR * settings.max_upload_bytes,
            max_tokens=settings.max_tokens,
            max_text_chars=settings.max_text_chars,
            max_result_bytes=settings.result_cache_bytes,
        )
    except export.TooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    analysis = service.adopt(result, hashlib.sha256(data).hexdigest())
    return _meta(service, analysis)


@router.post(
    "/analyses",
    response_model=AnalysisMeta,
    summary="Open a saved analysis (.npz upload)",
    description=UPLOAD_DOC,
    openapi_extra=UPLOAD_BODY,
    responses={
        413: {"description": "The file is larger than the upload limit"},
        415: {"description": "Not a multipart/form-data upload"},
    },
)
async def open_saved(request: Request, service: ServiceDep) -> AnalysisMeta:
    with service.uploads.hold():  # max_uploads at once, receiving the body included; else 503
        return await _receive_saved(request, service)


async def _receive_saved(request: Request, service: Service) -> AnalysisMeta:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(
            415,
            f"Send the saved analysis as multipart/form-data, the .npz file in the field '{UPLOAD_FIELD}'.",
        )
    stream = _capped(request.stream(), service.settings.max_upload_bytes)
    parser = MultiPartParser(request.headers, stream, max_files=1, max_fields=4)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InputError(f"The upload is not valid multipart/form-data ({exc.message}).") from None
    try:
        upload = form.get(UPLOAD_FIELD)
        if not isinstance(upload, UploadFile):
            raise InputError(f"The upload has no file in the field '{UPLOAD_FIELD}'.")
        data = await upload.read()
    finally:
        await form.close()
    if not data:
        raise InputError("The uploaded file is empty.")
    # numpy and hashing take a while for large files: off the event loop
    return await run_in_threadpool(_open_saved, service, data)
