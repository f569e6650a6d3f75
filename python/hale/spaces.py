"""hale's spaces (JSON from the native module) as Gymnasium spaces, and graph
observations as ``GraphInstance``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from gymnasium import spaces

_F32_MAX = float(np.finfo(np.float32).max)


def _bound(values: list[float | None], sign: float) -> np.ndarray:
    # hale marks an unbounded side ±f32::MAX (JSON has no infinity; an infinite bound
    # would arrive as null): Gymnasium marks it ±inf, as its own CartPole-v1 does.
    out = np.array([sign * np.inf if v is None else v for v in values], dtype=np.float64)
    out[np.abs(out) >= _F32_MAX] = np.copysign(np.inf, out[np.abs(out) >= _F32_MAX])
    return out.astype(np.float32)


def from_json(text: str) -> spaces.Space[Any]:
    """The Gymnasium space of hale's space ``text`` (its JSON form)."""
    s = json.loads(text)
    kind = s["type"]
    if kind == "discrete":
        return spaces.Discrete(int(s["n"]))
    if kind == "multi-discrete":
        return spaces.MultiDiscrete(np.array(s["nvec"], dtype=np.int64))
    if kind == "box":
        shape = tuple(s["shape"])
        low = _bound(s["low"], -1.0).reshape(shape)
        high = _bound(s["high"], 1.0).reshape(shape)
        return spaces.Box(low=low, high=high, shape=shape, dtype=np.float32)
    if kind == "graph":
        node = spaces.Box(-np.inf, np.inf, shape=(int(s["node_features"]),), dtype=np.float32)
        edge_features = int(s["edge_features"])
        edge = (
            spaces.Box(-np.inf, np.inf, shape=(edge_features,), dtype=np.float32)
            if edge_features > 0
            else None
        )
        return spaces.Graph(node_space=node, edge_space=edge)
    raise ValueError(f"hale space of unknown type {kind!r}: {text}")


def mask_len(space: spaces.Space[Any]) -> int:
    """The length of an action mask of ``space``: ``n`` for Discrete, ``Σ nvec`` for
    MultiDiscrete (one block per dimension), as hale lays masks out."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    raise ValueError(f"{space} has no action mask")


def graph(triple: tuple[np.ndarray, np.ndarray | None, np.ndarray]) -> spaces.GraphInstance:
    """A native graph ``(nodes, edges, edge_links)`` as Gymnasium's ``GraphInstance``."""
    nodes, edges, links = triple
    return spaces.GraphInstance(nodes=nodes, edges=edges, edge_links=links)
