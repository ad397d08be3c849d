"""The app factory: settings and service are injected so tests can swap in tiny models or fakes."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from visualizeai import __version__, errors
from visualizeai.config import Settings
from visualizeai.service import Service

HERE = Path(__file__).parent
log = logging.getLogger(__name__)

STATUS = {
    errors.InputError: 400,
    errors.ModelNotFound: 404,
    errors.ResultExpired: 404,
    errors.TaskUnsupported: 409,
    errors.ModelUnavailable: 503,
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
UPLOAD_PATHS = frozenset({"/api/v1/analyses"})  # saved analyses: limited by settings.max_upload_bytes
DESCRIPTION = (
    "Attention of transformer language models. Metadata is JSON; attention matrices are binary "
    "(little-endian float16 per layer or head, uint8 thumbnails): see each binary operation's description."
)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "Invalid request — " + "; ".join(parts)


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """Build the ASGI app. ``service`` defaults to a real one built from ``settings``."""
    settings = settings or Settings.from_env()
    app = FastAPI(title="VisualizeAI", version=__version__, description=DESCRIPTION, docs_url=None,
                  redoc_url=None)
    app.state.settings = settings
    app.state.service = service or Service(settings)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")

    @app.exception_handler(errors.VisualizeAIError)
    async def _known_error(request: Request, exc: errors.VisualizeAIError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=STATUS.get(type(exc), 400))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        length = request.headers.get("content-length")
        limit = settings.max_upload_bytes if request.url.path in UPLOAD_PATHS else settings.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return JSONResponse(
                {"detail": f"Request body is larger than the limit of {limit:,} bytes."},
                status_code=413,
            )
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    from visualizeai.web import api, api_aggregates, api_export, api_lm, pages

    app.include_router(api.router)
    app.include_router(api_lm.router)
    app.include_router(api_export.router)
    app.include_router(api_aggregates.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static", follow_symlink=False), name="static")
    return app
