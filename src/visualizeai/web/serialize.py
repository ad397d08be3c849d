"""The one place where results turn into wire payloads (JSON models and binary buffers)."""

from __future__ import annotations

import numpy as np

from visualizeai.analysis.result import AnalysisResult
from visualizeai.analysis.transforms import quantize_thumbnails
from visualizeai.service import Analysis, ModelStatus
from visualizeai.web.schemas import AnalysisMeta, ModelInfo, ModelRef, Timings, TokenInfo, Truncation


def model_info(status: ModelStatus) -> ModelInfo:
    spec = status.spec
    return ModelInfo(
        id=spec.id, display_name=spec.label, kind=spec.kind, source=spec.source,
        availability=status.availability, reason=status.reason, notes=spec.notes,
    )


def tokens(result: AnalysisResult) -> list[TokenInfo]:
    return [
        TokenInfo(
            index=i, raw=result.tokens[i], display=result.display_tokens[i],
            special=bool(result.special_mask[i]), start=int(result.offsets[i, 0]),
            end=int(result.offsets[i, 1]), word_id=None if result.word_ids[i] < 0 else int(result.word_ids[i]),
        )
        for i in range(result.n)
    ]


def analysis_meta(analysis: Analysis, display_name: str) -> AnalysisMeta:
    r = analysis.result
    return AnalysisMeta(
        key=analysis.key,
        model=ModelRef(id=r.model_id, revision=r.revision, kind=r.model_kind, display_name=display_name),
        text=r.text, n=r.n, layers=r.layers, heads=r.heads, tokens=tokens(r),
        truncation=Truncation(dropped_tokens=r.dropped_tokens, max_length=r.max_length),
        cached=analysis.cached, timings=Timings(total_ms=round(analysis.total_ms, 3)),
    )


def float16_payload(matrix: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """Little-endian float16 bytes, C order, and the headers that repeat the shape."""
    data = np.ascontiguousarray(matrix, dtype="<f2")
    return data.tobytes(), {"X-Shape": ",".join(map(str, data.shape)), "X-Dtype": "float16"}


def thumbnails_payload(result: AnalysisResult, size: int) -> tuple[bytes, dict[str, str]]:
    thumbs = quantize_thumbnails(result.attentions, size)  # uint8 [layers, heads, s, s]
    return thumbs.tobytes(), {"X-Shape": ",".join(map(str, thumbs.shape)), "X-Dtype": "uint8"}
