"""Request-body limits as a pure ASGI middleware: what a handler reads can never exceed the limit.

A ``Content-Length`` over the limit is refused before the body is read; a body sent without one (chunked)
is counted as it arrives and refused once it passes the limit. JSON bodies must be UTF-8: they are decoded
incrementally as they arrive, so a stray byte is refused with its position instead of a generic parse error.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(limit: int) -> str:
    return f"Request body is larger than the limit of {limit:,} bytes."


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyLimit:
    """Refuses request bodies over ``limit_for(path)`` bytes (413) and JSON bodies that are not UTF-8 (400).

    Errors found while the body streams in are raised from ``receive`` as ``HTTPException``, so the app's
    own handlers answer them (with its usual headers); an oversized ``Content-Length`` is answered here, with
    ``headers`` added, before the app runs.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int], headers: Mapping[str, str]):
        self.app = app
        self.limit_for = limit_for
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = Headers(scope=scope)
        length = headers.get("content-length", "0").strip()
        refusal = None
        if not length.isdigit():
            refusal = JSONResponse({"detail": "The Content-Length header is not a whole number."}, 400)
        elif int(length) > limit:
            refusal = JSONResponse({"detail": too_large(limit)}, 413)
        if refusal is not None:
            refusal.headers.update(self.headers)
            await refusal(scope, receive, send)
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
