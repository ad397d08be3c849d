"""Pure-numpy analysis of attention: arrays and tokens in, arrays out; imports neither torch nor web code."""

from visualizeai.analysis.compare import (
    WordAlignment,
    align_tokens,
    align_words,
    aligned_difference,
    difference,
    pool_to_words,
)
from visualizeai.analysis.head_stats import STAT_DESCRIPTIONS, STAT_NAMES, head_statistics, punctuation_mask
from visualizeai.analysis.result import MODEL_KINDS, AnalysisResult
from visualizeai.analysis.rollout import (
    FLOW_MAX_TOKENS,
    FlowTooLarge,
    attention_flow,
    attention_flow_per_layer,
    attention_rollout,
    residual_attention,
)
from visualizeai.analysis.transforms import (
    MERGE_RULE,
    downsample,
    hide_tokens,
    mean_over_heads,
    mean_over_layers,
    merge_subwords,
    pool_groups,
    quantize_thumbnails,
    renormalize_rows,
    select,
    to_float16_bytes,
    word_groups,
)

__all__ = [
    "FLOW_MAX_TOKENS",
    "MERGE_RULE",
    "MODEL_KINDS",
    "STAT_DESCRIPTIONS",
    "STAT_NAMES",
    "AnalysisResult",
    "FlowTooLarge",
    "WordAlignment",
    "align_tokens",
    "align_words",
    "aligned_difference",
    "attention_flow",
    "attention_flow_per_layer",
    "difference",
    "downsample",
    "head_statistics",
    "hide_tokens",
    "mean_over_heads",
    "mean_over_layers",
    "merge_subwords",
    "pool_groups",
    "pool_to_words",
    "punctuation_mask",
    "quantize_thumbnails",
    "renormalize_rows",
    "residual_attention",
    "attention_rollout",
    "select",
    "to_float16_bytes",
    "word_groups",
]
