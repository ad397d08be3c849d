"""Attention rollout and attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

Both treat the network as a graph whose nodes are (layer, token) pairs. Node layer 0 is the input
embeddings and node layer ``l + 1`` is the output of attention layer ``l``. Between them the edge from
(l + 1, i) down to (l, j) carries ``A'_l[i, j]``, the head-averaged attention of layer ``l`` with the
residual connection added: ``A' = 0.5 * A + 0.5 * I``, rows renormalised.

*Rollout* multiplies these matrices: how much of token ``j``'s input reaches output ``i``, mixing along
all paths. *Flow* treats the weights as capacities of pipes and asks for the maximum flow from an output
node to an input node: a path can carry no more than its narrowest edge, and paths share edges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from visualizeai import budgets
from visualizeai.analysis import _checks

# Attention flow solves one max-flow problem per (source token, input token) pair, each on a graph of about
# layers * n^2 edges, so a request costs about  sources * n^3 * layers  steps ("work", budgets.flow_steps).
# The bound is what the default work budget admits at budgets.FLOW_STEP elements per step (the service passes
# the configured budget's figure as ``max_work``): all pairs of FLOW_MAX_TOKENS tokens through
# FLOW_REFERENCE_LAYERS layers. Measured on a 2-core machine, one process, CPU seconds for requests at the
# bound (random dense, uniform, peaked and mixed heads; the mixed ones, with previous-token, sink, self and
# peaked heads, are the slowest):
#   all 28 x 28 pairs, 12 layers: 2.1-3.2 s (causal: 1.4 s)
#   all 23 x 23 pairs, 24 layers: 2.1-2.3 s (causal: 1.6 s)
#   all 33 x 33 pairs,  6 layers: 2.0-2.7 s (causal: 1.3 s)
#   one source token, 85 tokens, 12 layers: 0.9-3.5 s
FLOW_MAX_TOKENS = 28
FLOW_REFERENCE_LAYERS = 12
FLOW_MAX_WORK = budgets.flow_max_steps(budgets.DEFAULT_WORK_BUDGET)  # 28^4 * 12 <= this < 29^4 * 12

FLOW_TOO_LARGE = (
    "Attention flow would take too long here: {sources} source token(s) x {n} tokens through {layers} "
    "layers. The limit is about {limit} tokens when flow is computed for every token of a {ref}-layer "
    "model; choose fewer source tokens or a shorter text, or use attention rollout, which is fast at any "
    "length."
)
SOURCE_RANGE_ERROR = "source token {index} is out of range: there are tokens 0..{last}"
LAYER_RANGE_ERROR = "layer {index} is out of range: there are layers 0..{last}"
CAPACITY_SHAPE_ERROR = "capacity must have shape [layers, n, n]; got shape {shape}"

# Residual capacities below this are treated as zero. Flows are reported in float32, whose resolution near
# 1 is 6e-8, so stopping here changes no reported value while sparing augmenting paths that carry nothing.
_EPS = 1e-9


class FlowTooLarge(budgets.WorkTooLarge, ValueError):
    """A flow request over the work budget; ``str(exc)`` says so in words a person can act on."""


def _residual_attention(attn: np.ndarray) -> np.ndarray:
    """``[layers, heads, n, n] -> float64 [layers, n, n]``: head mean, plus identity, rows renormalised."""
    mean = attn.mean(axis=1, dtype=np.float64)
    mixed = 0.5 * mean + 0.5 * np.eye(attn.shape[-1])
    return mixed / mixed.sum(axis=-1, keepdims=True)


def residual_attention(attn) -> np.ndarray:
    """``[layers, heads, n, n] -> float32 [layers, n, n]``: ``A'_l``, the edge weights of the flow graph."""
    return _residual_attention(_checks.attention(attn)).astype(np.float32)


