"""The API reference at /docs: Swagger UI from the vendored npm package, reading /openapi.json; no CDN."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "docs.html", {"active_page": "docs"})


@router.get("/redoc")
def redoc() -> RedirectResponse:
    """One reference page: /redoc, FastAPI's other usual address, leads to it."""
    return RedirectResponse("/docs", status_code=308)
