"""The custom-environment example (docs/guides/custom-environments.md), and
Gymnasium's own checks on every environment the library ships."""

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from pes_rl.envs import CueMemoryEnv, LinearQuadraticEnv

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_shipped_environments_pass_check_env():
    for env in (
        LinearQuadraticEnv(),
        LinearQuadraticEnv(terminate_above=3.0),
        gym.make("linear_quadratic").unwrapped,
        CueMemoryEnv(),
        CueMemoryEnv(length=1),
        gym.make("cue_memory").unwrapped,
    ):
        check_env(env, skip_render_check=True)


def test_example_trains_from_python():
    out = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "custom_env_example.py")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    for line in out.stdout.strip().splitlines():
        before, after = (float(x) for x in line.split("return ")[1].split(" -> "))
        assert after > before + 10


def test_example_env_trains_from_the_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(EXPERIMENTS)}
    out = subprocess.run(
        [sys.executable, "-m", "pes_rl.train", "--env", "my_env:PointMass-v0"]
        + ["--truncation-length", "10", "--total-steps", "4000", "--no-progress"]
        + ["--eval-every", "2000", "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "PointMass-v0" in out.stdout


def test_example_env_passes_check_env(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import my_env

    check_env(my_env.PointMass(), skip_render_check=True)