def attention_rollout(attn) -> np.ndarray:
    """Attention rollout: ``[layers, heads, n, n] -> float32 [layers, n, n]``.

    ``R_0 = A'_0`` and ``R_l = A'_l @ R_{l-1}``, so ``R_l[i, j]`` is how much of input token ``j`` reaches
    token ``i`` after layer ``l``. Rows sum to 1. Computed in float64; cost ``layers * n^3``.
    """
    residual = _residual_attention(_checks.attention(attn))
    out = np.empty(residual.shape, dtype=np.float32)
    product = residual[0]
    out[0] = product
    for layer in range(1, residual.shape[0]):
        product = residual[layer] @ product
        out[layer] = product
    return out


def _flow_request(
    attn, sources: Sequence[int] | None, layers_spanned: Sequence[int], max_work: int = FLOW_MAX_WORK
) -> tuple[np.ndarray, list[int]]:
    """Check a flow request up front: shapes, source range, and ``max_work`` for all ``layers_spanned``."""
    attn = _checks.attention(attn)
    n = attn.shape[-1]
    sources = list(range(n)) if sources is None else [int(i) for i in sources]
    for i in sources:
        if not 0 <= i < n:
            raise ValueError(SOURCE_RANGE_ERROR.format(index=i, last=n - 1))
    if budgets.flow_steps(len(sources), n, sum(layers_spanned)) > max_work:
        raise FlowTooLarge(
            FLOW_TOO_LARGE.format(
                sources=len(sources),
                n=n,
                layers=max(layers_spanned),
                limit=budgets.tokens_for_steps(FLOW_REFERENCE_LAYERS, max_work),
                ref=FLOW_REFERENCE_LAYERS,
            )
        )
    return attn, sources


def _flows(capacity: np.ndarray, sources: list[int]) -> np.ndarray:
    """``capacity [l, n, n] -> float32 [s, n]``: the max-flow value of every (source, input token) pair."""
    n = capacity.shape[-1]
    out = np.zeros((len(sources), n), dtype=np.float32)
    for row, source in enumerate(sources):
        for sink in range(n):
            out[row, sink] = max_flow(capacity, source, sink)[0]
    return out


def attention_flow(
    attn, sources: Sequence[int] | None = None, *, layer: int | None = None, max_work: int = FLOW_MAX_WORK
) -> np.ndarray:
    """Attention flow: ``[layers, heads, n, n] -> float32 [s, n]``, s = number of sources (n by default).

    ``out[k, j]`` is the value of the maximum flow from token ``sources[k]`` at the output of attention layer
    ``layer`` (the last by default) down to input token ``j``, with edge capacities ``A'`` (module
    docstring). Each value lies in [0, 1]: the source's edges hold 1 in total.

    Complexity: one max-flow per (source, input token) pair, each solved with Dinic's algorithm on the
    layered graph of ``V ~ layers * n`` nodes and ``E ~ layers * n^2`` edges. Dinic's worst-case bound is
    ``O(V^2 E)`` per pair; on attention graphs it needs one or two phases (a vectorised breadth-first search
    and a depth-first search that touches each edge about once) and stops as soon as the flow fills the
    source's or the sink's edges, so a request costs about ``sources * n^3 * layers`` steps. Requests are
    refused above ``max_work`` steps (default ``FLOW_MAX_WORK``, what the default work budget admits: all
    pairs of ``FLOW_MAX_TOKENS`` = 28 tokens through 12 layers, which measured 2.1-3.2 s of CPU on a 2-core
    machine; more figures next to the constant).

    Raises:
        FlowTooLarge: the request is over the work budget.
        ValueError: bad shapes, or a source or layer out of range.
    """
    attn = _checks.attention(attn)
    layers = attn.shape[0]
    top = layers - 1 if layer is None else layer
    if not 0 <= top < layers:
        raise ValueError(LAYER_RANGE_ERROR.format(index=top, last=layers - 1))
    attn, sources = _flow_request(attn, sources, [top + 1], max_work)
    return _flows(_residual_attention(attn[: top + 1]), sources)


