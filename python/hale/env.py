"""A hale env as a ``gymnasium.Env``."""

from __future__ import annotations

import json
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from hale import _hale
from hale import spaces as _spaces


def config_json(config: dict[str, Any] | None) -> str:
    """An env config as the JSON the native module reads (``null``: the defaults)."""
    return json.dumps(config) if config else "null"


class HaleEnv(gymnasium.Env[Any, Any]):
    """hale's env ``env_id`` with ``config``, stepped in Rust.

    Observations are fresh arrays on every call (``float32`` boxes shaped as the space;
    graphs as ``GraphInstance``); infos are dicts of Python floats, ints, bools and
    lists. ``reset(seed=…)`` reseeds the Rust env (the same seed gives the same
    episode, as from Rust) and Gymnasium's ``np_random``.

    Action masks (Healing-v0) are in ``info["action_mask"]`` after every reset and
    step, and in :meth:`action_masks` (what sb3-contrib's MaskablePPO calls).
    """

    metadata: dict[str, Any] = {"render_modes": []}

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
        self._native = _hale.Env(env_id, config_json(self.config), masked_fallback)
        self.observation_space = _spaces.from_json(self._native.observation_space_json)
        self.action_space = _spaces.from_json(self._native.action_space_json)
        self._graph = isinstance(self.observation_space, gymnasium.spaces.Graph)
        self._masked = self._native.action_mask() is not None
        self._closed = False

    def _obs(self, obs: Any) -> Any:
        return _spaces.graph(obs) if self._graph else obs

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        if self._masked:
            info["action_mask"] = self._native.action_mask()
        return info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)  # also refuses a negative seed
        obs, info = self._native.reset(seed, json.dumps(options) if options else None)
        return self._obs(obs), self._info(info)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._native.step(action)
        return self._obs(obs), reward, terminated, truncated, self._info(info)

    def action_masks(self) -> np.ndarray:
        """The actions allowed now, a flat bool array (all True where the env has no
        mask): what sb3-contrib's MaskablePPO reads."""
        mask = self._native.action_mask()
        if mask is None:
            return np.ones(_spaces.mask_len(self.action_space), dtype=bool)
        return mask

    def close(self) -> None:
        if not self._closed:
            self._native.close()
            self._closed = True
