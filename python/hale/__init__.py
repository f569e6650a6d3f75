"""hale's environments for Python: Gymnasium envs and vector envs over hale's Rust
simulator, and paired evaluation against hale's baselines.

>>> import hale
>>> env = hale.make("CartPole-v1")
>>> obs, info = env.reset(seed=42)
>>> obs.shape
(4,)

Every env is also registered with Gymnasium under ``hale/``::

    gymnasium.make("hale/Scaling-v0", scenario="three-tier")
    gymnasium.make_vec("hale/CartPole-v1", num_envs=64, vectorization_mode="vector_entry_point")

Multi-agent envs are PettingZoo ``ParallelEnv``s::

    env = hale.parallel_env("CloudOps-v0", agents=["scaler", "healer", "defender"])
"""

from __future__ import annotations

from typing import Any

import gymnasium

from hale import _hale
from hale import vector
from hale.env import HaleEnv
from hale.evaluate import evaluate

__all__ = [
    "HaleEnv",
    "baselines",
    "evaluate",
    "make",
    "parallel_env",
    "parallel_registry",
    "registry",
    "vector",
    "__version__",
]
__version__: str = _hale.__version__


def registry() -> dict[str, str]:
    """Every env hale registers: ``{id: description}``."""
    return dict(_hale.registry())


def parallel_registry() -> dict[str, str]:
    """Every multi-agent env hale registers: ``{id: description}``."""
    return dict(_hale.parallel_registry())


def parallel_env(env_id: str, **config: Any) -> Any:
    """hale's multi-agent env ``env_id`` (``CloudOps-v0``) with ``config`` as a
    PettingZoo ``ParallelEnv`` (:class:`hale.parallel.HaleParallelEnv`; needs
    ``pettingzoo``, the ``pettingzoo`` extra)."""
    try:
        from hale.parallel import parallel_env as make_parallel
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"hale.parallel_env needs PettingZoo ({e}): pip install 'hale[pettingzoo]'"
        ) from e
    return make_parallel(env_id, **config)


def baselines() -> list[str]:
    """hale's baseline policies, by the names ``evaluate`` takes."""
    return list(_hale.baselines())


def _hale_id(env_id: str) -> str:
    """``Scaling-v0`` or ``hale/Scaling-v0`` → ``Scaling-v0``; an unknown id is named."""
    bare = env_id.removeprefix("hale/")
    if bare not in dict(_hale.registry()):
        known = ", ".join(dict(_hale.registry()))
        raise gymnasium.error.UnregisteredEnv(f"hale has no env {env_id!r} (known: {known})")
    return bare


def make(env_id: str, **config: Any) -> gymnasium.Env:
    """Makes hale's env ``env_id`` (``Scaling-v0`` or ``hale/Scaling-v0``) with
    ``config`` (the env's settings, e.g. ``scenario="three-tier"``), through
    ``gymnasium.make`` so it carries its spec and Gymnasium's order checks.

    ``masked_fallback`` (default True) lets every element of the action space be taken,
    as Gymnasium's contract has it: a masked-out action becomes the first allowed one
    (Healing-v0: the no-op). ``masked_fallback=False`` makes it an error instead.
    """
    return gymnasium.make(f"hale/{_hale_id(env_id)}", **config)


def _register() -> None:
    for env_id, _ in _hale.registry():
        name = f"hale/{env_id}"
        if name in gymnasium.registry:
            continue
        gymnasium.register(
            id=name,
            entry_point="hale.env:HaleEnv",
            vector_entry_point="hale.vector:HaleVectorEnv",
            kwargs={"env_id": env_id},
        )


_register()
