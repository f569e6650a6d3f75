"""Type stubs of the native module (Rust, PyO3). Private: use ``hale``."""

from typing import Any, Callable

import numpy as np
import numpy.typing as npt

__version__: str
BUNDLES: bool

class Env:
    def __init__(self, id: str, config_json: str, masked_fallback: bool) -> None: ...
    @property
    def id(self) -> str: ...
    @property
    def observation_space_json(self) -> str: ...
    @property
    def action_space_json(self) -> str: ...
    def reset(
        self, seed: int | None = None, options_json: str | None = None
    ) -> tuple[Any, dict[str, Any]]: ...
    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]: ...
    def action_mask(self) -> npt.NDArray[np.bool_] | None: ...
    def close(self) -> None: ...

class VectorEnv:
    def __init__(
        self, id: str, config_json: str, num_envs: int, autoreset: str, masked_fallback: bool
    ) -> None: ...
    @property
    def observation_space_json(self) -> str: ...
    @property
    def action_space_json(self) -> str: ...
    def reset(
        self, seed: int | None = None
    ) -> tuple[
        Any,
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
        dict[str, Any] | None,
        None,
    ]: ...
    def step(
        self, actions: npt.NDArray[Any]
    ) -> tuple[
        Any,
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
        dict[str, Any] | None,
        Any,
    ]: ...
    def action_masks(self) -> npt.NDArray[np.bool_] | None: ...

def registry() -> list[tuple[str, str]]: ...
def baselines() -> list[str]: ...
def evaluate(
    env_id: str,
    config_json: str,
    policies: list[tuple[str, str | Callable[[Any, Any], Any]]],
    episodes: int,
    seed: int,
) -> tuple[str, str, list[dict[str, Any]], list[str]]: ...
def bench_rust(id: str, config_json: str, num_envs: int, steps: int, seed: int = 0) -> float: ...
