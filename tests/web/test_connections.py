"""Connection hygiene of the real server (web/server.py, what ``visualizeai serve`` runs), over raw sockets: a
request whose head or body stalls is answered 408 and closed, slow clients do not hold up others, connections
beyond the cap get a 503, oversized headers a 431 and over-long URLs a 414.

Each server runs on a free port in its own thread. Tests wait for outcomes (a response, a close) with a
generous bound and never assert how fast something happened.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace

import pytest
import uvicorn

from visualizeai.config import Settings
from visualizeai.web.server import REQUEST_LINE_SLACK, make_server

QUICK = Settings(offline=True, request_timeout_s=1.0, max_header_bytes=1024, max_url_bytes=2048)
# Slow clients must outlast the test here, so its timeout is long; outcomes never wait on it.
CAPPED = Settings(offline=True, request_timeout_s=60.0, max_connections=3)
WAIT = 10 * QUICK.request_timeout_s  # the longest any outcome may take to show
MODELS = "/api/v1/models"


def poll(condition, what: str) -> None:
    """Return once ``condition()`` holds; fail after ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


@contextmanager
def running(settings: Settings) -> Iterator[tuple[uvicorn.Server, int]]:
    """The server ``make_server`` builds, on a free port of 127.0.0.1 in a thread: yields it and its port."""
    server = make_server(replace(settings, host="127.0.0.1", port=0), log_level="warning")
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    poll(lambda: server.started or not thread.is_alive(), "the server has started")
    assert server.started, "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield server, port
    finally:
        server.should_exit = True
        thread.join(WAIT)


@pytest.fixture(scope="module")
def quick() -> Iterator[tuple[uvicorn.Server, int]]:
    with running(QUICK) as server_port:
        yield server_port


@pytest.fixture
def capped() -> Iterator[tuple[uvicorn.Server, int]]:
    """A server with a cap of three connections, none of them open yet."""
    with running(CAPPED) as server_port:
        yield server_port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def request(method: str, target: str, *headers: str, length: int | None = None) -> bytes:
    """A request head; ``Connection: close`` so that reading the response ends when the server closes."""
    lines = [f"{method} {target} HTTP/1.1", "Host: test", "Connection: close", *headers]
    if length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def response(sock: socket.socket) -> tuple[int | None, str]:
    """What the server sends until it closes: the status (None: closed without a response) and the body."""
    chunks = []
    while chunk := sock.recv(65_536):
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        return None, ""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


def exchange(port: int, data: bytes) -> tuple[int | None, str]:
    with connect(port) as sock:
        sock.sendall(data)
        return response(sock)


def detail(body: str) -> str:
    return json.loads(body)["detail"]


# ---- stalls ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /api/v1/models HTTP/1.1\r\nHost: test\r\n"],
    ids=["nothing", "half a head"],
)
def test_a_head_that_stalls_gets_408_and_is_closed(quick, sent):
    _, port = quick
    status, body = exchange(port, sent)
    assert status == 408 and detail(body) == "Request headers did not arrive within 1 s."


def test_a_body_that_stalls_gets_408_and_is_closed(quick):
    _, port = quick
    status, body = exchange(port, request("POST", "/api/v1/analyze", length=100) + b'{"text": "hal')
    assert status == 408 and detail(body) == "Request body stalled: nothing arrived for 1 s."


def test_slow_clients_do_not_hold_up_others(capped):
    server, port = capped
    half_body = b'{"text"'
    with connect(port) as head_only, connect(port) as body_half:
        head_only.sendall(b"GET /api/v1/models HTTP/1.1\r\nHost: te")
        body_half.sendall(request("POST", "/api/v1/analyze", length=11) + half_body)
        poll(lambda: len(server.server_state.connections) == 2, "both slow clients are connected")
        status, models = exchange(port, request("GET", MODELS))
        assert status == 200 and json.loads(models)
        body_half.sendall(b": 1}")  # still open: it finishes and gets its answer
        status, answer = response(body_half)
        assert status == 422 and "text: Input should be a valid string" in detail(answer)


# ---- the connection cap ------------------------------------------------------------------------------------


def test_connections_beyond_the_cap_get_503(capped):
    server, port = capped
    with ExitStack() as holders:
        for _ in range(2):
            holders.enter_context(connect(port))
        poll(lambda: len(server.server_state.connections) == 2, "two connections are open")
        assert exchange(port, request("GET", MODELS))[0] == 200  # the third of three
        holders.enter_context(connect(port))
        poll(lambda: len(server.server_state.connections) == 3, "three connections are open")
        assert exchange(port, request("GET", MODELS)) == (503, "Service Unavailable")  # a fourth
    poll(lambda: not server.server_state.connections, "the connections have closed")
    assert exchange(port, request("GET", MODELS))[0] == 200


# ---- oversized heads ---------------------------------------------------------------------------------------


def _padded_head(header_bytes: int) -> bytes:
    """A GET whose header lines (``name: value\\r\\n``) add up to ``header_bytes``."""
    fixed = len("host: test\r\n") + len("connection: close\r\n") + len("x-pad: \r\n")
    return request("GET", MODELS, "X-Pad: " + "p" * (header_bytes - fixed))


def test_headers_over_the_limit_get_431(quick):
    _, port = quick
    assert exchange(port, _padded_head(QUICK.max_header_bytes))[0] == 200
    status, body = exchange(port, _padded_head(QUICK.max_header_bytes + 1))
    assert status == 431 and detail(body) == "Request headers are larger than the limit of 1,024 bytes."


def test_a_head_that_grows_without_end_gets_431(quick):
    """Never finished, past the bound h11 holds while a head arrives: 431, not a bare 400 or a reset."""
    _, port = quick
    endless = b"GET /api/v1/models HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"p" * (2 * QUICK.max_url_bytes)
    status, body = exchange(port, endless + b"p" * (QUICK.max_header_bytes + REQUEST_LINE_SLACK))
    assert status == 431 and detail(body) == "Request headers are larger than the limit of 1,024 bytes."


def _url(length: int) -> str:
    return MODELS + "?q=" + "u" * (length - len(MODELS) - 3)


def test_urls_over_the_limit_get_414(quick):
    _, port = quick
    assert exchange(port, request("GET", _url(QUICK.max_url_bytes)))[0] == 200
    status, body = exchange(port, request("GET", _url(QUICK.max_url_bytes + 1)))
    assert status == 414 and detail(body) == "Request URL is longer than the limit of 2,048 bytes."


def test_a_request_line_that_grows_without_end_gets_414(quick):
    _, port = quick
    endless = b"GET " + _url(QUICK.max_url_bytes + QUICK.max_header_bytes + 2 * REQUEST_LINE_SLACK).encode()
    status, body = exchange(port, endless)
    assert status == 414 and detail(body) == "Request URL is longer than the limit of 2,048 bytes."
