"""Analysis results as files: ``.npz`` (arrays) and ``.json`` (documented schema)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from visualizeai.analysis.result import AnalysisResult
from visualizeai.errors import InputError

SCHEMA_VERSION = 1


def arrays(result: AnalysisResult) -> dict[str, np.ndarray]:
    """Everything numeric of a result, as the arrays stored in ``.npz``."""
    return {
        "attentions": result.attentions.astype(np.float32),  # [layers, heads, n, n]
        "tokens": np.array(result.tokens, dtype=np.str_),
        "display_tokens": np.array(result.display_tokens, dtype=np.str_),
        "special_mask": result.special_mask.astype(bool),
        "offsets": result.offsets.astype(np.int32),
        "word_ids": result.word_ids.astype(np.int32),
    }


def summary(result: AnalysisResult) -> dict:
    """JSON-ready metadata of a result (no matrices)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "model": result.model_id,
        "revision": result.revision,
        "kind": result.model_kind,
        "text": result.text,
        "shape": list(result.attentions.shape),
        "tokens": result.tokens,
        "display_tokens": result.display_tokens,
        "special_mask": result.special_mask.tolist(),
        "offsets": result.offsets.tolist(),
        "word_ids": result.word_ids.tolist(),
        "dropped_tokens": result.dropped_tokens,
        "max_length": result.max_length,
    }


def write(result: AnalysisResult, path: Path) -> None:
    path = Path(path)
    if path.suffix == ".npz":
        meta = {k: v for k, v in summary(result).items() if k not in {"tokens", "display_tokens"}}
        np.savez_compressed(path, **arrays(result), meta=np.array(json.dumps(meta)))
    elif path.suffix == ".json":
        doc = summary(result) | {"attentions": result.attentions.tolist()}
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    else:
        raise InputError(f"Unknown output format {path.suffix!r}: use .npz or .json.")
