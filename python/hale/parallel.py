"""hale's multi-agent envs as PettingZoo ``ParallelEnv``s."""

from __future__ import annotations

import json
import warnings
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from hale import _hale
from hale import spaces as _spaces
from hale.env import config_json


class HaleParallelEnv(ParallelEnv):
    """hale's multi-agent env ``env_id`` with ``config``, stepped in Rust, with
    PettingZoo's parallel API.

    ``possible_agents`` is fixed; ``agents`` are the ones alive (empty once the episode
    ends, until ``reset``). Every per-agent value is a dict keyed by agent;
    ``observation_space(agent)`` and ``action_space(agent)`` return the same object at
    every call; ``state()`` is the global state for a centralised critic (its space is
    ``state_space``). Each masked agent's allowed actions are in its
    ``info["action_mask"]`` and in :meth:`action_mask`.

    ``masked_fallback`` (default True): a masked-out action becomes the agent's first
    allowed one (the no-op), so that every element of the action space can be taken,
    as PettingZoo's API test samples them; ``False`` makes it an error. hale's
    multi-agent envs take no reset options: ``reset(options=…)`` warns and ignores them.
    """

    metadata: dict[str, Any] = {"render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        env_id: str,
        masked_fallback: bool = True,
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        if render_mode is not None:
            raise TypeError(f"{env_id}: render_mode {render_mode!r}: hale's envs do not render")
        self.render_mode = None
        self.env_id = env_id
        self.config = dict(config)
        self.metadata = {**HaleParallelEnv.metadata, "name": env_id}
        self._native = _hale.ParallelEnv(env_id, config_json(self.config), masked_fallback)
        self.possible_agents: list[str] = list(self._native.possible_agents)
        self.agents: list[str] = []
        self.observation_spaces = {
            a: _spaces.from_json(self._native.observation_space_json(a))
            for a in self.possible_agents
        }
        self.action_spaces = {
            a: _spaces.from_json(self._native.action_space_json(a)) for a in self.possible_agents
        }
        self.state_space = _spaces.from_json(self._native.state_space_json)
        self._masked = {a for a in self.possible_agents if self._native.action_mask(a) is not None}
        self._closed = False

    def observation_space(self, agent: str) -> gymnasium.spaces.Space[Any]:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space[Any]:
        return self.action_spaces[agent]

    def _infos(self, infos: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for agent, info in infos.items():
            if agent in self._masked:
                info["action_mask"] = self._native.action_mask(agent)
        return infos

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        if seed is not None and seed < 0:
            raise ValueError(f"{self.env_id}: seed must be ≥ 0, got {seed}")
        if options:
            warnings.warn(
                f"{self.env_id} takes no reset options: ignored {options!r}", stacklevel=2
            )
        obs, infos = self._native.reset(seed, None)
        self.agents = list(self._native.agents)
        return obs, self._infos(infos)

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, Any],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        obs, rewards, terminations, truncations, infos = self._native.step(actions)
        self.agents = list(self._native.agents)
        return obs, rewards, terminations, truncations, self._infos(infos)

    def state(self) -> np.ndarray:
        return self._native.state()

    def action_mask(self, agent: str) -> np.ndarray:
        """``agent``'s allowed actions now, a flat bool array (all True where it has
        no mask)."""
        mask = self._native.action_mask(agent)
        if mask is None:
            return np.ones(_spaces.mask_len(self.action_space(agent)), dtype=bool)
        return mask

    def close(self) -> None:
        if not self._closed:
            self._native.close()
            self._closed = True


def parallel_env(env_id: str, **config: Any) -> HaleParallelEnv:
    """hale's multi-agent env ``env_id`` (``CloudOps-v0``) with ``config`` (e.g.
    ``agents=["scaler", "defender"]``), as a PettingZoo ``ParallelEnv``."""
    known = dict(_hale.parallel_registry())
    bare = env_id.removeprefix("hale/")
    if bare not in known:
        raise ValueError(
            f"hale has no multi-agent env {env_id!r} (known: {', '.join(known) or 'none'})"
        )
    return HaleParallelEnv(bare, **config)
