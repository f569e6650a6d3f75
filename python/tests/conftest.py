"""Shared cases: every env and observation kind hale registers, kept small so the
checkers run in seconds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# (env id, config): every registered env, with each observation kind it has.
CASES = [
    ("CartPole-v1", {}),
    ("Scaling-v0", {"scenario": "three-tier", "episode_s": 300, "fidelity": "fluid"}),
    (
        "Scaling-v0",
        {"scenario": "three-tier", "episode_s": 300, "fidelity": "fluid", "observation": "graph"},
    ),
    (
        "Scaling-v0",
        {"scenario": "three-tier", "episode_s": 300, "action": "target", "cpu_levels": [0.5, 1.0]},
    ),
    ("Healing-v0", {"scenario": "three-tier", "episode_s": 300}),
    ("Healing-v0", {"scenario": "three-tier", "episode_s": 300, "observation": "graph"}),
    ("Security-v0", {"red": "meander", "observation": "table+alerts"}),
    ("Security-v0", {"red": "meander", "observation": "table+scans"}),
    ("Security-v0", {"scenario": "microservices-20", "max_steps": 20}),
    (
        "Security-v0",
        {"scenario": "microservices-20", "max_steps": 20, "observation": "graph"},
    ),
    ("Cost-v0", {"episode_s": 600, "spot_notice_s": 30}),
]


def case_id(case: tuple[str, dict]) -> str:
    env_id, config = case
    return env_id + "".join(f"-{k}={v}" for k, v in config.items() if k != "scenario")


@pytest.fixture(scope="session")
def hale_bin() -> Path:
    """The `hale` binary of this build (the Rust test that runs pytest names it)."""
    path = os.environ.get("HALE_BIN") or shutil.which("hale")
    if not path:
        pytest.fail("HALE_BIN is not set and no `hale` is on PATH (cargo build --bin hale)")
    return Path(path)


@pytest.fixture(autouse=True)
def sb3_logs_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stable-Baselines3 makes a log folder for every model (under the system's temporary
    folder unless `SB3_LOGDIR` names one): keep it in the test's own folder, which pytest
    removes."""
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3"))
