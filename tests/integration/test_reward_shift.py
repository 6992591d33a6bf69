"""The training-only reward shift (ARS's survival-bonus removal) and presets
that choose their algorithm."""

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.agents import PES
from pes_rl.agents.presets import PRESETS
from pes_rl.cli.flags import parse_config
from pes_rl.core.problem_window import ProblemBackend
from pes_rl.envs import GymnasiumBackend
from pes_rl.problems.toys import LinearQuadratic


def lq_window(shift: float):
    make = functools.partial(
        gym.make, "linear_quadratic", max_episode_steps=6, terminate_above=1.5
    )
    backend = GymnasiumBackend(make, 2, 6, seed=0, reward_shift=shift)
    actions = np.array([[1.0], [0.0]], np.float32)
    return backend.unroll(lambda obs: actions, 8, collect_obs=True)


def test_host_window_returns_lose_the_shift_per_live_step():
    plain, shifted = lq_window(0.0), lq_window(0.5)
    # Particle 0 terminates after 2 steps and absorbs; particle 1 runs 6.
    np.testing.assert_array_equal(plain.obs_count, [2, 6])
    np.testing.assert_allclose(shifted.returns, plain.returns - 0.5 * plain.obs_count)
    # Episode returns are the env's own.
    np.testing.assert_array_equal(shifted.episode_returns, plain.episode_returns)
    assert shifted.completed.all()


def test_jitted_window_returns_lose_the_shift_per_live_step():
    # Episodes of 2 steps in a window of 3: the third step runs nobody.
    problem = LinearQuadratic(horizon=2)
    outs = []
    for shift in (0.0, 0.25):
        backend = ProblemBackend(problem, 4, reward_shift=shift)
        carry = backend.init(jax.random.key(0))
        params = jnp.stack([jnp.array([0.5, 0.0])] * 4)
        _, out = jax.jit(backend.unroll, static_argnums=3)(
            carry, params, (jnp.zeros(0), jnp.ones(0)), 3, jnp.ones(4, bool)
        )
        outs.append(out)
    plain, shifted = outs
    np.testing.assert_allclose(shifted.returns, plain.returns - 0.25 * 2, rtol=1e-6)
    assert int(plain.completed_count) == 4 and plain.completed_return_sum < 0
    assert shifted.completed_return_sum == plain.completed_return_sum


def test_evaluation_ignores_the_shift():
    kwargs = dict(
        num_particles=4, truncation_length=20, stagger=False, seed=1, preset=None
    )
    plain = PES("Pendulum-v1", **kwargs)
    shifted = PES("Pendulum-v1", reward_shift=3.0, **kwargs)
    np.testing.assert_array_equal(
        plain.evaluate_episodes(2), shifted.evaluate_episodes(2)
    )
    # Pendulum never terminates: every particle lives the whole window.
    before, after = plain.update(), shifted.update()
    assert after["window_return"] == pytest.approx(before["window_return"] - 60.0)
    plain.close(), shifted.close()


def test_the_jitted_engine_shifts_training_only():
    # Built one after the other: a cached engine must not carry the shift over.
    kwargs = dict(
        num_particles=4, truncation_length=5, stagger=False, seed=1, preset=None
    )
    plain = PES(problem=LinearQuadratic(), **kwargs)
    shifted = PES(problem=LinearQuadratic(), reward_shift=1.0, **kwargs)
    np.testing.assert_array_equal(
        plain.evaluate_episodes(2), shifted.evaluate_episodes(2)
    )
    before, after = plain.update(), shifted.update()
    assert after["window_return"] == pytest.approx(before["window_return"] - 5.0)
    plain.close(), shifted.close()


def test_a_preset_chooses_its_algorithm(monkeypatch):
    monkeypatch.setitem(
        PRESETS,
        "swimmer",
        {
            "algo": "nres",
            "common": {"sigma": 0.2},
            "nres": {"learning_rate": 0.07},
            "pes": {"learning_rate": 0.01},
        },
    )
    config = parse_config(["--env", "swimmer"])
    assert (config.algo, config.sigma, config.learning_rate) == ("nres", 0.2, 0.07)
    config = parse_config(["--env", "swimmer", "--algo", "pes"])
    assert (config.algo, config.learning_rate) == ("pes", 0.01)
    assert parse_config(["--env", "linear_quadratic"]).algo == "pes"
