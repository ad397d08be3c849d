"""The app factory: settings and service are injected so tests can swap in tiny models or fakes."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visualizeai import __version__, budgets, errors, limits
from visualizeai.config import Settings
from visualizeai.service import Service
from visualizeai.web.guards import BodyLimit, SecurityHeaders

HERE = Path(__file__).parent
log = logging.getLogger(__name__)

STATUS = {
    errors.InputError: 400,
    errors.ModelNotFound: 404,
    errors.ResultExpired: 404,
    errors.TaskUnsupported: 409,
    errors.ModelUnavailable: 503,
    budgets.ExportTooLarge: 413,  # a file over the work budget, like the other files that would be too large
    limits.Busy: 503,  # a concurrency cap is full: with Retry-After
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
INTERNAL_ERROR = (
    "Something went wrong on the server while handling this request; it has been logged. Try again, and if "
    "it keeps happening, report it with what you sent."
)
UPLOAD_PATHS = frozenset({"/api/v1/analyses"})  # saved analyses: limited by settings.max_upload_bytes
FORM_PATHS = frozenset({"/analysis"})  # the index form (percent-encoded text): settings.max_form_bytes
# Text answers (JSON metadata, pages, scripts) are gzip-compressed for clients that accept it: the token
# table of a long analysis shrinks about fivefold. Binary attention is not: compressing float16 tiles costs
# more time than the bytes it saves.
GZIP_LEVEL = 3
GZIP_MINIMUM_BYTES = 1024
GZIP_EXCLUDED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/octet-stream")
GZIP_PATHS = ("/api/", "/static/")  # pages are small, and their template responses pass through untouched
DESCRIPTION = (
    "Attention of transformer language models. Metadata is JSON; attention matrices are binary "
    "(little-endian float16 per layer or head, uint8 thumbnails): see each binary operation's description."
)


class CompressText:
    """Starlette's GZipMiddleware for the API and static files (``GZIP_PATHS``); other paths pass through."""

    def __init__(self, app: ASGIApp, **options):
        self.app = app
        self.gzip = GZipMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(GZIP_PATHS):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class BodyTimeout:
    """Answers 408 and closes the connection when a request body stalls: no part of it for ``timeout_s``.

    Each wait for the next part is bounded, so a slow but moving upload is not cut off; once the body is
    complete ``receive`` is passed through untimed (a streaming response waits on it for the disconnect). The
    request head has its own deadline in the server (web/server.py).
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float):
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                with anyio.fail_after(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                detail = f"Request body stalled: nothing arrived for {self.timeout_s:g} s."
                raise HTTPException(408, detail, headers={"Connection": "close"}) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)


def _validation_part(err: dict) -> str:
    loc = [str(x) for x in err.get("loc", ())]
    kind = err.get("type", "")
    if kind == "json_invalid":
        position = f" at character {int(loc[1]) + 1:,}" if len(loc) > 1 and loc[1].isdigit() else ""
        return f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'decode error')}{position})"
    where = ".".join(loc[1:]) if loc and loc[0] == "body" else ".".join(loc)  # text, query.layer, …
    if not where and kind == "missing":
        return "the request body is missing; send a JSON object"
    if not where:
        return f"the body must be a JSON object ({err.get('msg', 'invalid')})"
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"{where} is not a known field"
    return f"{where}: {err.get('msg', 'invalid')}"


def _validation_message(exc: RequestValidationError) -> str:
    return "Invalid request — " + "; ".join(_validation_part(err) for err in exc.errors()[:5]) + "."


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """Build the ASGI app. ``service`` defaults to a real one built from ``settings``."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="VisualizeAI", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.service = service or Service(settings)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")

    @app.exception_handler(errors.VisualizeAIError)
    async def _known_error(request: Request, exc: errors.VisualizeAIError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, limits.Busy) else None
        return JSONResponse({"detail": str(exc)}, status_code=STATUS.get(type(exc), 400), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Answered by Starlette's outermost middleware, outside SecurityHeaders: the headers are added here.
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500, headers=SECURITY_HEADERS)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    def body_limit(path: str) -> int:
        if path in FORM_PATHS:
            return settings.max_form_bytes
        return settings.max_upload_bytes if path in UPLOAD_PATHS else settings.max_body_bytes

    # Pure ASGI middleware (web/guards.py); the one added last runs first, so every response gets the headers.
    app.add_middleware(
        CompressText,  # JSON and scripts gzip-compressed; binary attention as it is
        minimum_size=GZIP_MINIMUM_BYTES,
        compresslevel=GZIP_LEVEL,
        exclude_content_types=GZIP_EXCLUDED,
    )
    app.add_middleware(BodyLimit, limit_for=body_limit)  # Content-Length and chunked bodies; UTF-8 JSON
    app.add_middleware(BodyTimeout, timeout_s=settings.request_timeout_s)  # 408 when a body stalls
    app.add_middleware(SecurityHeaders, headers=SECURITY_HEADERS)

    from visualizeai.web import (
        api_aggregates,
        api_analyses,
        api_corpus,
        api_docs,
        api_export,
        api_lm,
        api_vectors,
        pages,
    )

    app.include_router(api_analyses.router)
    app.include_router(api_lm.router)
    app.include_router(api_export.router)
    app.include_router(api_aggregates.router)
    app.include_router(pages.router)
    app.include_router(api_corpus.router)
    app.include_router(api_docs.router)
    app.include_router(api_vectors.router)
    app.mount("/static", StaticFiles(directory=HERE / "static", follow_symlink=False), name="static")
    return app
