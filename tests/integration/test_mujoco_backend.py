"""The mujoco backend equals the Gymnasium backend bit for bit.

Pools: 8 particles, 2,000 steps of random actions, with early terminations
(absorbing: an ended env is not stepped), time-limit truncations and
resets with the same seeds; observations, rewards and terminations are
compared with ``==``, not a tolerance. Backends: windows of a random policy
with pairs, then snapshots moved between envs; which backend auto picks.
Whole runs on both backends: e2e/test_mujoco_runs.py.
"""

import gymnasium as gym
import numpy as np
import pytest
from mujoco_runs import mujoco_agent

from pes_rl.cli.train import main
from pes_rl.envs.backends.gymnasium import GymnasiumBackend
from pes_rl.envs.backends.mujoco_batch import BatchPool, MujocoBackend
from pes_rl.envs.backends.pool import SerialPool
from pes_rl.envs.registry import gymnasium_factory
from pes_rl.errors import ConfigError

NUM_ENVS, NUM_STEPS, RESET_EVERY = 8, 2000, 40

# (env id, horizon, constructor keywords): horizons short enough that
# episodes are truncated as well as terminated within 2,000 steps.
CASES = [
    ("Swimmer-v5", 300, {}),
    ("Swimmer-v5", 300, {"exclude_current_positions_from_observation": False}),
    ("HalfCheetah-v5", 300, {"ctrl_cost_weight": 0.3}),
    ("Hopper-v5", 300, {}),
    ("Walker2d-v5", 300, {"healthy_z_range": (0.9, 2.0)}),
    ("Ant-v5", 200, {}),
    ("Ant-v5", 200, {"include_cfrc_ext_in_observation": False, "main_body": "torso"}),
    (
        "Ant-v5",
        200,
        {"include_cfrc_ext_in_observation": False, "contact_cost_weight": 0},
    ),
    ("InvertedPendulum-v5", 300, {}),
    ("InvertedDoublePendulum-v5", 300, {}),
    ("Reacher-v5", 50, {"reward_control_weight": 0.5}),
    ("Humanoid-v5", 100, {}),
    ("Humanoid-v5", 100, {"include_cinert_in_observation": False}),
]


def _run_pool(pool, num_steps: int, seed: int):
    """Random actions on the live envs; ended envs wait for the next reset
    (every RESET_EVERY steps), as absorbing members wait for a window."""
    rng = np.random.default_rng(seed)
    low, high = pool.action_space.low, pool.action_space.high
    live = np.zeros(NUM_ENVS, bool)
    trace = []
    for step in range(num_steps):
        if step % RESET_EVERY == 0:
            ended = np.flatnonzero(~live)
            seeds = rng.integers(2**31 - 1, size=ended.size)
            if ended.size:
                trace.append(("reset", ended, pool.reset(ended, seeds)))
            live[ended] = True
        actions = rng.uniform(low, high, (NUM_ENVS, len(low))).astype(np.float32)
        index = np.flatnonzero(live)
        if index.size == 0:
            continue
        obs, rewards, done = pool.step(index, actions[index])
        trace.append(("step", index, obs, rewards, done))
        live[index[done]] = False
    return trace


def _assert_pools_agree(env_id, horizon, kwargs, num_steps):
    make_env, _, _ = gymnasium_factory(env_id, horizon, kwargs)
    gym_pool = SerialPool(make_env, NUM_ENVS)
    batch_pool = BatchPool(make_env, NUM_ENVS, 2)
    try:
        expected = _run_pool(gym_pool, num_steps, seed=3)
        got = _run_pool(batch_pool, num_steps, seed=3)
    finally:
        gym_pool.close()
        batch_pool.close()
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a[0] == b[0]
        for x, y in zip(a[1:], b[1:], strict=True):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    done = np.concatenate([t[4] for t in expected if t[0] == "step"])
    assert done.any()  # the run had episode ends to compare


@pytest.mark.parametrize(("env_id", "horizon", "kwargs"), CASES)
def test_pool_equals_gymnasium_bit_for_bit(env_id, horizon, kwargs):
    """The default suite's share: 200 steps, episodes of at most 60."""
    _assert_pools_agree(env_id, min(horizon, 60), kwargs, 200)


@pytest.mark.slow
@pytest.mark.parametrize(("env_id", "horizon", "kwargs"), CASES)
def test_pool_equals_gymnasium_over_2000_steps(env_id, horizon, kwargs):
    _assert_pools_agree(env_id, horizon, kwargs, NUM_STEPS)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Ant-v5"])
