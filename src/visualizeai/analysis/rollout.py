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

from visualizeai.analysis import _checks
from visualizeai.errors import InputError

# Largest token count for which attention flow is computed. Flow solves one max-flow problem per
# (output token, input token) pair on a graph of layers * n * n edges, so its cost grows like n^4 * layers
# and beyond this bound the wait stops being interactive. Measured on 2 CPU cores with 24 layers of dense
# random attention (the worst case seen; peaked, causal or short-range heads are faster): see
# ``bench/`` notes in the docstring of ``attention_flow``.
FLOW_MAX_TOKENS = 32

FLOW_TOO_LARGE = (
    "Attention flow is limited to {limit} tokens because its cost grows with the fourth power of the "
    "length; this text has {n}. Use attention rollout instead, or a shorter text."
)
SOURCE_RANGE_ERROR = "source token {index} is out of range: there are tokens 0..{last}"
LAYER_RANGE_ERROR = "layer {index} is out of range: there are layers 0..{last}"

# Residual capacities below this are treated as zero. Flows are reported in float32, whose resolution near
# 1 is 6e-8, so stopping here changes no reported value while sparing augmenting paths that carry nothing.
_EPS = 1e-9


class FlowTooLarge(InputError, ValueError):
    """The text is too long for attention flow; ``str(exc)`` says so in words a person can act on."""


def _residual_attention(attn: np.ndarray) -> np.ndarray:
    """float ``[layers, heads, n, n] -> float64 [layers, n, n]``: head mean, plus identity, rows renormalised."""
    mean = attn.mean(axis=1, dtype=np.float64)
    mixed = 0.5 * mean + 0.5 * np.eye(attn.shape[-1])
    return mixed / mixed.sum(axis=-1, keepdims=True)


def residual_attention(attn) -> np.ndarray:
    """``[layers, heads, n, n] -> float32 [layers, n, n]``: ``A'_l``, the edge weights of the flow graph."""
    return _residual_attention(_checks.attention(attn)).astype(np.float32)


def rollout(attn) -> np.ndarray:
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


def attention_flow(attn, sources: Sequence[int] | None = None, *, layer: int | None = None) -> np.ndarray:
    """Attention flow: ``[layers, heads, n, n] -> float32 [s, n]``, s = number of sources (n by default).

    ``out[k, j]`` is the value of the maximum flow from output token ``sources[k]`` after attention layer
    ``layer`` (the last by default) down to input token ``j``, with edge capacities ``A'`` (module
    docstring). Each value lies in [0, 1]: the source's edges hold 1 in total.

    Complexity: one max-flow per (source, input token) pair, solved with Dinic's algorithm on the layered
    graph of ``V = (layer + 1) * n`` nodes and ``E = (layer + 1) * n^2`` edges. Dinic's bound is
    ``O(V^2 E)`` per pair; in practice a handful of phases, each a vectorised breadth-first search plus a
    few augmenting paths per source edge, so the whole matrix costs about ``n^4 * layers`` elementary
    steps. Measured on 2 CPU cores, 24 layers of dense random attention, all n^2 pairs at
    n = ``FLOW_MAX_TOKENS`` = 32: about 3 s. Passing fewer ``sources`` divides the time accordingly.

    Raises:
        FlowTooLarge: ``n > FLOW_MAX_TOKENS``.
        ValueError: bad shapes, or a source or layer out of range.
    """
    attn = _checks.attention(attn)
    layers, _, n, _ = attn.shape
    if n > FLOW_MAX_TOKENS:
        raise FlowTooLarge(FLOW_TOO_LARGE.format(limit=FLOW_MAX_TOKENS, n=n))
    top = layers - 1 if layer is None else layer
    if not 0 <= top < layers:
        raise ValueError(LAYER_RANGE_ERROR.format(index=top, last=layers - 1))
    sources = list(range(n)) if sources is None else [int(i) for i in sources]
    for i in sources:
        if not 0 <= i < n:
            raise ValueError(SOURCE_RANGE_ERROR.format(index=i, last=n - 1))
    capacity = _residual_attention(attn[: top + 1])  # float64 [top + 1, n, n]
    out = np.zeros((len(sources), n), dtype=np.float32)
    for row, source in enumerate(sources):
        for sink in range(n):
            out[row, sink] = max_flow(capacity, source, sink)[0]
    return out


def attention_flow_per_layer(attn, sources: Sequence[int] | None = None) -> np.ndarray:
    """``[layers, heads, n, n] -> float32 [layers, s, n]``: ``attention_flow`` with ``layer=l`` for every l.

    Costs about ``layers / 2`` times one ``attention_flow`` call.
    """
    attn = _checks.attention(attn)
    return np.stack([attention_flow(attn, sources, layer=layer) for layer in range(attn.shape[0])])


# -- maximum flow on the layered graph (Dinic's algorithm) -------------------------------------------------
#
# A node is a pair (k, t): token t in node layer k. capacity[l, a, b] belongs to the edge (l + 1, a) -> (l, b);
# flow[l, a, b] is what that edge carries. In the residual graph the edge keeps capacity - flow downwards
# and offers flow upwards (pushing back), so residual edges still only join neighbouring layers and a
# breadth-first search is a few matrix-vector products per step.


def max_flow(capacity: np.ndarray, source: int, sink: int) -> tuple[float, np.ndarray]:
    """Maximum flow from token ``source`` in the top node layer to token ``sink`` in node layer 0.

    Args:
        capacity: float ``[L, n, n]``, ``capacity[l, a, b]`` on the edge from (l + 1, a) to (l, b).

    Returns:
        ``(value, flow float64 [L, n, n])`` with ``0 <= flow <= capacity`` and flow conserved at every
        node other than the source and the sink.
    """
    capacity = np.array(capacity, dtype=np.float64)  # a copy: the end layers are trimmed below
    n = capacity.shape[-1]
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
        value += network.blocking_flow(level, bound - value)
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
        """Breadth-first distance of every node from the source in residual edges, ``[L + 1, n]``; -1 = unreached.

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
                amount = min(_room(arc) for arc in path)
                for _, cap_row, flow_row, index in path:
                    flow_row[index] += amount if cap_row is not None else -amount
                pushed += amount
                if pushed >= wanted - _EPS:
                    return pushed
                # retreat to the tail of the first arc that is now full, and search on from there
                full = next(i for i, arc in enumerate(path) if _room(arc) <= _EPS)
                del path[full:]
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
