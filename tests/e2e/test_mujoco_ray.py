"""The mujoco backend on Ray workers (a local Ray with 3 logical CPUs):
each worker steps its block of pairs in one mujoco.batch, with the numbers
of one process on either backend, a lost worker's window replayed."""

import logging
import os
import sys

import numpy as np
import pytest

from pes_rl.agents import PES

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]"')

SETTINGS = dict(
    env="hopper", num_particles=8, truncation_length=20, horizon=60,
    obs_norm=True, sigma=0.1, learning_rate=0.05, seed=3, preset=None,
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(
        num_cpus=3,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(map(str, sys.path))}},
    )
    yield
    ray.shutdown()


def train(updates: int, after=None, **kwargs):
    agent = PES(**{**SETTINGS, **kwargs})
    try:
        for i in range(updates):
            agent.update()
            if after is not None:
                after(i, agent)
        return np.asarray(agent.theta), agent.env_steps, agent.loop.backend.description
    finally:
        agent.close()


@pytest.mark.slow  # minutes: Ray starts workers that import JAX and MuJoCo
def test_batched_ray_workers_match_one_process_with_a_lost_worker(caplog):
    expected = train(5, backend="gymnasium")

    def kill(i, agent):
        if i == 1:  # between windows: the next window finds it gone
            ray.kill(agent.loop.backend.workers[0])

    with caplog.at_level(logging.WARNING, logger="pes_rl.envs.backends.ray_workers"):
        theta, steps, description = train(
            5, after=kill, backend="mujoco", workers="ray", num_workers=2
        )
    assert description == "cpu, 2 Ray workers, one mujoco.batch each"
    np.testing.assert_array_equal(theta, expected[0])
    assert steps == expected[1]
    assert "replays its window from the env snapshots" in caplog.text
