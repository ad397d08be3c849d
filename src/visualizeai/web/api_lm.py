"""Language-model endpoints under /api/v1: fill-mask, and generation streamed as server-sent events.

Handlers are sync (FastAPI runs them in a worker thread); the event stream is a sync iterator, which
Starlette also runs in a worker thread, so no torch call ever blocks the event loop. Everything that can go
wrong with the request (model, text, task) is checked before the stream starts: a 4xx JSON error. A stream
holds one of ``max_generations`` slots for its whole life; one more stream gets a 503 with Retry-After.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from visualizeai import limits
from visualizeai.service import Service
from visualizeai.web import serialize
from visualizeai.web.api_analyses import ERRORS
from visualizeai.web.deps import ServiceDep
from visualizeai.web.schemas import AnalysisMeta, ErrorResponse, FillMaskRequest, GenerateRequest

LM_ERRORS = {
    **ERRORS,
    409: {"model": ErrorResponse, "description": "The model cannot do this task (no trained MLM head, …)"},
}
STREAM_DOC = (
    "Generates up to `max_new_tokens` tokens and streams them as `text/event-stream`: one `start` event "
    "(model, prompt tokens, layers, heads), one `token` event per generated token (its id, text, and the "
    "attention row that produced it, `[layers, heads, t]` as base64 little-endian float16), then `done` "
    "(finish_reason: length | eos | context) or `error`. Each event's data is one line of JSON. "
    "See docs/wire-format.md."
)
EVENT_STREAM = {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

router = APIRouter(prefix="/api/v1", responses=LM_ERRORS, tags=["language models"])


@router.post("/fill-mask", response_model=AnalysisMeta, summary="Predict the tokens at [MASK] positions")
def fill_mask(body: FillMaskRequest, service: ServiceDep) -> AnalysisMeta:
    """The analysis of a text with masks, whose `predictions` hold the top-k per mask (always a list, one
    entry per mask). 409 when the model has no trained masked-LM head; 400 when the text has no mask."""
    analysis = service.fill_mask(body.text, body.model, body.top_k)
    return serialize.analysis_meta(analysis, service.resolve(analysis.result.model_id).label)


def _stream(service: Service, body: GenerateRequest) -> StreamingResponse:
    slot = service.generations.acquire()  # Busy (503) when max_generations streams are running
    try:
        generation = service.generate(
            body.text, body.model, body.max_new_tokens, greedy=body.mode == "greedy", seed=body.seed
        )
        events = serialize.generation_events(generation, service.resolve(generation.model_id).label)
    except BaseException:
        slot.release()
        raise
    # Released when the stream ends, fails or is dropped (client gone), or after the response at the latest.
    return StreamingResponse(
        limits.Held(events, slot),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
        background=BackgroundTask(slot.release),
    )


@router.post(
    "/generate",
    response_class=StreamingResponse,
    responses={200: {**EVENT_STREAM, "description": STREAM_DOC}},
    summary="Generate text, streaming each token with its attention (SSE)",
    description=STREAM_DOC,
)
def generate(body: GenerateRequest, service: ServiceDep) -> StreamingResponse:
    return _stream(service, body)


@router.get(
    "/generate",
    response_class=StreamingResponse,
    responses={200: {**EVENT_STREAM, "description": STREAM_DOC}},
    summary="Generate text as an EventSource stream (same as POST, parameters in the query)",
    description=STREAM_DOC,
)
def generate_get(
    service: ServiceDep,
    text: str,  # length and content checked by the service, with the configured limit
    model: str | None = None,
    max_new_tokens: Annotated[int, Query(ge=1, le=512)] = 20,
    mode: Literal["greedy", "sample"] = "greedy",
    seed: Annotated[int, Query(ge=0, le=2**32 - 1)] = 0,
) -> StreamingResponse:
    body = GenerateRequest(text=text, model=model, max_new_tokens=max_new_tokens, mode=mode, seed=seed)
    return _stream(service, body)
