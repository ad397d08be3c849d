"""A request that names no model, an empty one or a blank one gets the default model alike."""

from __future__ import annotations

import pytest

from visualizeai.config import Settings
from visualizeai.service import Service


@pytest.mark.parametrize("name", [None, "", "   ", " \t\n"])
def test_no_empty_or_blank_model_name_means_the_default(name):
    service = Service(Settings(offline=True))
    assert service.resolve(name).id == "all-MiniLM-L6-v2" == service.settings.default_model
