"""Pydantic models: the wire contract of the JSON API (see docs/wire-format.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelInfo(BaseModel):
    id: str
    display_name: str
    kind: str | None = Field(description="masked-lm, causal-lm or encoder; null until the checkpoint is read")
    source: str = Field(description="embedded, hub or local")
    availability: str = Field(description="embedded, local, cached, loaded, download or unavailable")
    reason: str | None = Field(None, description="why a model is unavailable or needs a download")
    notes: str = ""
    attention_mode: Literal["captured", "dense"] | None = Field(
        None,
        description="how a loaded model's attention is read: 'captured' (queries and keys recorded, weights "
        "recomputed on demand) or 'dense' (eager weights kept); null until the model is loaded",
    )
    attention_reason: str | None = Field(None, description="why a loaded model reads attention densely")


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="Text to analyse; truncated to the model's maximum length, never silently.")
    model: str | None = Field(
        None, description="Catalog id, hub id or allowed local directory; null = default."
    )


class TokenInfo(BaseModel):
    index: int
    raw: str = Field(description="vocabulary form, with subword markers (##, Ġ, ▁)")
    display: str = Field(description="the characters of the text it covers, or the special token")
    special: bool
    start: int = Field(description="character offset in the text (0 for special tokens)")
    end: int
    word_id: int | None
    id: int | None = Field(None, description="vocabulary id (null when not known: saved files)")
    readable: str | None = Field(
        None,
        description="the vocabulary form decoded for people: what the model saw, which can differ from "
        "`display` ([UNK], stripped accents); byte-level bytes that do not complete a character read <0xE2>",
    )
    unknown: bool = Field(False, description="the tokenizer's unknown token ([UNK], <unk>)")


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


class CandidateInfo(BaseModel):
    token: str = Field(description="the token decoded on its own (like pipeline('fill-mask')'s token_str)")
    token_id: int
    readable: str = Field("", description="the vocabulary form decoded for people (<0xE2> for partial bytes)")
    score: float = Field(description="softmax probability over the whole vocabulary")


class FocusKey(BaseModel):
    index: int = Field(description="key position")
    weight: float = Field(description="attention the query gives this key, averaged over the layer's heads")


class PredictionInfo(BaseModel):
    position: int = Field(description="token position: the masked token, or the last token for kind 'next'")
    kind: str = Field(description="'mask' (a masked position) or 'next' (causal LM: the token after it)")
    candidates: list[CandidateInfo] = Field(description="top-k, highest score first")
    focus: list[list[FocusKey]] = Field(
        description="per layer, the keys this position attends to most (head-averaged), strongest first"
    )


class AnalysisBrief(BaseModel):
    """The answer of ``POST /analyze?brief=true``: what a client needs to open the analysis by key, without
    the token table, text and predictions (``GET /analyses/{key}`` sends those)."""

    key: str = Field(description="result-cache key: GET /analyses/{key} for the metadata, tiles by key")
    model: ModelRef
    n: int
    layers: int
    heads: int
    truncation: Truncation
    cached: bool
    timings: Timings
    attention_mode: Literal["captured", "dense"]
    attention_bytes: int
    device_bytes: int


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
    predictions: list[PredictionInfo] | None = Field(
        None,
        description="LM-head top-k from the same forward pass: one per [MASK] of a masked LM with a "
        "trained head, or the next token of a causal LM; null when none were made",
    )
    predictions_note: str | None = Field(None, description="why a mask in the text got no predictions")
    attention_mode: Literal["captured", "dense"] = Field(
        description="'captured': weights recomputed on demand from recorded queries and keys; 'dense': "
        "float32 [layers, heads, n, n] kept"
    )
    attention_bytes: int = Field(description="bytes the attention of this analysis holds (host and device)")
    device_bytes: int = Field(description="of attention_bytes, the bytes on an accelerator (0 on the CPU)")


class KeyWeight(BaseModel):
    index: int = Field(description="key position")
    weight: float = Field(description="the mean over the query rows of the weight they give this key")


class TopKeys(BaseModel):
    rows: tuple[int, int] = Field(description="the query rows a, b (exclusive) averaged")
    layer: int | None = Field(description="null: averaged over the layers")
    head: int | None = Field(description="null: averaged over the heads")
    n: int = Field(description="tokens in the analysis (key positions 0 to n − 1)")
    keys: list[KeyWeight] = Field(description="strongest first; ties: lower position first")


class ErrorResponse(BaseModel):
    detail: str


class FillMaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="Text with one or more [MASK] (or the model's own mask token, <mask>).")
    model: str | None = Field(None, description="Catalog id, hub id or allowed local path; null: default.")
    top_k: int = Field(10, ge=1, le=100, description="Predictions per mask.")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The prompt.")
    model: str | None = Field(None, description="A causal LM: catalog id, hub id or allowed local directory.")
    max_new_tokens: int = Field(20, ge=1, le=512, description="Most tokens to generate (fewer at the end).")
    mode: Literal["greedy", "sample"] = Field("greedy", description="argmax, or sampling from the top 50")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed for mode 'sample' (same seed, same text).")


# ---- aggregates and comparisons (web/api_aggregates.py) ----------------------------------------------------


class HeadStats(BaseModel):
    layers: int
    heads: int
    names: list[str] = Field(description="statistic names, in display order")
    descriptions: dict[str, str] = Field(description="what each statistic measures, for people")
    values: dict[str, list[list[float]]] = Field(description="per statistic, [layers][heads]")


class FlowLimit(BaseModel):
    layer: int
    allowed: bool
    max_tokens: int = Field(description="the longest input (tokens) for which flow at this layer is computed")
    reason: str | None = Field(None, description="why flow at this layer is refused: the bound, for people")


class FlowLimits(BaseModel):
    max_tokens: int = Field(description="flow of every token is allowed up to about this many tokens …")
    reference_layers: int = Field(description="… through this many layers; fewer layers allow a few more")
    layers: list[FlowLimit]


class Float16Array(BaseModel):
    shape: list[int]
    dtype: Literal["float16"] = "float16"
    data: str = Field(description="base64 of little-endian IEEE float16, C order")


class CompareSide(BaseModel):
    key: str = Field(description="the analysis (result-cache key) this side shows")
    model: str
    layer: int
    head: int | None = Field(description="null: the layer's heads averaged")
    labels: list[str] = Field(description="per row (= column) of matrix: a token, or a word in mode models")
    special: list[bool]
    tokens: list[list[int]] = Field(description="token positions of the analysis that each row stands for")
    matrix: Float16Array = Field(description="[m, m], rows are queries")


class CompareResponse(BaseModel):
    mode: Literal["sentences", "models"]
    a: CompareSide
    b: CompareSide
    labels: list[str] = Field(description="rows (= columns) of the difference")
    pairs: list[tuple[int, int]] = Field(description="(row of a, row of b) of each row of the difference")
    difference: Float16Array = Field(description="[p, p]: a − b on the paired rows and columns")
