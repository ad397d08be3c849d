"""Pure ASGI middleware guarding every request: body-size limits and security headers.

Pure ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware reads the body in another
task, which wraps an error raised while the body streams in into an ExceptionGroup that FastAPI then reports
as a generic "error parsing the body".
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping

from fastapi import HTTPException  # FastAPI lets its own HTTPException through body parsing, unchanged
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOT_A_LENGTH = "The Content-Length header is not a whole number."


def too_large(limit: int) -> str:
    return f"Request body is larger than the limit of {limit:,} bytes."


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyLimit:
    """Refuses request bodies over ``limit_for(path)`` bytes (413) and JSON bodies that are not UTF-8 (400).

    A ``Content-Length`` over the limit is answered here before the app runs. A body sent without one
    (chunked) is counted as it arrives; passing the limit raises ``HTTPException`` from ``receive``, so the
    app's own handlers answer it. JSON is decoded incrementally on the way, so a byte that is not UTF-8 is
    refused with its position instead of a generic parse error.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = Headers(scope=scope)
        length = headers.get("content-length", "0").strip()
        if not length.isdigit():
            await JSONResponse({"detail": NOT_A_LENGTH}, 400)(scope, receive, send)
            return
        if int(length) > limit:
            await JSONResponse({"detail": too_large(limit)}, 413)(scope, receive, send)
            return
        is_json = _is_json(headers.get("content-type", ""))
        decoder = codecs.getincrementaldecoder("utf-8")() if is_json else None
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            start = received
            received += len(chunk)
            if received > limit:
                raise HTTPException(413, too_large(limit))
            if decoder is not None:
                pending = len(decoder.getstate()[0])  # bytes of a character split across chunks
                try:
                    decoder.decode(chunk, final=not message.get("more_body", False))
                except UnicodeDecodeError as exc:
                    position = start - pending + exc.start + 1
                    raise HTTPException(
                        400,
                        f"The request body is not valid UTF-8 (byte {position:,} cannot be decoded); send "
                        "JSON encoded as UTF-8.",
                    ) from None
            return message

        await self.app(scope, limited_receive, send)


class SecurityHeaders:
    """Sets ``headers`` (Content-Security-Policy, …) on every HTTP response that passes through: pages, API,
    static files and error responses alike."""

    def __init__(self, app: ASGIApp, *, headers: Mapping[str, str]):
        self.app = app
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
