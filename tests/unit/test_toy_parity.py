"""The toy task's numpy (Gymnasium) and JAX (Brax) versions agree step for
step on the same actions."""

import gymnasium as gym
import jax
import numpy as np
import pytest

from pes_rl.envs import LinearQuadraticEnv


@pytest.mark.parametrize("terminate_above", [None, 3.0])
def test_numpy_and_jax_versions_agree(terminate_above):
    from pes_rl.envs.toy_brax import LinearQuadraticBrax

    kwargs = {"episode_length": 20, "terminate_above": terminate_above}
    numpy_env = LinearQuadraticEnv(**kwargs)
    jax_env = LinearQuadraticBrax(**kwargs)
    step = jax.jit(jax_env.step)
    low = -1.0 if terminate_above is None else 0.0  # positive actions terminate
    actions = np.random.default_rng(0).uniform(low, 1.0, (20, 1)).astype(np.float32)
    obs, _ = numpy_env.reset(seed=0)
    state = jax_env.reset(jax.random.key_data(jax.random.key(0)))
    np.testing.assert_allclose(state.obs, obs)
    for action in actions:
        obs, reward, terminated, _, _ = numpy_env.step(action)
        state = step(state, action)
        np.testing.assert_allclose(state.obs, obs, rtol=1e-6)
        np.testing.assert_allclose(state.reward, reward, rtol=1e-5, atol=1e-6)
        assert bool(state.done) == terminated
        if terminated:
            break
    assert terminated == (terminate_above is not None)


def test_registered_under_one_name_for_both_backends():
    from pes_rl.envs.registry import _CUSTOM

    entry = _CUSTOM["linear_quadratic"]
    assert entry.brax == "pes_rl.envs.toy_brax:LinearQuadraticBrax"
    assert gym.spec("linear_quadratic").max_episode_steps == 20
