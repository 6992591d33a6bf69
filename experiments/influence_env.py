"""The influence-balancing task as a Gymnasium env, plus its JAX unroll.

Tallec and Ollivier, "Unbiased Online Recurrent Optimization", ICLR 2018
(arXiv 1702.05043), section 5; used by Vicol, Metz and Sohl-Dickstein (PES,
ICML 2021, arXiv 2112.13835) to show truncation bias. A state of ``n`` numbers
starts at ones and follows ``s' = A s + theta * sign`` with ``A`` = 0.5 on the
diagonal and 0.5 on the superdiagonal, and ``sign`` = +1 on the first
``num_positive`` coordinates and -1 on the rest. The loss of each step is
``0.5 * (s'[0] - 1)^2``; the reward is its negative. A change of the scalar
``theta`` reaches ``s[0]`` at once with a positive sign, but the negative
coordinates feed into ``s[0]`` only through the chain of superdiagonal
couplings, so their (larger) effect arrives tens of steps later: a positive
short-term and a negative long-term influence.

The action is ``theta``. The observation is the constant ``[1]``, so the
single weight of pes_rl's linear policy (no bias) *is* theta.
"""

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from pes_rl.envs import register

ENV_NAME = "influence_balancing"
STATE_DIM = 23
NUM_POSITIVE = 10
HORIZON = 200


class InfluenceBalancingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, state_dim: int = STATE_DIM, num_positive: int = NUM_POSITIVE):
        self.sign = np.where(np.arange(state_dim) < num_positive, 1.0, -1.0)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1e6, 1e6, (1,), np.float32)
        self.state = np.ones(state_dim)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = np.ones_like(self.sign)
        return np.ones(1, np.float32), {}

    def step(self, action):
        theta = float(np.asarray(action).reshape(-1)[0])
        s = self.state
        nxt = 0.5 * s + theta * self.sign
        nxt[:-1] += 0.5 * s[1:]
        self.state = nxt
        reward = -0.5 * (nxt[0] - 1.0) ** 2
        return np.ones(1, np.float32), reward, False, False, {}


register(ENV_NAME, gymnasium=InfluenceBalancingEnv, max_episode_steps=HORIZON)


def step_rewards(
    thetas: jax.Array, state_dim: int = STATE_DIM, num_positive: int = NUM_POSITIVE
) -> jax.Array:
    """Reward of every step of one episode when step t acts with
    ``thetas[t]``: the same dynamics as the env, in JAX."""
    sign = jnp.where(jnp.arange(state_dim) < num_positive, 1.0, -1.0)

    def step(s, theta):
        nxt = 0.5 * s + theta * sign
        nxt = nxt.at[:-1].add(0.5 * s[1:])
        return nxt, -0.5 * (nxt[0] - 1.0) ** 2

    _, rewards = jax.lax.scan(step, jnp.ones(state_dim), thetas)
    return rewards


def episode_return(theta: jax.Array, horizon: int = HORIZON) -> jax.Array:
    """Return of one episode with a constant ``theta`` (a scalar)."""
    return step_rewards(jnp.full(horizon, theta)).sum()


@functools.partial(jax.jit, static_argnames="horizon")
def exact_gradient(theta: jax.Array, horizon: int = HORIZON) -> jax.Array:
    """d(episode return)/d(theta) of the full unroll by ``jax.grad``; ``theta``
    may be an array of values."""
    grad = jax.grad(episode_return)
    return jax.vmap(grad, in_axes=(0, None))(jnp.ravel(theta), horizon).reshape(
        jnp.shape(theta)
    )


@functools.partial(jax.jit, static_argnames="horizon")
def truncated_gradient(theta: jax.Array, horizon: int = HORIZON) -> jax.Array:
    """What truncated ES with K = 1 follows, summed over an episode: each
    step's reward differentiated only through that step's own theta (the
    diagonal of the per-step Jacobian)."""

    def diagonal(x):
        return jnp.trace(jax.jacobian(step_rewards)(jnp.full(horizon, x)))

    return jax.vmap(diagonal)(jnp.ravel(theta)).reshape(jnp.shape(theta))


def optimum(horizon: int = HORIZON) -> float:
    """The maximiser of the episode return. The return is quadratic in theta
    (every state is affine in it), so one Newton step from 0 is exact."""
    grad = jax.grad(episode_return)
    curvature = jax.grad(grad)(0.0, horizon)
    return float(-grad(0.0, horizon) / curvature)
