"""Concurrent requests against a live uvicorn server: shared models stay correct, load once, and a slow
request does not hold up the others."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest
import uvicorn

from visualizeai.config import Settings
from visualizeai.models import inference
from visualizeai.models.catalog import ModelSpec
from visualizeai.models.loading import ModelRegistry
from visualizeai.service import Service
from visualizeai.web import create_app

pytestmark = pytest.mark.models

TEXTS = [
    "The animal didn't cross the street because it was too tired.",
    "I think, therefore I am.",
    "Colourless green ideas sleep furiously; " * 3,
    "word " * 600,  # past MiniLM's 512 tokens: truncation is counted on a tokenizer that others use at once
]


@contextmanager
def live_server(settings: Settings):
    """(base host, port, app) of the app served by uvicorn in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.05)
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
    """(status, body, seconds) of one request on its own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, payload, {"Content-Type": "application/json"} if payload else {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, time.perf_counter() - start


@pytest.fixture(scope="module")
def reference():
    """Each text analysed alone, one after the other, by a service of its own."""
    service = Service(Settings(offline=True))
    return {text: service.analyze(text).result for text in TEXTS}


def test_twenty_concurrent_analyses_are_right_and_load_the_model_once(reference):
    with live_server(Settings(offline=True)) as (port, app):
        registry = app.state.service.registry
        assert registry.load_count == 0 and registry.loaded_ids() == []
        texts = [TEXTS[i % len(TEXTS)] for i in range(20)]  # five requests for each text, interleaved
        with ThreadPoolExecutor(max_workers=20) as pool:
            replies = list(pool.map(lambda t: request(port, "POST", "/api/v1/analyze", {"text": t}), texts))
        assert [status for status, _, _ in replies] == [200] * 20, [r[1][:200] for r in replies]
        assert registry.load_count == 1  # twenty requests raced for an unloaded model

        metas = [json.loads(body) for _, body, _ in replies]
        by_text: dict[str, list[dict]] = {}
        for text, meta in zip(texts, metas, strict=True):
            by_text.setdefault(text, []).append(meta)
        for text, group in by_text.items():
            same = [{k: v for k, v in m.items() if k not in ("cached", "timings")} for m in group]
            assert all(m == same[0] for m in same), "identical input, different answers"
            ref = reference[text]
            meta = group[0]
            assert meta["n"] == ref.n and meta["truncation"]["dropped_tokens"] == ref.dropped_tokens
            assert [t["raw"] for t in meta["tokens"]] == list(ref.tokens)
            result = app.state.service.result(meta["key"])
            np.testing.assert_allclose(result.attentions, ref.attentions, rtol=0, atol=1e-6)
        assert by_text[TEXTS[3]][0]["truncation"]["dropped_tokens"] == 90
        # identical texts ran the model once: the others waited for that result instead of recomputing
        assert sum(not m["cached"] for m in metas) == len(TEXTS)


def test_concurrent_truncation_is_counted_right():
    """Sixteen different over-long texts at once on one tokenizer: each is truncated to 512 tokens and its
    dropped tokens counted right. (Without LoadedModel.tokenizer_lock the tokenizer's shared truncation
    state leaks between calls: counts come out wrong, or a 533-token input reaches the model and fails.)"""
    service = Service(Settings(offline=True, result_cache_size=64))
    service.model(None)
    for round_ in range(2):
        words = [520 + 16 * round_ + i for i in range(16)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda w: service.analyze("word " * w).result, words))
        assert [(r.n, r.dropped_tokens) for r in results] == [(512, w + 2 - 512) for w in words]


def test_a_model_is_loaded_once_when_requests_race():
    calls = []

    def slow_loader(spec, **options):
        calls.append(spec.id)
        time.sleep(0.3)
        return object()

    registry = ModelRegistry(2, loader=slow_loader)
    spec = ModelSpec(id="m", source="hub", location="m")
    with ThreadPoolExecutor(max_workers=10) as pool:
        loaded = list(pool.map(lambda _: registry.get(spec), range(10)))
    assert calls == ["m"] and registry.load_count == 1
    assert all(item is loaded[0] for item in loaded)


def test_a_slow_analysis_does_not_block_the_others(monkeypatch):
    """While one analysis is stuck in its forward pass, the model list, the pages, a cached analysis and its
    attention all answer at once."""
    real_forward = inference.forward
    in_flight, release = threading.Event(), threading.Event()
    slow_text = "slow " * 28  # 30 tokens with [CLS] and [SEP], unlike any other text here

    def slow_forward(loaded, encoded):
        if len(encoded.ids) == 30:  # only the slow text waits; others pass straight through
            in_flight.set()
            release.wait(timeout=30)
        return real_forward(loaded, encoded)

    with live_server(Settings(offline=True)) as (port, _app):
        status, body, _ = request(port, "POST", "/api/v1/analyze", {"text": TEXTS[1]})
        key = json.loads(body)["key"]
        monkeypatch.setattr(inference, "forward", slow_forward)
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(request, port, "POST", "/api/v1/analyze", {"text": slow_text})
            assert in_flight.wait(timeout=30), "the slow request never reached the model"
            cheap = {
                "models": request(port, "GET", "/api/v1/models"),
                "index page": request(port, "GET", "/"),
                "analysis page": request(port, "GET", "/analysis?text=hi"),
                "cached analysis": request(port, "POST", "/api/v1/analyze", {"text": TEXTS[1]}),
                "attention": request(port, "GET", f"/api/v1/analyses/{key}/attention?layer=0&head=0"),
            }
            still_running = not slow.done()
            release.set()
            status, body, seconds = slow.result(timeout=60)
        assert status == 200 and json.loads(body)["n"] == 30
    assert still_running, "the slow request should still be in its forward pass"
    for name, (status, _, seconds) in cheap.items():
        assert status == 200, name
        assert seconds < 1.0, f"{name} took {seconds:.2f} s while a slow analysis was running"
