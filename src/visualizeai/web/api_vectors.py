"""The vector views of a head under /api/v1: the query–key map and the neuron view (JSON).

Both read the queries and keys the forward pass recorded (analysis/vectors.py); analyses that hold weights
only (saved files, models whose attention is not recorded) answer 409 saying so.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from visualizeai.analysis import vectors
from visualizeai.errors import InputError
from visualizeai.web.deps import ServiceDep
from visualizeai.web.schemas import ErrorResponse

router = APIRouter(prefix="/api/v1", tags=["vectors"])

ERRORS = {
    400: {"model": ErrorResponse, "description": "Layer, head, query or keys out of range"},
    404: {"model": ErrorResponse, "description": "Expired analysis"},
    409: {"model": ErrorResponse, "description": "The analysis holds weights only, no vectors"},
    422: {"model": ErrorResponse, "description": "Parameters of the wrong shape"},
}
Index = Annotated[int, Query(ge=0, le=1_000_000)]
NEURON_WINDOW = 8  # keys on each side of the query shown by default
NEURON_TOP = 8  # and the row's strongest keys


class QKMap(BaseModel):
    method: str = Field(description="how the vectors were embedded in 2-D: `pca`")
    positions: list[int] = Field(description="token positions drawn (every one, or an even sample)")
    queries: list[list[float]] = Field(description="[x, y] of each drawn position's query")
    keys: list[list[float]] = Field(description="[x, y] of each drawn position's key")
    explained: list[float] = Field(description="share of the variance along each axis")
    translated: bool = Field(description="keys moved onto the queries' centre (not with soft-capped logits)")


class NeuronKey(BaseModel):
    index: int
    vector: list[float]
    products: list[float] = Field(description="query ⊙ key, elementwise")
    logit: float | None = Field(description="sum of the products × scale (soft-capped where the model caps)")
    weight: float = Field(description="the attention weight, exact")
    visible: bool = Field(description="whether the query may attend to this key (mask, window)")


class Neuron(BaseModel):
    layer: int
    head: int
    query_index: int
    query: list[float]
    scaling: float
    softcap: float | None
    keys: list[NeuronKey]


def _floats(a: np.ndarray) -> list:
    return np.asarray(a, dtype=np.float32).astype(float).tolist()


@router.get(
    "/analyses/{key}/qk-map",
    response_model=QKMap,
    responses=ERRORS,
    summary="A head's queries and keys in one 2-D map (principal components)",
)
def qk_map(
    key: str,
    service: ServiceDep,
    layer: Index,
    head: Index,
    max_points: Annotated[int, Query(ge=2, le=vectors.MAX_POINTS)] = vectors.MAX_POINTS,
) -> QKMap:
    """Queries and keys are first moved into one space that keeps every weight (keys translated onto the
    queries' centre, both scaled to equal mean norms), then projected on their two principal components.
    Longer texts are sampled evenly to `max_points` positions."""
    store = service.result(key).attention
    got = vectors.qk_map(vectors.head_vectors(store, layer, head), max_points)
    return QKMap(
        method=got["method"],
        positions=got["positions"].tolist(),
        queries=_floats(got["queries"]),
        keys=_floats(got["keys"]),
        explained=got["explained"],
        translated=got["translated"],
    )


def default_keys(weights: np.ndarray, query: int) -> np.ndarray:
    """The keys a neuron view explains when none are named: a window around the query and the strongest."""
    n = len(weights)
    window = np.arange(max(0, query - NEURON_WINDOW), min(n, query + NEURON_WINDOW + 1))
    top = np.argsort(-weights, kind="stable")[:NEURON_TOP]
    return np.union1d(window, top)


def parse_keys(keys: str) -> np.ndarray:
    try:
        return np.array([int(k) for k in keys.split(",") if k.strip()], dtype=np.int64)
    except ValueError:
        raise InputError("keys must be comma-separated token positions, like 3,4,10") from None


@router.get(
    "/analyses/{key}/neuron",
    response_model=Neuron,
    responses=ERRORS,
    summary="Why a query weighs its keys: query, key vectors and their elementwise products",
)
def neuron(
    key: str,
    service: ServiceDep,
    layer: Index,
    head: Index,
    query: Index,
    keys: Annotated[
        str | None,
        Query(
            description="key positions, comma-separated; default: a window "
            f"of {NEURON_WINDOW} each side of the query and its {NEURON_TOP} strongest"
        ),
    ] = None,
) -> Neuron:
    store = service.result(key).attention
    v = vectors.head_vectors(store, layer, head)
    if query >= store.n:
        raise InputError(f"query position {query} is outside 0..{store.n - 1}")
    weights = store.block(layer, head, (query, query + 1))[0]
    chosen = default_keys(weights, query) if keys is None else parse_keys(keys)
    got = vectors.neuron(v, query, weights, chosen)
    return Neuron(
        layer=layer,
        head=head,
        query_index=query,
        query=_floats(got["query"]),
        scaling=got["scaling"],
        softcap=got["softcap"],
        keys=[
            NeuronKey(
                index=int(index),
                vector=_floats(got["keys"][i]),
                products=_floats(got["products"][i]),
                logit=float(got["logits"][i]) if got["visible"][i] else None,
                weight=float(got["weights"][i]),
                visible=bool(got["visible"][i]),
            )
            for i, index in enumerate(chosen)
        ],
    )
