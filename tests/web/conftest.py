"""Fixtures shared by the API tests: a TestClient on the embedded model and one analysis of the module's TEXT.

A test module that needs another app (tiny models, other settings) defines its own ``client``; ``meta`` then
analyses ``TEXT`` with that client.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from visualizeai.config import Settings
from visualizeai.web import create_app


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(offline=True))) as c:
        yield c


@pytest.fixture(scope="module")
def meta(client, request):
    """The analysis of the test module's ``TEXT`` (POST /api/v1/analyze), as JSON."""
    response = client.post("/api/v1/analyze", json={"text": request.module.TEXT})
    assert response.status_code == 200, response.text
    return response.json()
