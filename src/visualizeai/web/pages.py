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


def _compare_side(service: Service, ref: str) -> tuple[str, str, str | None]:
    """``(model, text, problem)`` of the analysis ``ref`` names: from the cached result, else from the inputs
    store (so an expired comparison can be run again), else empty with why."""
    if not ref:
        return "", "", None
    try:
        found = service.lookup(ref)
    except AmbiguousKey as exc:
        return "", "", str(exc)
    result = service.results.get(found.key) if found.cached else None
    if result is not None:
        inputs = service.inputs.get(found.key)
        return (inputs.model if inputs else result.model_id), result.text, None
    if found.inputs is not None:
        return found.inputs.model, found.inputs.text, "expired"
    return "", "", "unknown"


def _compare_context(
    service: Service, mode: str, model_a: str, model_b: str, text_a: str, text_b: str, **extra
) -> dict:
    models = _model_list(service)
    mode = mode if mode in COMPARE_DEFAULTS else "sentences"
    usable = [m["id"] for m in models if m["availability"] != "unavailable"]
    default = service.settings.default_model
    other = next((m for m in usable if m != default), default)
    return {
        "models": models,
        "mode": mode,
        "model_a": model_a or default,
        "model_b": model_b or other,
        "text_a": text_a or COMPARE_DEFAULTS[mode][0],
        "text_b": text_b or COMPARE_DEFAULTS["sentences"][1],
        "key_a": "",
        "key_b": "",
        "error": None,
        **extra,
    }


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    service: ServiceDep,
    mode: str = "sentences",
    a: str = "",
    b: str = "",
    model_a: str = "",
    model_b: str = "",
    text_a: str = "",
    text_b: str = "",
) -> HTMLResponse:
    """Two sentences under one model, or one text under two models (js/pages/compare.js draws them). The
    comparison is addressed by its two analyses' keys (``a``, ``b``), never by its texts; the page fills the
    form from them. Keys the server no longer holds fill it from the inputs store, with a note to run it
    again. (``text_a``/``text_b`` in the query are read for old links; the page runs them and replaces the
    address with the keys.)"""
    extra = {}
    if a or b:
        model_a, text_a, problem_a = _compare_side(service, a)
        model_b, text_b, problem_b = _compare_side(service, b)
        if mode == "models":
            text_b = ""
        problems = {problem_a, problem_b} - {None}
        if problems == {"expired"}:
            extra["error"] = (
                "This comparison's analyses are no longer held by the server (it keeps the most recent "
                f"{service.settings.result_cache_size:,}); its inputs are in the form: press Compare to run "
                "it again."
            )
        elif problems:
            ambiguous = sorted(problems - {"expired", "unknown"})
            extra["error"] = (
                ambiguous[0]
                if ambiguous
                else (
                    "This comparison is unknown to the server (the link is wrong, or its analyses were "
                    "forgotten): enter the texts and press Compare."
                )
            )
        else:
            extra.update(key_a=a[:64], key_b=b[:64])
    context = _compare_context(service, mode, model_a, model_b, text_a, text_b, **extra)
    return _render(request, "compare.html", context)


@router.post("/compare", response_class=HTMLResponse)
async def start_comparison(request: Request, service: ServiceDep) -> Response:
    """The compare form (fields ``mode``, ``model_a``, ``model_b``, ``text_a``, ``text_b``): run both
    analyses, then 303 to ``/compare?mode=…&a=KEY&b=KEY``. A refusal re-renders the form with the message
    and the inputs kept, under the status the API would answer."""
    form = await request.form(
        max_files=0, max_fields=FORM_FIELDS, max_part_size=service.settings.max_form_bytes
    )

    def field(name: str) -> str:
        value = form.get(name, "")
        return value.replace("\r\n", "\n") if isinstance(value, str) else ""

    mode = field("mode") if field("mode") in COMPARE_DEFAULTS else "sentences"
    model_a = field("model_a")
    model_b = field("model_b") if mode == "models" else model_a
    text_a = field("text_a")
    text_b = text_a if mode == "models" else field("text_b")
    try:
        first = await run_in_threadpool(service.analyze, text_a, model_a)
        second = await run_in_threadpool(service.analyze, text_b, model_b)
    except VisualizeAIError as exc:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, limits.Busy) else None
        context = _compare_context(
            service, mode, model_a, model_b, text_a, "" if mode == "models" else text_b, error=str(exc)
        )
        return _render(request, "compare.html", context, STATUS.get(type(exc), 400), headers)
    query = f"mode={mode}&a={first.key}&b={second.key}"
    return RedirectResponse(f"/compare?{query}", status_code=303)