def attention_flow_per_layer(
    attn, sources: Sequence[int] | None = None, *, max_work: int = FLOW_MAX_WORK
) -> np.ndarray:
    """``[layers, heads, n, n] -> float32 [layers, s, n]``: ``attention_flow`` with ``layer=l`` for every l.

    Costs about ``(layers + 1) / 2`` times one ``attention_flow`` call, and is budgeted accordingly.
    """
    attn = _checks.attention(attn)
    layers = attn.shape[0]
    attn, sources = _flow_request(attn, sources, range(1, layers + 1), max_work)
    capacity = _residual_attention(attn)
    return np.stack([_flows(capacity[: top + 1], sources) for top in range(layers)])


# -- maximum flow on the layered graph (Dinic's algorithm) -------------------------------------------------
#
# A node is a pair (k, t): token t in node layer k. capacity[l, a, b] belongs to the edge
# (l + 1, a) -> (l, b); flow[l, a, b] is what that edge carries. In the residual graph the edge keeps
# capacity - flow downwards and offers flow upwards (pushing back), so residual edges still only join
# neighbouring layers and a breadth-first search is a few matrix-vector products per step.


def max_flow(capacity: np.ndarray, source: int, sink: int) -> tuple[float, np.ndarray]:
    """Maximum flow from token ``source`` in the top node layer to token ``sink`` in node layer 0.

    Args:
        capacity: float ``[L, n, n]``, ``capacity[l, a, b]`` on the edge from (l + 1, a) to (l, b).

    Returns:
        ``(value, flow float64 [L, n, n])`` with ``0 <= flow <= capacity`` and flow conserved at every
        node other than the source and the sink.
    """
    capacity = np.array(capacity, dtype=np.float64)  # a copy: the end layers are trimmed below
    if capacity.ndim != 3 or capacity.shape[1] != capacity.shape[2] or 0 in capacity.shape:
        raise ValueError(CAPACITY_SHAPE_ERROR.format(shape=capacity.shape))
    n = capacity.shape[-1]
    for name, index in (("source", source), ("sink", sink)):
        if not 0 <= index < n:
            raise ValueError(f"{name} {index} is out of range: there are tokens 0..{n - 1}")
    # Other top nodes have no way in and other bottom nodes no way out, so their edges can carry nothing;
    # removing them keeps the searches small.
    only_source = np.zeros((n, 1))
    only_source[source] = 1.0
    only_sink = np.zeros((1, n))
    only_sink[0, sink] = 1.0
    capacity[-1] *= only_source
    capacity[0] *= only_sink
    network = _LayeredNetwork(capacity, source, sink)
    # The edges out of the source and into the sink are cuts: no flow can beat the smaller of the two.
    bound = min(capacity[-1].sum(), capacity[0].sum())
    value = 0.0
    while value < bound - _EPS:
        level = network.levels()
        if level[0, sink] < 0:
            break
        pushed = network.blocking_flow(level, bound - value)
        if pushed <= 0:  # impossible in exact arithmetic; stops a rounding stalemate from spinning forever
            break
        value += pushed
    return value, np.array(network.flow, dtype=np.float64).reshape(capacity.shape)


