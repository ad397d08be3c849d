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
        request, "index.html", {"models": models, "default_model": service.settings.default_model}
    )


@router.get("/analysis", response_class=HTMLResponse)
def analysis(request: Request, model: str = "", text: str = "") -> HTMLResponse:
    service = request.app.state.service
    return request.app.state.templates.TemplateResponse(
        request,
        "analysis.html",
        {"model": model or service.settings.default_model, "text": text, "merge_rule": MERGE_RULE},
    )
