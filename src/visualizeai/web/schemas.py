"""Pydantic models: the wire contract of the JSON API (see docs/wire-format.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelInfo(BaseModel):
    id: str
    display_name: str
    kind: str | None = Field(description="masked-lm, causal-lm or encoder; null until the checkpoint is read")
    source: str = Field(description="embedded, hub or local")
    availability: str = Field(description="embedded, local, cached, loaded, download or unavailable")
    reason: str | None = Field(None, description="why a model is unavailable or needs a download")
    notes: str = ""


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="Text to analyse; truncated to the model's maximum length, never silently.")
    model: str | None = Field(None, description="Catalog id, hub id or allowed local directory; null = default.")


class TokenInfo(BaseModel):
    index: int
    raw: str = Field(description="vocabulary form, with subword markers (##, Ġ, ▁)")
    display: str = Field(description="the characters of the text it covers, or the special token")
    special: bool
    start: int = Field(description="character offset in the text (0 for special tokens)")
    end: int
    word_id: int | None


class ModelRef(BaseModel):
    id: str
    revision: str | None
    kind: str
    display_name: str


class Truncation(BaseModel):
    dropped_tokens: int = Field(description="tokens beyond the model's maximum that were not analysed")
    max_length: int


class Timings(BaseModel):
    total_ms: float


class AnalysisMeta(BaseModel):
    key: str = Field(description="result-cache key for the binary attention endpoints")
    model: ModelRef
    text: str
    n: int
    layers: int
    heads: int
    tokens: list[TokenInfo]
    truncation: Truncation
    cached: bool
    timings: Timings


class ErrorResponse(BaseModel):
    detail: str
