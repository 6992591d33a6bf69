"""The window rules (``pes_rl.core.window_rules``: pairs, absorbing ends,
the episode clock, resets) give the same per-member bookkeeping on the host
backend (numpy, Gymnasium envs) and the jitted one (jax, a Problem): random
episode lengths and terminations, random active masks, run through both
window after window."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.core.problem_window import ProblemBackend
from pes_rl.core.window_rules import pair_partners
from pes_rl.envs.backends.gymnasium import GymnasiumBackend

HORIZON = 7
MAX_LENGTH = 9  # some episodes end by termination, others at the horizon


def _ends(t, a):
    """An episode terminates at step t once t >= 1 + floor(a * MAX_LENGTH):
    its length follows the member's action, drawn anew every window."""
    return t >= 1 + np.floor(a * MAX_LENGTH)


class CountdownEnv(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.t], np.float32), {}

    def step(self, action):
        a = float(action[0])
        self.t += 1
        obs = np.array([self.t], np.float32)
        return obs, a + self.t, bool(_ends(self.t, a)), False, {}


class CountdownProblem:
    horizon = HORIZON

    def init_params(self, key):
        return jnp.zeros((), jnp.float32)

    def init(self, key):
        return jnp.zeros((), jnp.int32)

    def step(self, a, t, key):
        t = t + 1
        return t, a + t, t >= 1 + jnp.floor(a * MAX_LENGTH)


def _partners(num_envs, broadcast_from):
    partner = pair_partners(num_envs)
    if broadcast_from is not None:  # truncated ES's extra particle
        partner[broadcast_from] = broadcast_from
    return partner


@pytest.mark.parametrize(
    "num_envs, num_steps, broadcast_from, reward_shift",
    [(6, 3, None, 0.0), (8, 1, None, 0.5), (4, 10, None, 0.0), (5, 3, 4, 0.0)],
)
def test_host_and_jitted_backends_keep_the_same_books(
    num_envs, num_steps, broadcast_from, reward_shift
):
    partner = _partners(num_envs, broadcast_from)
    host = GymnasiumBackend(
        CountdownEnv, num_envs, HORIZON, 0, partner, reward_shift=reward_shift
    )
    jitted = ProblemBackend(CountdownProblem(), num_envs, partner, reward_shift)
    unroll = jax.jit(jitted.unroll, static_argnums=(3, 5, 6))
    carry = jitted.init(jax.random.key(0))
    normalizer = (jnp.zeros(1), jnp.ones(1))
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "horizon": 0}
    for _ in range(60):
        actions = rng.uniform(0, 1, num_envs).astype(np.float32)
        if broadcast_from is None:  # pairs idle together (staggered warm-up)
            active = np.repeat(rng.random((num_envs + 1) // 2) < 0.8, 2)[:num_envs]
        else:
            active = np.ones(num_envs, bool)
        result = host.unroll(
            lambda obs, a=actions: a[:, None], num_steps, active, broadcast_from
        )
        carry, out = unroll(
            carry, jnp.asarray(actions), normalizer, num_steps,
            jnp.asarray(active), broadcast_from, False,
        )  # fmt: skip
        assert result.failure is None and bool(out.finite)
        np.testing.assert_array_equal(
            np.asarray(out.episode_ended), result.episode_ended
        )
        np.testing.assert_allclose(np.asarray(out.returns), result.returns, rtol=1e-5)
        assert int(out.env_steps) == result.env_steps
        assert int(out.completed_count) == result.completed.sum()
        np.testing.assert_allclose(
            float(out.completed_return_sum), result.completed_returns.sum(), rtol=1e-5
        )
        for name in ("clock", "alive", "needs_reset"):
            np.testing.assert_array_equal(
                np.asarray(getattr(carry, name)), getattr(host, name), err_msg=name
            )
        np.testing.assert_allclose(
            np.asarray(carry.episode_return), host.episode_return, rtol=1e-5
        )
        # Which rule ended the episodes, so that both are exercised.
        at_horizon = result.completed & (host.clock >= HORIZON)
        ends["horizon"] += int(at_horizon.sum())
        ends["terminated"] += int((result.completed & ~at_horizon).sum())
    host.close()
    assert ends["terminated"] > 0 and ends["horizon"] > 0, ends
