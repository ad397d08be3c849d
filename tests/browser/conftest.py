"""Browser tier: a real uvicorn server on a free port and Debian Chromium driven by Playwright."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import uvicorn
from ports import free_port
from tiny_models import widen_context

from visualizeai.config import Settings
from visualizeai.web import create_app

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def live_server(tiny_models):
    """Base URL of the app (embedded MiniLM + tiny models allowed by path), served in a thread."""
    root = next(iter(tiny_models.values())).parent
    app = create_app(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(browser):
    """A fresh page that records console errors, page errors and dialogs (none may occur)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))

    def on_dialog(dialog):
        page.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """``screenshot(page, name)`` saves a full-page PNG under build/screenshots for a person to look at."""

    def take(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# ---- a long input: the tiny Qwen2 with its context widened (the long views' tests) -------------------------

LONG_N = 4096  # the widened context
LONG_TEXT = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat. " * 110
LONG_TIMEOUT = 90_000


@pytest.fixture(scope="session")
def long_qwen2(tiny_models):
    """The tiny Qwen2 beside the other tiny models (inside the server's allowed root), widened to LONG_N."""
    return widen_context(tiny_models["qwen2"], tiny_models["qwen2"].parent / "qwen2_4k", LONG_N)


@pytest.fixture(scope="session")
def long_analysis(live_server, browser, long_qwen2):
    """The analysis of LONG_TEXT (fewer than LONG_N tokens: all of it kept), run once through the API."""
    context = browser.new_context()
    response = context.request.post(
        f"{live_server}/api/v1/analyze",
        data={"model": str(long_qwen2), "text": LONG_TEXT},
        timeout=LONG_TIMEOUT,
    )
    assert response.ok, response.text()
    meta = response.json()
    context.close()
    assert 2048 < meta["n"] < LONG_N and meta["truncation"]["dropped_tokens"] == 0
    return meta