class _LayeredNetwork:
    """Residual graph of one source-sink problem, with the two steps of Dinic's algorithm.

    Capacities and flows are kept as nested Python lists ``[l][a][b]`` because the depth-first search reads
    and writes single entries, which is several times faster on lists than on numpy arrays.
    """

    def __init__(self, capacity: np.ndarray, source: int, sink: int):
        self.capacity_array = capacity
        self.capacity = capacity.tolist()
        self.flow = np.zeros_like(capacity).tolist()
        self.layers, self.n = capacity.shape[0], capacity.shape[1]
        self.source, self.sink = source, sink

    def levels(self) -> np.ndarray:
        """Breadth-first distance from the source in residual edges, ``[L + 1, n]``; -1 = unreached.

        The search stops at the sink's distance: farther nodes cannot lie on a shortest path.
        """
        layers, n = self.layers, self.n
        flow = np.array(self.flow)
        down = ((self.capacity_array - flow) > _EPS).astype(np.float32)  # (l + 1, a) -> (l, b) has room
        up = (flow > _EPS).astype(np.float32)  # (l, b) -> (l + 1, a) can push back
        level = np.full((layers + 1, n), -1, dtype=np.int64)
        level[layers, self.source] = 0
        frontier = np.zeros((layers + 1, n), dtype=np.float32)
        frontier[layers, self.source] = 1.0
        depth = 0
        while level[0, self.sink] < 0 and frontier.any():
            depth += 1
            reached = np.zeros((layers + 1, n), dtype=bool)
            reached[:-1] = (frontier[1:, None, :] @ down)[:, 0, :] > 0
            reached[1:] |= (up @ frontier[:-1, :, None])[:, :, 0] > 0
            new = reached & (level < 0)
            level[new] = depth
            frontier = new.astype(np.float32)
        return level

    def _arcs(self, node: tuple[int, int], level: np.ndarray, wanted: int) -> list[tuple]:
        """Residual arcs from ``node`` to nodes whose level is ``wanted``.

        An arc is ``(target, capacity_row, flow_row, index)``: it uses ``flow_row[index]``, with room
        ``capacity_row[index] - flow_row[index]`` downwards, or ``flow_row[index]`` to push back upwards
        (``capacity_row`` is None).
        """
        k, t = node
        arcs = []
        if k >= 1:
            room = self.capacity_array[k - 1, t] - np.asarray(self.flow[k - 1][t]) > _EPS
            cap_row, flow_row = self.capacity[k - 1][t], self.flow[k - 1][t]
            for b in np.flatnonzero(room & (level[k - 1] == wanted)).tolist():
                arcs.append(((k - 1, b), cap_row, flow_row, b))
        if k < self.layers and (level[k + 1] == wanted).any():
            back = np.array([row[t] for row in self.flow[k]]) > _EPS
            for a in np.flatnonzero(back & (level[k + 1] == wanted)).tolist():
                arcs.append(((k + 1, a), None, self.flow[k][a], t))
        return arcs

    def blocking_flow(self, level: np.ndarray, wanted: float) -> float:
        """Push flow along shortest residual paths until none is left or ``wanted`` is reached (one Dinic
        phase); returns the amount.

        Depth-first search with a current-arc pointer per node, so an arc that became useless is skipped for
        the rest of the phase. Stopping at ``wanted`` (the cut bound) matters: once the sink's edges are full,
        the search would otherwise walk every other node only to find dead ends.
        """
        sink_level = level[0, self.sink]
        # Only nodes closer than the sink, and the sink itself, can lie on a shortest path.
        useful = np.where(level < sink_level, level, -2)
        useful[0, self.sink] = sink_level
        start, goal = (self.layers, self.source), (0, self.sink)
        arcs: dict[tuple[int, int], list[tuple]] = {}
        next_arc: dict[tuple[int, int], int] = {}
        pushed = 0.0
        path: list[tuple] = []  # arcs from the source to the current node
        node = start
        while True:
            if node == goal:
                rooms = [_room(arc) for arc in path]
                amount = min(rooms)
                for _, cap_row, flow_row, index in path:
                    flow_row[index] += amount if cap_row is not None else -amount
                pushed += amount
                if pushed >= wanted - _EPS:
                    return pushed
                # retreat to the tail of the first arc that is now full, and search on from there
                del path[rooms.index(amount) :]
                node = path[-1][0] if path else start
                continue
            if node not in arcs:
                arcs[node] = self._arcs(node, useful, level[node] + 1)
                next_arc[node] = 0
            options, i = arcs[node], next_arc[node]
            while i < len(options) and _room(options[i]) <= _EPS:
                i += 1
            next_arc[node] = i
            if i < len(options):
                path.append(options[i])
                node = options[i][0]
            elif path:  # dead end: retreat, and never come back here this phase
                path.pop()
                node = path[-1][0] if path else start
                next_arc[node] += 1
            else:
                return pushed


def _room(arc: tuple) -> float:
    """Residual capacity of an arc of ``_LayeredNetwork``."""
    _, cap_row, flow_row, index = arc
    return cap_row[index] - flow_row[index] if cap_row is not None else flow_row[index]
