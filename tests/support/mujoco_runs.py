"""Agents on the mujoco and Gymnasium backends, for the tests comparing
them (integration/test_mujoco_backend.py, e2e/test_mujoco_runs.py)."""

import numpy as np

from pes_rl.agents import PES


def mujoco_agent(backend: str, env="swimmer", cls=PES, **kwargs):
    settings = dict(
        num_particles=6, truncation_length=30, horizon=120, sigma=0.1,
        learning_rate=0.02, seed=4, obs_norm=True, preset=None,
    )  # fmt: skip
    return cls(env=env, backend=backend, **{**settings, **kwargs})


def updates(agent, count: int) -> list:
    return [agent.update() for _ in range(count)]


def assert_same_infos(a: list, b: list) -> None:
    """Update infos equal, but for clock readings."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            if not any(word in key for word in ("second", "time", "per_s")):
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)
