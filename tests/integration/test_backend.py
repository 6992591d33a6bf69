"""Gymnasium backend: pairs, absorbing members, window-boundary resets,
warm-up idling and the truncated-ES state copy."""

import functools

import gymnasium as gym
import numpy as np
import pytest

from pes_rl.envs import GymnasiumBackend, LinearQuadraticEnv
from pes_rl.envs.backends.pool import restore_env, snapshot_env


def lq_backend(num_envs=2, horizon=6, **env_kwargs):
    make = functools.partial(
        gym.make, "linear_quadratic", max_episode_steps=horizon, **env_kwargs
    )
    return GymnasiumBackend(make, num_envs, horizon, seed=0)


def constant_policy(actions):
    actions = np.asarray(actions, np.float32).reshape(-1, 1)
    return lambda obs: actions


def test_early_terminated_member_absorbs_until_its_pair_ends():
    # Particle 0 pushes the state past 1.5 at its second step and terminates;
    # particle 1 stays at s = 0 and runs to the horizon (6 steps).
    backend = lq_backend(horizon=6, terminate_above=1.5)
    policy = constant_policy([1.0, 0.0])
    first = backend.unroll(policy, 4)
    # s = 1, then 0.9 + 1 = 1.9: rewards 0 and -(0.9)^2, then nothing.
    np.testing.assert_allclose(first.returns, [-(0.9**2), -4.0])
    assert first.env_steps == 2 + 4
    assert not first.episode_ended.any()
    second = backend.unroll(policy, 4)
    np.testing.assert_allclose(second.returns, [0.0, -2.0])
    assert second.env_steps == 2  # only the live member is stepped
    assert second.episode_ended.all()  # the horizon ended the pair's episode
    np.testing.assert_allclose(sorted(second.completed_returns), [-6.0, -(0.9**2)])
    third = backend.unroll(policy, 4)  # reset at the window boundary
    np.testing.assert_allclose(third.returns, [-(0.9**2), -4.0])


def test_pair_ends_early_when_both_members_terminate():
    backend = lq_backend(horizon=6, terminate_above=0.5)
    result = backend.unroll(constant_policy([1.0, -1.0]), 4)
    assert result.env_steps == 2
    assert result.episode_ended.all()


def test_pairs_share_reset_seeds_and_pairs_differ():
    backend = GymnasiumBackend(
        functools.partial(gym.make, "Swimmer-v5"), 4, horizon=1000, seed=3
    )
    backend.reset(np.ones(4, bool))
    np.testing.assert_array_equal(backend.obs[0], backend.obs[1])
    np.testing.assert_array_equal(backend.obs[2], backend.obs[3])
    assert not np.array_equal(backend.obs[0], backend.obs[2])


def test_inactive_envs_are_not_stepped_and_report_ended():
    backend = lq_backend(num_envs=4, horizon=6)
    active = np.array([True, True, False, False])
    result = backend.unroll(constant_policy([0.0] * 4), 3, active=active)
    assert result.env_steps == 6
    np.testing.assert_array_equal(result.episode_ended, ~active)
    np.testing.assert_array_equal(result.returns[2:], 0.0)
    # They start from reset when they become active.
    result = backend.unroll(constant_policy([0.0] * 4), 3)
    np.testing.assert_array_equal(backend.clock, [6, 6, 3, 3])


def test_broadcast_copies_the_source_state_into_all_particles():
    backend = lq_backend(num_envs=3, horizon=6)
    backend.partner = np.array([1, 0, 2])
    backend.unroll(constant_policy([0.0, 0.0, 1.0]), 2, broadcast_from=2)
    states = [env.unwrapped.state for env in backend.pool.envs]
    assert states[2] == pytest.approx(1.9)
    backend.unroll(constant_policy([0.0, 0.0, 0.0]), 1, broadcast_from=2)
    # Every env started the window from s = 1.9, then took action 0.
    np.testing.assert_allclose(
        [env.unwrapped.state for env in backend.pool.envs], 0.9 * 1.9
    )


def test_mujoco_state_copy_gives_identical_trajectories():
    source, target = gym.make("Swimmer-v5"), gym.make("Swimmer-v5")
    source.reset(seed=1)
    target.reset(seed=2)
    for _ in range(5):
        source.step(np.array([0.5, -0.3], np.float32))
    restore_env(target, snapshot_env(source))
    action = np.array([-0.2, 0.7], np.float32)
    for _ in range(3):
        a, b = source.step(action), target.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]


def test_non_finite_reward_names_particle_and_step():
    class NanAfterTwo(LinearQuadraticEnv):
        def step(self, action):
            obs, reward, term, trunc, info = super().step(action)
            return obs, (np.nan if self.t == 2 else reward), term, trunc, info

    backend = GymnasiumBackend(
        lambda: gym.wrappers.TimeLimit(NanAfterTwo(), 10), 2, 10, seed=0
    )
    result = backend.unroll(constant_policy([0.0, 0.0]), 5)
    # The window stops there and says why; the agent raises NonFiniteError.
    assert "particle 0 at step 2 of its episode" in result.failure
    assert result.env_steps == 2 * 2
