"""Paired evaluation from Python: your policies beside hale's baselines and bundles,
on the same seeds as ``hale eval``, with the same figures."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np

from hale import _hale

Policy = Union[str, "os.PathLike[str]", Callable[..., Any], Any]
"""A baseline name (``"hpa"``), a bundle folder (or a training run's), a callable
``f(obs)`` or ``f(obs, action_mask)`` returning an action, or a model with
``predict(obs, deterministic=True)`` (Stable-Baselines3; sb3-contrib's MaskablePPO
gets the mask)."""


def _callable(policy: Any) -> Callable[[Any, Any], Any]:
    """Any Python policy as ``f(obs, mask) -> action``."""
    predict = getattr(policy, "predict", None)
    if predict is not None and not inspect.isfunction(policy):
        takes_masks = "action_masks" in inspect.signature(predict).parameters

        def act(obs: Any, mask: Any) -> Any:
            if takes_masks and mask is not None:
                action, _ = predict(obs, deterministic=True, action_masks=mask)
            else:
                action, _ = predict(obs, deterministic=True)
            return action

        return act
    if not callable(policy):
        raise TypeError(
            f"{policy!r} is neither a baseline name, a bundle folder, a callable nor a model"
        )
    try:
        params = [
            p
            for p in inspect.signature(policy).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError):  # builtins without a signature
        params = []
    if len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params):
        return policy
    return lambda obs, mask: policy(obs)


def _label(policy: Any) -> str:
    if isinstance(policy, (str, os.PathLike)):
        return ""  # hale's: the baseline's name or the bundle's algorithm
    return getattr(policy, "__name__", type(policy).__name__)


def evaluate(
    env_id: str,
    policies: Sequence[Policy] | Mapping[str, Policy],
    episodes: int = 5,
    seed: int = 0,
    **config: Any,
) -> Any:
    """Runs ``episodes`` episodes of every policy on seeds ``seed``, ``seed + 1``, … (the
    same for every policy, as ``hale eval --episodes N --seed S``) on env ``env_id``
    with ``config``, and compares them, paired against the first policy.

    ``policies``: a list, or ``{label: policy}``; see :data:`Policy`. The env config is
    resolved as ``hale eval`` resolves it (a bundle's training config fills what
    ``config`` leaves out; Scaling-v0 defaults to target actions every 15 s).

    Returns a ``pandas.DataFrame`` indexed by (policy, metric) with columns ``mean``,
    ``ci95`` (half-width of the 95 % interval), ``diff`` (against the first policy, on
    the same seeds), ``ci95_paired`` and ``ci95_unpaired``. ``frame.attrs`` holds
    ``episodes`` (a frame, one row per episode, as episodes.csv), ``summary`` (as
    summary.json) and ``config`` (the env config used).
    """
    import pandas as pd

    items = list(policies.items()) if isinstance(policies, Mapping) else [
        (_label(p), p) for p in policies
    ]
    native: list[tuple[str, Any]] = []
    for label, p in items:
        if isinstance(p, (str, os.PathLike)):
            native.append((label, os.fspath(p)))
        else:
            native.append((label, _callable(p)))
    config_used, summary_json, rows, notes = _hale.evaluate(
        env_id.removeprefix("hale/"),
        json.dumps(config) if config else "null",
        native,
        int(episodes),
        int(seed),
    )
    for note in notes:
        print(note)
    summary = json.loads(summary_json)
    episodes_frame = pd.DataFrame(rows)
    order = list(dict.fromkeys(episodes_frame["policy"]))
    first = order[0]
    records = []
    for policy in order:
        metrics = summary["policies"][policy]
        diffs = summary["paired_differences"].get(f"{policy} - {first}", {})
        for metric, v in metrics.items():
            if metric == "cpu_slack_by_service":
                continue
            d = diffs.get(metric, {})
            records.append(
                {
                    "policy": policy,
                    "metric": metric,
                    "mean": _num(v["mean"]),
                    "ci95": _num(v["ci95"]),
                    "diff": _num(d.get("diff")),
                    "ci95_paired": _num(d.get("ci95_paired")),
                    "ci95_unpaired": _num(d.get("ci95_unpaired")),
                }
            )
    frame = pd.DataFrame(records).set_index(["policy", "metric"])
    frame.attrs["episodes"] = episodes_frame
    frame.attrs["summary"] = summary
    frame.attrs["config"] = json.loads(config_used)
    return frame


def _num(x: Any) -> float:
    # summary.json writes NaN (no faults: no MTTR) as null.
    return float("nan") if x is None else float(x)
