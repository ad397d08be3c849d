"""The HTTP server: uvicorn with the connection limits of ``Settings``.

``make_server`` is the one place the server is built: ``visualizeai serve`` runs it, and the tests start the
same server on a free port in a thread. What uvicorn 0.54 and h11 offer is used as is: ``limit_concurrency``
(a 503 beyond it) for ``max_connections``, and h11's ``max_incomplete_event_size`` to bound a request head
that is still arriving. What they lack is added by ``GuardedH11Protocol``: a deadline for the request head
(uvicorn's ``timeout_keep_alive`` only covers the idle time between requests) and 431 / 414 answers instead
of a bare 400. A body that stalls is answered 408 by the app's ``BodyTimeout`` middleware (web/app.py).
"""

from __future__ import annotations

import asyncio
import functools
import json

import h11
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from visualizeai.config import Settings

REQUEST_LINE_SLACK = 1024  # room on the request line for the method, spaces and HTTP version around the URL


def head_bound(settings: Settings) -> int:
    """Most bytes of a request head h11 holds while it is still arriving."""
    return settings.max_url_bytes + settings.max_header_bytes + REQUEST_LINE_SLACK


def head_too_large(limit: int) -> str:
    return f"Request headers are larger than the limit of {limit:,} bytes."


def url_too_long(limit: int) -> str:
    return f"Request URL is longer than the limit of {limit:,} bytes."


def head_timed_out(seconds: float) -> str:
    return f"Request headers did not arrive within {seconds:g} s."


def _error(status: int, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of an error answered by the server itself: ``{"detail": ...}``, then close."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return headers, body


class HeadLimits:
    """Answers 414 for a URL over ``max_url_bytes`` and 431 for headers over ``max_header_bytes`` (counted as
    ``name: value\\r\\n`` lines): the check on a request head that arrived whole."""

    def __init__(self, app: ASGIApp, *, max_url_bytes: int, max_header_bytes: int):
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope["query_string"]
            url = len(scope["raw_path"]) + (len(query) + 1 if query else 0)
            header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            refusal = None
            if url > self.max_url_bytes:
                refusal = 414, url_too_long(self.max_url_bytes)
            elif header_bytes > self.max_header_bytes:
                refusal = 431, head_too_large(self.max_header_bytes)
            if refusal is not None:
                headers, body = _error(*refusal)
                await send({"type": "http.response.start", "status": refusal[0], "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head and 431 / 414 for oversized heads.

    From the moment a connection opens, or the first byte of a next request arrives on a kept-alive one, the
    head must be complete within ``settings.request_timeout_s``; otherwise the server answers 408 and closes.
    A head that arrives whole is checked by ``HeadLimits``; one still arriving past ``head_bound`` (h11's
    bound) is answered 414 when its request line is the long part, else 431, where uvicorn answers a bare 400.
    """

    def __init__(self, *args, settings: Settings, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.app = HeadLimits(
            self.app, max_url_bytes=settings.max_url_bytes, max_header_bytes=settings.max_header_bytes
        )
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # the first bytes of a next request on a kept-alive connection
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the head is complete, or the connection failed
            self._cancel_head_timer()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a head h11 refused: 414 or 431 when it grew past ``head_bound``."""
        head, _ = self.conn.trailing_data
        if len(head) <= head_bound(self.settings):
            super().send_400_response(msg)  # malformed, not too long: uvicorn's 400
            return
        line_end = head.find(b"\n")
        if line_end < 0 or line_end > self.settings.max_url_bytes + REQUEST_LINE_SLACK:
            self._answer(414, url_too_long(self.settings.max_url_bytes))
        else:
            self._answer(431, head_too_large(self.settings.max_header_bytes))

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.settings.request_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._answer(408, head_timed_out(self.settings.request_timeout_s))

    def _answer(self, status: int, detail: str) -> None:
        """Write an error response straight through h11, then close; no request head has reached the app,
        so nothing else has been sent."""
        self.logger.warning("%s %s", status, detail)
        headers, body = _error(status, detail)
        response = h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status])
        for event in (response, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def make_server(settings: Settings, app: ASGIApp | None = None, *, log_level: str = "info") -> uvicorn.Server:
    """The uvicorn server for ``app`` (by default ``create_app(settings)``) on ``settings.host:port``."""
    if app is None:
        from visualizeai.web import create_app

        app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        http=functools.partial(GuardedH11Protocol, settings=settings),  # type: ignore[arg-type]
        # uvicorn counts the connection asking among those open: one more lets max_connections be served
        limit_concurrency=settings.max_connections + 1,
        h11_max_incomplete_event_size=head_bound(settings),
    )
    return uvicorn.Server(config)


def serve(settings: Settings) -> None:
    """Serve the app until interrupted (``visualizeai serve``)."""
    make_server(settings).run()
