"""Bad input on every /api/v1 route gets a clear 4xx; unexpected errors a generic 500; every response carries
the security headers; request bodies are limited with or without Content-Length; `serve` defaults are safe.

``BAD_INPUTS`` is the list of bad inputs tried, with the response each must get (status and a fragment of the
``detail`` a person reads); ``python tests/web/test_hardening.py`` prints it as a table with the actual
responses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from visualizeai import cli
from visualizeai.config import Settings
from visualizeai.errors import ResultExpired
from visualizeai.service import Service
from visualizeai.web import create_app
from visualizeai.web.app import CSP, INTERNAL_ERROR

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."
# A token cap small enough that a text over the derived character limit still fits in a GET URL.
MAX_TOKENS = 2048
LIMIT = Settings(max_tokens=MAX_TOKENS).max_text_chars  # 8 characters per token: 16,384
BODY_LIMIT = Settings(max_tokens=MAX_TOKENS).max_body_bytes  # 6 bytes per character + 64 KiB: 163,840


@dataclass(frozen=True)
class Bad:
    """One bad request: ``path`` may name ``{key}`` (a MiniLM analysis: 6 layers × 12 heads), ``{gpt2}`` or
    ``{bert}`` (tiny model directories)."""

    what: str
    method: str
    path: str
    status: int
    fragment: str
    json: object = None
    params: dict = field(default_factory=dict)
    content: bytes | None = None
    headers: dict = field(default_factory=dict)
    files: dict | None = None


def _chunks(total: int):
    """A body sent without Content-Length (chunked), ``total`` bytes of JSON-ish text."""
    yield b'{"text": "'
    for _ in range(total // 10_000):
        yield b"x" * 10_000
    yield b'"}'


JSON_CT = {"content-type": "application/json"}
A, FM, GEN = "/api/v1/analyze", "/api/v1/fill-mask", "/api/v1/generate"
ATT, THUMB = "/api/v1/analyses/{key}/attention", "/api/v1/analyses/{key}/thumbnails"
EXPORT = "/api/v1/analyses/{key}/export"
TILE = "/api/v1/analyses/{key}/tile"
ROW, TOP = "/api/v1/analyses/{key}/row", "/api/v1/analyses/{key}/top-keys"

# fmt: off
BAD_INPUTS = [
    # -- text ------------------------------------------------------------------------------------------------
    Bad("empty text", "POST", A, 400, "Text is empty", json={"text": ""}),
    Bad("whitespace-only text", "POST", A, 400, "Text is empty", json={"text": " \n\t\u3000 "}),
    Bad("text over the limit", "POST", A, 400, f"the limit is {LIMIT:,}", json={"text": "x" * (LIMIT + 1)}),
    Bad("NUL in text", "POST", A, 400, "U+0000 (NUL) at position 2 of 3", json={"text": "a\x00b"}),
    Bad("escape character in text", "POST", A, 400, "U+001B at position 5", json={"text": "red \x1b[31m"}),
    Bad("unpaired surrogate (JSON \\ud800)", "POST", A, 400, "unpaired surrogate U+D800",
        content=b'{"text": "ok \\ud800"}', headers=JSON_CT),
    Bad("invalid UTF-8 in the body", "POST", A, 400, "not valid UTF-8 (byte 11",
        content=b'{"text": "\xff\xfe"}', headers=JSON_CT),
    Bad("Latin-1 body", "POST", A, 400, "not valid UTF-8", content='{"text": "café"}'.encode("latin-1"),
        headers=JSON_CT),
    # -- JSON shape ------------------------------------------------------------------------------------------
    Bad("body is not JSON", "POST", A, 422, "not valid JSON", content=b'{"text": ', headers=JSON_CT),
    Bad("body is a JSON array", "POST", A, 422, "must be a JSON object", json=["text"]),
    Bad("body is a JSON string", "POST", A, 422, "must be a JSON object", json="text"),
    Bad("text/plain body", "POST", A, 422, "must be a JSON object", content=b"hello",
        headers={"content-type": "text/plain"}),
    Bad("no body", "POST", A, 422, "the request body is missing"),
    Bad("text missing", "POST", A, 422, "text is required", json={"model": None}),
    Bad("text is a number", "POST", A, 422, "text: Input should be a valid string", json={"text": 12}),
    Bad("text is a list", "POST", A, 422, "text: Input should be a valid string", json={"text": ["a"]}),
    Bad("text is null", "POST", A, 422, "text: Input should be a valid string", json={"text": None}),
    Bad("unknown field", "POST", A, 422, "layer is not a known field", json={"text": TEXT, "layer": 1}),
    Bad("model is a number", "POST", A, 422, "model: Input should be a valid string",
        json={"text": TEXT, "model": 7}),
    # -- model ids -------------------------------------------------------------------------------------------
    Bad("unknown model", "POST", A, 404, "neither in the catalog", json={"text": TEXT, "model": "no such!"}),
    Bad("hub-like id, bad grammar", "POST", A, 404, "neither in the catalog",
        json={"text": TEXT, "model": "org/name-"}),
    Bad("hub model while offline", "POST", A, 503, "offline", json={"text": TEXT, "model": "gpt2"}),
    Bad("relative path escaping", "POST", A, 400, "outside the allowed model directories",
        json={"text": TEXT, "model": "../../etc"}),
    Bad("absolute path outside roots", "POST", A, 400, "outside the allowed model directories",
        json={"text": TEXT, "model": "/etc"}),
    Bad("home directory", "POST", A, 400, "outside the allowed model directories",
        json={"text": TEXT, "model": "~/"}),
    Bad("https URL", "POST", A, 400, "URLs are not accepted",
        json={"text": TEXT, "model": "https://evil.example/m"}),
    Bad("file URL", "POST", A, 400, "URLs are not accepted", json={"text": TEXT, "model": "file:///etc/passwd"}),
    Bad("NUL in model id", "POST", A, 400, "Model id contains the control character U+0000",
        json={"text": TEXT, "model": "gpt2\x00"}),
    Bad("model id of 5,000 characters", "POST", A, 400, "Model id is 5,000 characters long",
        json={"text": TEXT, "model": "m" * 5000}),
    Bad("path component too long", "POST", A, 400, "outside the allowed model directories",
        json={"text": TEXT, "model": "./" + "m" * 300}),
    # -- body size -------------------------------------------------------------------------------------------
    Bad("body over the limit (Content-Length)", "POST", A, 413, f"than the limit of {BODY_LIMIT:,} bytes",
        content=b'{"text": "' + b"x" * 300_000 + b'"}', headers=JSON_CT),
    # -- fill-mask -------------------------------------------------------------------------------------------
    Bad("fill-mask without a mask", "POST", FM, 400, "no mask to fill",
        json={"text": "no mask here", "model": "{bert}"}),
    Bad("fill-mask on a model without MLM head", "POST", FM, 409, "", json={"text": "a [MASK] b"}),
    Bad("fill-mask top_k 0", "POST", FM, 422, "top_k", json={"text": "a [MASK]", "top_k": 0}),
    Bad("fill-mask top_k 101", "POST", FM, 422, "top_k", json={"text": "a [MASK]", "top_k": 101}),
    Bad("fill-mask top_k text", "POST", FM, 422, "top_k", json={"text": "a [MASK]", "top_k": "ten"}),
    Bad("fill-mask NUL", "POST", FM, 400, "U+0000", json={"text": "a [MASK]\x00"}),
    # -- generate --------------------------------------------------------------------------------------------
    Bad("generate with an encoder", "POST", GEN, 409, "causal language model", json={"text": TEXT}),
    Bad("generate max_new_tokens 0", "POST", GEN, 422, "max_new_tokens",
        json={"text": TEXT, "max_new_tokens": 0, "model": "{gpt2}"}),
    Bad("generate max_new_tokens 513", "POST", GEN, 422, "max_new_tokens",
        json={"text": TEXT, "max_new_tokens": 513, "model": "{gpt2}"}),
    Bad("generate unknown mode", "POST", GEN, 422, "mode", json={"text": TEXT, "mode": "beam"}),
    Bad("generate negative seed", "POST", GEN, 422, "seed", json={"text": TEXT, "seed": -1}),
    Bad("generate empty prompt", "POST", GEN, 400, "Text is empty", json={"text": "", "model": "{gpt2}"}),
    Bad("generate prompt fills the context", "POST", GEN, 400, "no room to generate",
        json={"text": "word " * 2000, "model": "{gpt2}"}),
    Bad("GET generate without text", "GET", GEN, 422, "query.text is required"),
    Bad("GET generate control character", "GET", GEN, 400, "U+0007",
        params={"text": "a\x07b", "model": "{gpt2}"}),
    Bad("GET generate text over the limit", "GET", GEN, 400, f"the limit is {LIMIT:,}",
        params={"text": "x" * (LIMIT + 1), "model": "{gpt2}"}),
    # -- attention views -------------------------------------------------------------------------------------
    Bad("tile rows malformed", "GET", TILE, 400, "rows must be a range a:b", params={"rows": "9:3"}),
    Bad("tile cols past the end", "GET", TILE, 400, "cols must be a range a:b", params={"cols": "0:999"}),
    Bad("tile size 1025", "GET", TILE, 422, "query.size", params={"size": 1025}),
    Bad("tile unknown pool", "GET", TILE, 422, "query.pool", params={"pool": "median"}),
    Bad("tile head out of range", "GET", TILE, 400, "Head 12 is out", params={"layer": 0, "head": 12}),
    Bad("row past the end", "GET", ROW, 400, "row 999 is out of range", params={"row": 999}),
    Bad("row missing", "GET", ROW, 422, "query.row is required"),
    Bad("row per head without a layer", "GET", ROW, 400, "give a layer", params={"row": 0, "per_head": 1}),
    Bad("top keys rows reversed", "GET", TOP, 400, "rows must be a range a:b", params={"rows": "5:2"}),
    Bad("top keys k too big", "GET", TOP, 400, "k must be between 1 and", params={"rows": "0:2", "k": 257}),
    Bad("qk map head out of range", "GET", "/api/v1/analyses/{key}/qk-map", 400, "head",
        params={"layer": 0, "head": 99}),
    Bad("neuron keys not numbers", "GET", "/api/v1/analyses/{key}/neuron", 400, "comma-separated",
        params={"layer": 0, "head": 0, "query": 1, "keys": "a,b"}),
    Bad("layer out of range", "GET", ATT, 400, "Layer 6 is out of range", params={"layer": 6}),
    Bad("head out of range", "GET", ATT, 400, "Head 12 is out of range", params={"layer": 0, "head": 12}),
    Bad("negative layer", "GET", ATT, 422, "query.layer", params={"layer": -1}),
    Bad("huge layer", "GET", ATT, 422, "query.layer", params={"layer": 10**30}),
    Bad("layer not a number", "GET", ATT, 422, "query.layer", params={"layer": "one"}),
    Bad("layer missing (agg=none)", "GET", ATT, 400, "layer is required"),
    Bad("unknown aggregate", "GET", ATT, 422, "query.agg", params={"layer": 0, "agg": "max"}),
    Bad("averaged axis picked", "GET", ATT, 400, "", params={"layer": 0, "head": 1, "agg": "mean_heads"}),
    Bad("boolean not a boolean", "GET", ATT, 422, "hide_special",
        params={"layer": 0, "hide_special": "perhaps"}),
    Bad("unknown analysis key", "GET", "/api/v1/analyses/0123abcd/attention", 404, "unknown or has expired",
        params={"layer": 0}),
    Bad("key with markup", "GET", "/api/v1/analyses/<b>x<b>/attention", 404, "unknown or has expired",
        params={"layer": 0}),
    Bad("thumbnail size 3", "GET", THUMB, 422, "size", params={"size": 3}),
    Bad("thumbnail size 129", "GET", THUMB, 422, "size", params={"size": 129}),
    Bad("metadata of unknown key", "GET", "/api/v1/analyses/feedface", 404, "unknown or has expired"),
    # -- exports ---------------------------------------------------------------------------------------------
    Bad("export format exe", "GET", EXPORT, 422, "format", params={"format": "exe"}),
    Bad("export layers with letters", "GET", EXPORT, 422, "layers", params={"format": "html", "layers": "a"}),
    Bad("export layers out of range", "GET", EXPORT, 400, "", params={"format": "html", "layers": "0,99"}),
    Bad("export figure layer out of range", "GET", EXPORT, 400, "", params={"format": "png", "layer": 99}),
    Bad("export unknown scale", "GET", EXPORT, 422, "scale", params={"format": "png", "scale": "cubic"}),
    # -- aggregates and comparisons --------------------------------------------------------------------------
    Bad("rollout layer out of range", "GET", "/api/v1/analyses/{key}/rollout", 400, "out of range",
        params={"layer": 6}),
    Bad("flow layer out of range", "GET", "/api/v1/analyses/{key}/flow", 400, "out of range",
        params={"layer": 6}),
    Bad("head-stats of unknown key", "GET", "/api/v1/analyses/feedface/head-stats", 404, "unknown"),
    Bad("flow limits of unknown key", "GET", "/api/v1/analyses/feedface/flow-limits", 404, "unknown"),
    Bad("compare without key_b", "GET", "/api/v1/compare", 422, "key_b",
        params={"mode": "sentences", "key_a": "{key}"}),
    Bad("compare unknown mode", "GET", "/api/v1/compare", 422, "mode",
        params={"mode": "both", "key_a": "{key}", "key_b": "{key}"}),
    Bad("compare unknown keys", "GET", "/api/v1/compare", 404, "unknown",
        params={"mode": "sentences", "key_a": "feedface", "key_b": "{key}"}),
    Bad("compare layer out of range", "GET", "/api/v1/compare", 400, "out of range",
        params={"mode": "sentences", "key_a": "{key}", "key_b": "{key}", "layer": 6}),
    # -- uploads ---------------------------------------------------------------------------------------------
    Bad("open saved: JSON instead of a file", "POST", "/api/v1/analyses", 415, "multipart/form-data",
        json={"text": TEXT}),
    Bad("open saved: no file field", "POST", "/api/v1/analyses", 400, "no file in the field",
        files={"other": ("a.npz", b"x", "application/octet-stream")}),
    Bad("open saved: not an npz", "POST", "/api/v1/analyses", 400, "",
        files={"file": ("a.npz", b"<script>alert(1)</script>", "application/octet-stream")}),
    Bad("open saved: empty file", "POST", "/api/v1/analyses", 400, "empty",
        files={"file": ("a.npz", b"", "application/octet-stream")}),
    Bad("corpus summary: nothing sent", "POST", "/api/v1/corpus/summary", 400, "No file was sent"),
    Bad("corpus summary: not Parquet", "POST", "/api/v1/corpus/summary", 400, "not a readable Parquet",
        content=b"PAR1 not really", headers={"content-type": "application/octet-stream"}),
    Bad("corpus extremes: nothing sent", "POST", "/api/v1/corpus/extremes", 400, "No file was sent"),
    Bad("corpus qk map: nothing sent", "POST", "/api/v1/corpus/qk-map", 400, "No file was sent"),
    Bad("corpus qk map: not Parquet", "POST", "/api/v1/corpus/qk-map", 400, "it is not a Parquet file",
        content=b"PAR1 no", headers={"content-type": "application/octet-stream"}),
    Bad("corpus extremes: not Parquet", "POST", "/api/v1/corpus/extremes", 400, "it is not a Parquet file",
        content=b"PAR1 not really", headers={"content-type": "application/octet-stream"}),
]
# fmt: on


@pytest.fixture(scope="module")
def client(tiny_models):
    root = next(iter(tiny_models.values())).parent
    app = create_app(Settings(allowed_roots=(root,), offline=True, model_cache_size=8, max_tokens=MAX_TOKENS))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def names(client, tiny_models):
    response = client.post(A, json={"text": TEXT})
    assert response.status_code == 200, response.text
    return {"key": response.json()["key"], "gpt2": str(tiny_models["gpt2"]), "bert": str(tiny_models["bert"])}


def _fill(value, names):
    if isinstance(value, str):
        return value.format(**names) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def send(client, bad: Bad, names: dict):
    kwargs = {"params": _fill(bad.params, names), "headers": bad.headers}
    if bad.json is not None:
        kwargs["json"] = _fill(bad.json, names)
    if bad.content is not None:
        kwargs["content"] = bad.content
    if bad.files is not None:
        kwargs["files"] = bad.files
    return client.request(bad.method, bad.path.format(**names), **kwargs)


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.what for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_4xx(client, names, bad):
    response = send(client, bad, names)
    assert response.status_code == bad.status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 10, detail
    assert bad.fragment in detail
    assert "Traceback" not in detail and 'File "' not in detail
    assert response.headers["content-security-policy"] == CSP


def test_every_api_route_is_exercised(client):
    """A route added later must get its own bad inputs above (GET /models takes no input)."""
    tried = {("GET", "/api/v1/models")} | {
        (b.method, b.path.replace("feedface", "{key}").replace("0123abcd", "{key}")) for b in BAD_INPUTS
    }
    routes = {
        (method.upper(), path)
        for path, ops in client.get("/openapi.json").json()["paths"].items()
        for method in ops
    }
    assert routes - tried == set()


def test_body_without_content_length_is_counted(client):
    """Chunked bodies have no Content-Length: the limit is enforced on the bytes as they arrive."""
    response = client.post(A, content=_chunks(300_000), headers=JSON_CT)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["detail"] == f"Request body is larger than the limit of {BODY_LIMIT:,} bytes."
    assert response.headers["content-security-policy"] == CSP
    small = client.post(A, content=_chunks(10_000), headers=JSON_CT)
    assert small.status_code == 200, small.text


def test_upload_without_content_length_is_counted(tiny_models):
    app = create_app(Settings(offline=True, max_upload_bytes=50_000))

    def body():
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.npz"\r\n\r\n'
        for _ in range(10):
            yield b"\0" * 10_000
        yield b"\r\n--xyz--\r\n"

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.post(
            "/api/v1/analyses", content=body(), headers={"content-type": "multipart/form-data; boundary=xyz"}
        )
    assert response.status_code == 413 and "50,000 bytes" in response.json()["detail"]


async def _asgi(app, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> tuple[int, dict]:
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send_(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": A,
        "raw_path": A.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000),
    }
    await app(scope, receive, send_)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {**{k.decode(): v.decode() for k, v in start["headers"]}, "body": body_out}


@pytest.mark.parametrize(
    ("length", "status", "fragment"),
    [
        ("abc", 400, "not a whole number"),
        ("-5", 400, "not a whole number"),
        ("999999999999", 413, "larger than the limit"),
    ],
)
def test_content_length_that_lies(client, length, status, fragment):
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    headers = [(b"content-type", b"application/json"), (b"content-length", length.encode())]
    # a fresh thread: the browser tier's Playwright may hold an event loop in this one
    with ThreadPoolExecutor(1) as pool:
        got, out = pool.submit(anyio.run, _asgi, client.app, headers, b'{"text": "hi"}').result()
    assert got == status and fragment in json.loads(out["body"])["detail"]
    assert out["content-security-policy"] == CSP


def test_unexpected_error_is_a_generic_500_logged_server_side(client, monkeypatch, caplog):
    def broken():
        raise RuntimeError("secret detail at /home/someone/model")

    monkeypatch.setattr(client.app.state.service, "models", broken)
    with caplog.at_level(logging.ERROR, logger="visualizeai.web.app"):
        response = client.get("/api/v1/models")
    assert response.status_code == 500
    assert response.json() == {"detail": INTERNAL_ERROR}
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["content-security-policy"] == CSP
    assert "unexpected error on GET /api/v1/models" in caplog.text
    assert "secret detail" in caplog.text  # the traceback is in the server's log, not the response


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/analysis?text=hi",
        "/corpus",
        "/openapi.json",
        "/api/v1/models",
        "/static/js/lib/api.js",
        "/static/css/app.css",
        "/static/nope.js",
        "/static/../pyproject.toml",
        "/no-such-page",
    ],
)
def test_every_response_has_the_security_headers(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404), (path, response.status_code)
    assert response.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "object-src 'none'" in CSP
    assert response.headers["x-content-type-options"] == "nosniff"


def test_method_not_allowed_has_the_headers(client):
    response = client.delete("/api/v1/models")
    assert response.status_code == 405 and response.headers["content-security-policy"] == CSP


def test_no_debug_mode(client):
    assert client.app.debug is False
    assert client.app.docs_url is None and client.app.redoc_url is None


def test_pages_escape_what_they_echo(client):
    hostile = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
    page = client.get("/analysis", params={"text": hostile, "model": hostile})
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "<script>alert(1)" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


# ---- memory ------------------------------------------------------------------------------------------------


def test_result_cache_stays_within_its_byte_bound():
    """Five analyses of one size (MiniLM, 15 tokens: 6 × 12 × 15² float32 weights plus the recorded queries
    and keys) into a cache of three and a half: the three most recent stay, the oldest answer "expired"
    (404 on the web)."""
    text = "Sentence number {} is here to fill the cache with its attention."
    probe = Service(Settings(offline=True))
    probe.analyze(text.format(0))
    size = probe.results.nbytes
    assert size >= 64_800  # the weights alone
    bound = int(3.5 * size)
    service = Service(Settings(offline=True, result_cache_bytes=bound, result_cache_size=32))
    keys = [service.analyze(text.format(i)).key for i in range(5)]
    assert service.result(keys[-1]).attentions.nbytes == 64_800
    assert len(service.results) == 3 and service.results.nbytes <= bound
    with pytest.raises(ResultExpired, match="expired"):
        service.result(keys[0])


# ---- serve: defaults ---------------------------------------------------------------------------------------


@pytest.fixture
def fake_uvicorn(monkeypatch):
    """The configs of the uvicorn servers `serve` would run (web/server.py), none of them started."""
    import uvicorn

    configs = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets=None: configs.append(server.config))
    return configs


def test_serve_binds_localhost_by_default_without_warning(fake_uvicorn, capsys):
    assert cli.main(["serve", "--offline"]) == 0
    (config,) = fake_uvicorn
    assert config.host == "127.0.0.1" and config.port == 5000
    assert not config.reload and config.workers == 1 and config.app.debug is False
    assert config.limit_concurrency == Settings().max_connections + 1  # the connection cap is on
    assert "warning" not in capsys.readouterr().err


def test_serve_on_all_interfaces_warns(fake_uvicorn, capsys):
    assert cli.main(["serve", "--offline", "--host", "0.0.0.0", "--port", "5055"]) == 0
    (config,) = fake_uvicorn
    assert config.host == "0.0.0.0" and config.port == 5055
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0" in err and "anyone who can reach this machine" in err


# ---- the closing table -------------------------------------------------------------------------------------


def main() -> None:  # pragma: no cover (a report for people: python tests/web/test_hardening.py)
    import os
    import sys

    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tempfile

    from tiny_models import build_tiny_models

    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_models(Path(tmp))
        app = create_app(Settings(allowed_roots=(Path(tmp),), offline=True, model_cache_size=8))
        with TestClient(app, raise_server_exceptions=False) as c:
            key = c.post(A, json={"text": TEXT}).json()["key"]
            names = {"key": key, "gpt2": str(tiny["gpt2"]), "bert": str(tiny["bert"])}
            print("| bad input | request | status | detail |\n|---|---|---|---|")
            for bad in BAD_INPUTS:
                response = send(c, bad, names)
                detail = response.json().get("detail", "")
                detail = detail.replace(names["gpt2"], "<tiny gpt2>").replace(names["bert"], "<tiny bert>")
                where = f"{bad.method} {bad.path.replace('/api/v1', '')}"
                print(f"| {bad.what} | `{where}` | {response.status_code} | {detail.replace('|', '/')} |")


if __name__ == "__main__":  # pragma: no cover
    main()
