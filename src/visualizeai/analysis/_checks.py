"""Shape checks shared by the analysis modules: each failure is a ValueError that names the mismatch."""

from __future__ import annotations

import numpy as np

ATTENTION_SHAPE_ERROR = "{name} must have shape [layers, heads, n, n] with n >= 1; got shape {shape}"
SQUARE_SHAPE_ERROR = "{name} must have shape [..., n, n] (last two axes equal, n >= 1); got shape {shape}"
TOKEN_VECTOR_ERROR = "{name} must have shape [{n}] (one entry per token); got shape {shape}"
BOOL_DTYPE_ERROR = "{name} must be a boolean mask; got dtype {dtype}"
INT_DTYPE_ERROR = "{name} must hold integers; got dtype {dtype}"
FLOAT_DTYPE_ERROR = "{name} must hold real numbers; got dtype {dtype}"


def _float32(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(FLOAT_DTYPE_ERROR.format(name=name, dtype=array.dtype))
    return array.astype(np.float32, copy=False)


def attention(values, name: str = "attention") -> np.ndarray:
    """``values`` as float32 ``[layers, heads, n, n]``."""
    array = _float32(values, name)
    if array.ndim != 4 or array.shape[-1] != array.shape[-2] or array.shape[-1] == 0:
        raise ValueError(ATTENTION_SHAPE_ERROR.format(name=name, shape=array.shape))
    return array


def square(values, name: str = "matrix") -> np.ndarray:
    """``values`` as float32 ``[..., n, n]``."""
    array = _float32(values, name)
    if array.ndim < 2 or array.shape[-1] != array.shape[-2] or array.shape[-1] == 0:
        raise ValueError(SQUARE_SHAPE_ERROR.format(name=name, shape=array.shape))
    return array


def bool_vector(values, n: int, name: str) -> np.ndarray:
    """``values`` as bool ``[n]``; integer arrays are refused, so an index list is not taken for a mask."""
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(TOKEN_VECTOR_ERROR.format(name=name, n=n, shape=array.shape))
    if array.dtype != np.bool_:
        raise ValueError(BOOL_DTYPE_ERROR.format(name=name, dtype=array.dtype))
    return array


def int_vector(values, n: int, name: str) -> np.ndarray:
    """``values`` as int64 ``[n]``."""
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(TOKEN_VECTOR_ERROR.format(name=name, n=n, shape=array.shape))
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(INT_DTYPE_ERROR.format(name=name, dtype=array.dtype))
    return array.astype(np.int64, copy=False)
