"""HTML pages. The server renders only the frame; the analysis itself is fetched by the page's modules.

An analysis is started by POST (the index form, or the page's script through POST /api/v1/analyze) and shown
at ``/analysis/{key}``: the URL carries the result key (or a short digest of it) and the view state, never the
text. A key the server no longer holds gets a 404 page that offers to run the same input again while the
inputs store remembers it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from visualizeai import limits
from visualizeai.analysis.transforms import MERGE_RULE
from visualizeai.errors import VisualizeAIError
from visualizeai.service import DIGEST_LENGTH, AmbiguousKey, KeyLookup, Service
from visualizeai.web import serialize
from visualizeai.web.app import STATUS
from visualizeai.web.deps import ServiceDep

router = APIRouter(include_in_schema=False)


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200, headers=None):
    return request.app.state.templates.TemplateResponse(
        request, template, context, status_code=status, headers=headers
    )


def _model_list(service: Service) -> list[dict]:
    """The catalog as the pages' model pickers list it (id, display name, kind, availability, reason)."""
    return [serialize.model_info(status).model_dump() for status in service.models()]


def _index_context(service: Service, text: str = "", model: str = "", error: str | None = None) -> dict:
    models = _model_list(service)
    return {
        "models": models,
        "default_model": service.settings.default_model,
        "selected_model": model.strip() or service.settings.default_model,
        "max_tokens": service.settings.max_tokens,
        "max_text_chars": service.settings.max_text_chars,
        "text": text,
        "error": error,
    }


@router.get("/", response_class=HTMLResponse)
def index(request: Request, service: ServiceDep) -> HTMLResponse:
    return _render(request, "index.html", _index_context(service))


FORM_FIELDS = 8  # the form has two; a few more are ignored, many are refused by the parser


@router.post("/analysis", response_class=HTMLResponse)
async def start_analysis(request: Request, service: ServiceDep) -> Response:
    """The index form without script (fields ``model`` and ``text``): run the analysis, then 303 to its
    page. A refusal re-renders the index with the message, the text and the model kept, under the status the
    API would answer. The form is read with the body's own limit (``max_form_bytes``) as the field limit."""
    form = await request.form(
        max_files=0, max_fields=FORM_FIELDS, max_part_size=service.settings.max_form_bytes
    )
    text, model = form.get("text", ""), form.get("model", "")
    text = text.replace("\r\n", "\n") if isinstance(text, str) else ""  # a form sends CRLF line breaks
    model = model if isinstance(model, str) else ""
    try:
        analysis = await run_in_threadpool(service.analyze, text, model)
    except VisualizeAIError as exc:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, limits.Busy) else None
        context = _index_context(service, text, model, str(exc))
        return _render(request, "index.html", context, STATUS.get(type(exc), 400), headers)
    return RedirectResponse(f"/analysis/{quote(analysis.key)}", status_code=303)


@router.get("/analysis", response_class=HTMLResponse)
def analysis(
    request: Request, service: ServiceDep, model: str = "", text: str = "", key: str = ""
) -> Response:
    """Legacy addresses: ``?text=…&model=…`` (the page's script runs the analysis; short texts only, the URL
    carries them) and ``?key=…`` (the keyed page)."""
    if key and not text:
        return analysis_page(request, service, key)
    return _render(
        request,
        "analysis.html",
        {
            "key": None,
            "model": model.strip() or service.settings.default_model,
            "text": text,
            "merge_rule": MERGE_RULE,
            "models": _model_list(service),
        },
    )


@router.get("/analysis/{key}", response_class=HTMLResponse)
def analysis_by_key(request: Request, service: ServiceDep, key: str) -> Response:
    """The page of a cached analysis, by its key or a short digest of it; unknown or expired: a 404 page."""
    return analysis_page(request, service, key)


def analysis_page(request: Request, service: Service, ref: str) -> Response:
    try:
        found = service.lookup(ref)
    except AmbiguousKey as exc:
        return _expired(request, service, ref, KeyLookup(None, False, None), str(exc), 409)
    if not found.cached:
        return _expired(request, service, ref, found, None, 404)
    result = service.results.get(found.key)
    if result is None:  # evicted between the lookup and now
        return _expired(request, service, ref, found, None, 404)
    return _render(
        request,
        "analysis.html",
        {
            "key": found.key,
            "digest": found.key[:DIGEST_LENGTH],
            "model": result.model_id,
            "text": "",  # the page reads the text from the analysis' metadata, never from the page or URL
            "n": result.n,
            "merge_rule": MERGE_RULE,
            "models": _model_list(service),
        },
    )


def _expired(
    request: Request, service: Service, ref: str, found: KeyLookup, problem: str | None, status: int
) -> HTMLResponse:
    inputs = found.inputs
    label = None
    if inputs is not None:
        try:
            label = service.resolve(inputs.model).label
        except VisualizeAIError:
            label = inputs.model
    context = {
        "ref": ref[:64],
        "problem": problem,
        "inputs": inputs,
        "model_label": label,
        "result_cache_size": service.settings.result_cache_size,
    }
    return _render(request, "expired.html", context, status)


COMPARE_DEFAULTS = {
    "sentences": ("The doctor asked the nurse to help her.", "The doctor asked the nurse to help him."),
    "models": ("The animal didn't cross the street because it was too tired.", ""),
}


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    mode: str = "sentences",
    model_a: str = "",
    model_b: str = "",
    text_a: str = "",
    text_b: str = "",
) -> HTMLResponse:
    """Two sentences under one model, or one text under two models (js/compare.js runs both analyses)."""
    service = request.app.state.service
    models = [serialize.model_info(status).model_dump() for status in service.models()]
    mode = mode if mode in COMPARE_DEFAULTS else "sentences"
    usable = [m["id"] for m in models if m["availability"] != "unavailable"]
    default = service.settings.default_model
    other = next((m for m in usable if m != default), default)
    return request.app.state.templates.TemplateResponse(
        request,
        "compare.html",
        {
            "models": models,
            "mode": mode,
            "model_a": model_a or default,
            "model_b": model_b or other,
            "text_a": text_a or COMPARE_DEFAULTS[mode][0],
            "text_b": text_b or COMPARE_DEFAULTS["sentences"][1],
        },
    )