def test_snapshots_move_between_the_backends(env_id):
    """A snapshot of one backend continues in the other, identically."""
    make_env, horizon, _ = gymnasium_factory(env_id, 100)
    gym_pool, batch_pool = SerialPool(make_env, 2), BatchPool(make_env, 2, 1)
    try:
        for pool in (gym_pool, batch_pool):
            pool.reset([0, 1], [5, 6])
            pool.step([0, 1], np.full((2, pool.action_space.shape[0]), 0.3, np.float32))
        batch_pool.restore([1], gym_pool.snapshot(0))
        gym_pool.restore([1], batch_pool.snapshot(0))
        actions = np.full((2, gym_pool.action_space.shape[0]), -0.2, np.float32)
        for _ in range(20):
            a, b = gym_pool.step([0, 1], actions), batch_pool.step([0, 1], actions)
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)
    finally:
        gym_pool.close()
        batch_pool.close()


def test_a_snapshot_continues_in_a_fresh_gymnasium_env():
    """A resume on the Gymnasium backend (or an older MuJoCo) restores the
    batch's snapshots into envs never reset; older checkpoints hold the
    physics as a bare array."""
    make_env, _, _ = gymnasium_factory("Hopper-v5", 100)
    batch_pool, fresh = BatchPool(make_env, 1, 1), SerialPool(make_env, 1)
    other = BatchPool(make_env, 1, 1)
    try:
        batch_pool.reset([0], [5])
        action = np.full((1, 3), 0.3, np.float32)
        batch_pool.step([0], action)
        snapshot = batch_pool.snapshot(0)
        (physics, _), wrappers = snapshot
        restores = [(fresh, snapshot), (other, (physics, wrappers))]
        for pool, saved in restores:
            pool.restore([0], saved)
            result = zip(
                pool.step([0], action), batch_pool.step([0], action), strict=True
            )
            for x, y in result:
                np.testing.assert_array_equal(x, y)
            batch_pool.restore([0], snapshot)
    finally:
        for pool in (batch_pool, fresh, other):
            pool.close()


def _random_policy(seed: int):
    rng = np.random.default_rng(seed)
    return lambda obs: rng.normal(size=(obs.shape[0], 3)).astype(np.float32)


def test_backend_windows_equal_gymnasium():
    """Pairs, absorbing ends and window resets: the same window results and
    particles on both backends."""
    make_env, horizon, _ = gymnasium_factory("Hopper-v5", 150)
    results = []
    for cls in (GymnasiumBackend, MujocoBackend):
        backend = cls(make_env, 6, horizon, seed=11)
        try:
            policy = _random_policy(0)
            windows = [backend.unroll(policy, 40, collect_obs=True) for _ in range(8)]
            results.append((windows, backend.bookkeeping()))
        finally:
            backend.close()
    (gym_windows, gym_book), (batch_windows, batch_book) = results
    assert any(w.completed.any() for w in gym_windows)
    for a, b in zip(gym_windows, batch_windows, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    for name in gym_book:
        np.testing.assert_array_equal(gym_book[name], batch_book[name])


def test_auto_picks_mujoco_for_covered_ids_only():
    agent = mujoco_agent("auto")
    try:
        assert agent.backend_name == "mujoco"
        assert "mujoco.batch" in agent.device_description
    finally:
        agent.close()
    for env in ("CartPole-v1", gym.make("Swimmer-v5")):
        other = mujoco_agent("auto", env, num_particles=2, horizon=None)
        try:
            assert other.backend_name == "gymnasium"
        finally:
            other.close()


def test_mujoco_refuses_an_env_it_does_not_cover():
    with pytest.raises(ConfigError, match="the mujoco backend runs"):
        mujoco_agent("mujoco", "CartPole-v1")


def test_cli_refuses_mujoco_for_an_uncovered_env(tmp_path, capsys):
    run_dir = tmp_path / "r"
    args = ["--env", "CartPole-v1", "--backend", "mujoco", "--run-dir", str(run_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert "the mujoco backend runs" in err
    assert not run_dir.exists()


def test_without_mujoco_batch_auto_keeps_gymnasium(monkeypatch):
    """An older MuJoCo (no mujoco.batch): auto runs Gymnasium, and asking for
    the mujoco backend names the version it needs."""
    import pes_rl.envs.backends.mujoco_batch as mujoco_batch

    monkeypatch.setattr(mujoco_batch, "Batch", None)
    agent = mujoco_agent("auto", num_particles=2)
    try:
        assert agent.backend_name == "gymnasium"
    finally:
        agent.close()
    with pytest.raises(ConfigError, match="needs MuJoCo 4.0 or later"):
        mujoco_agent("mujoco")
