"""hale's rayon vector env as a ``gymnasium.vector.VectorEnv``.

>>> import hale
>>> envs = hale.vector.make("CartPole-v1", num_envs=8)
>>> obs, infos = envs.reset(seed=0)   # sub-env i is seeded 0 + i
>>> obs.shape
(8, 4)
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hale import _hale
from hale import spaces as _spaces
from hale.env import config_json

__all__ = ["HaleVectorEnv", "make"]

_MODES: dict[Any, AutoresetMode] = {
    AutoresetMode.NEXT_STEP: AutoresetMode.NEXT_STEP,
    AutoresetMode.SAME_STEP: AutoresetMode.SAME_STEP,
    "next-step": AutoresetMode.NEXT_STEP,
    "same-step": AutoresetMode.SAME_STEP,
}
_NATIVE = {AutoresetMode.NEXT_STEP: "next-step", AutoresetMode.SAME_STEP: "same-step"}


class HaleVectorEnv(VectorEnv[Any, Any, Any]):
    """``num_envs`` copies of hale's env ``env_id``, stepped in parallel in Rust (rayon)
    with the GIL released; every call returns fresh arrays.

    ``autoreset_mode``: ``next-step`` (Gymnasium's default: the step after an episode
    ends resets that sub-env, ignoring its action, and returns reward 0) or
    ``same-step`` (the ending step resets at once; the episode's last observation and
    info are in ``infos["final_obs"]`` and ``infos["final_info"]``). It is declared in
    ``metadata["autoreset_mode"]``. Infos are in Gymnasium's vector form (a key's values
    as an array, with ``_key`` saying which sub-envs have it).
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        masked_fallback: bool = True,
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        if render_mode is not None:
            raise TypeError(f"{env_id}: render_mode {render_mode!r}: hale's envs do not render")
        mode = _MODES.get(autoreset_mode) or _MODES.get(str(autoreset_mode).lower())
        if mode is None:
            raise ValueError(
                f"autoreset_mode {autoreset_mode!r}: hale has next-step and same-step"
            )
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.env_id = env_id
        self.config = dict(config)
        self.num_envs = num_envs
        self.metadata = {"autoreset_mode": mode, "render_modes": []}
        self.render_mode = None
        self._native = _hale.VectorEnv(
            env_id, config_json(self.config), num_envs, _NATIVE[mode], masked_fallback
        )
        self.single_observation_space = _spaces.from_json(self._native.observation_space_json)
        self.single_action_space = _spaces.from_json(self._native.action_space_json)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._graph = isinstance(self.single_observation_space, gymnasium.spaces.Graph)
        self._action_dtype = (
            np.float32 if isinstance(self.single_action_space, gymnasium.spaces.Box) else np.int64
        )

    def _obs(self, obs: Any) -> Any:
        if self._graph:
            return tuple(_spaces.graph(g) for g in obs)
        return obs

    def _infos(self, infos: dict[str, Any] | None, final_obs: Any = None, ended: Any = None) -> dict[str, Any]:
        """Infos in Gymnasium's vector form, as ``SyncVectorEnv`` builds them (the native
        module assembles them): with same-step autoreset, a sub-env whose episode just
        ended has ``final_obs`` and ``final_info`` (its reset's info is dropped)."""
        out: dict[str, Any] = infos if infos is not None else {}
        if final_obs is not None:
            array = np.full(self.num_envs, fill_value=None, dtype=object)
            for i in np.flatnonzero(ended):
                array[i] = final_obs[i]
            out["final_obs"], out["_final_obs"] = array, ended
        masks = self._native.action_masks()
        if masks is not None:
            out["action_mask"], out["_action_mask"] = masks, np.ones(self.num_envs, dtype=bool)
        return out

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        if isinstance(seed, list):
            base = seed[0]
            if base is None or seed != [base + i for i in range(self.num_envs)]:
                raise ValueError(
                    "hale seeds sub-env i with seed + i: give one int (or None), "
                    f"or the list [s, s + 1, …]; got {seed}"
                )
            seed = base
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if options:
            raise ValueError("hale's vector env takes no reset options")
        super().reset(seed=seed)
        obs, _, _, _, infos, _ = self._native.reset(seed)
        return self._obs(obs), self._infos(infos)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.ascontiguousarray(actions, dtype=self._action_dtype)
        obs, rewards, terminated, truncated, infos, final_obs = self._native.step(actions)
        if final_obs is None:
            return self._obs(obs), rewards, terminated, truncated, self._infos(infos)
        ended = terminated | truncated
        out = self._infos(infos, self._obs(final_obs), ended)
        return self._obs(obs), rewards, terminated, truncated, out

    def action_masks(self) -> np.ndarray:
        """The sub-envs' action masks ``[num_envs, mask_len]`` (all True where the env
        has none)."""
        masks = self._native.action_masks()
        if masks is None:
            return np.ones((self.num_envs, _spaces.mask_len(self.single_action_space)), dtype=bool)
        return masks


def make(
    env_id: str,
    num_envs: int,
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    **config: Any,
) -> HaleVectorEnv:
    """``num_envs`` copies of hale's env ``env_id`` (``CartPole-v1`` or
    ``hale/CartPole-v1``) with ``config``, as one Gymnasium vector env."""
    from hale import _hale_id

    return HaleVectorEnv(_hale_id(env_id), num_envs, autoreset_mode, **config)
