"""HTML pages. The server renders only the frame; the analysis itself is fetched by the page's modules."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from visualizeai.analysis.transforms import MERGE_RULE
from visualizeai.web import serialize

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    service = request.app.state.service
    models = [serialize.model_info(status).model_dump() for status in service.models()]
    return request.app.state.templates.TemplateResponse(
        request,
        "index.html",
        {
            "models": models,
            "default_model": service.settings.default_model,
            "max_tokens": service.settings.max_tokens,
            "max_text_chars": service.settings.max_text_chars,
        },
    )


@router.get("/analysis", response_class=HTMLResponse)
def analysis(request: Request, model: str = "", text: str = "") -> HTMLResponse:
    service = request.app.state.service
    return request.app.state.templates.TemplateResponse(
        request,
        "analysis.html",
        {"model": model.strip() or service.settings.default_model, "text": text, "merge_rule": MERGE_RULE},
    )


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
