"""An ``AnalysisResult`` around any attention store, for tests that need no model or tokenizer."""

from __future__ import annotations

import numpy as np

from visualizeai.analysis.result import AnalysisResult
from visualizeai.attention.store import AttentionStore


def result_over(store: AttentionStore, model_id: str = "m", text: str = "x") -> AnalysisResult:
    """A result of ``store.n`` tokens "x" of an encoder named ``model_id``, no specials, no words."""
    n = store.n
    return AnalysisResult(
        model_id=model_id,
        revision=None,
        model_kind="encoder",
        text=text,
        tokens=["x"] * n,
        display_tokens=["x"] * n,
        special_mask=np.zeros(n, dtype=bool),
        offsets=np.zeros((n, 2), dtype=np.int32),
        word_ids=np.full(n, -1, dtype=np.int32),
        attention=store,
        dropped_tokens=0,
        max_length=n,
    )
