"""Exact answers for the influence-balancing problem
(``pes_rl.problems.toys.InfluenceBalancing``), from its own step function.

Every state is affine in a constant theta, so the episode return is
quadratic in it: ``jax.grad`` of the full unroll gives the exact gradient,
and one Newton step from 0 the exact optimum.
"""

import functools

import jax
import jax.numpy as jnp

from pes_rl.problems.toys import InfluenceBalancing


def step_rewards(thetas: jax.Array, horizon: int) -> jax.Array:
    """Reward of every step of one run when step t acts with ``thetas[t]``."""
    problem = InfluenceBalancing(horizon=horizon)

    def step(state, theta):
        state, reward, _ = problem.step(jnp.reshape(theta, (1,)), state, None)
        return state, reward

    _, rewards = jax.lax.scan(step, problem.init(None), thetas)
    return rewards


def episode_return(theta: jax.Array, horizon: int) -> jax.Array:
    """Return of one run with a constant ``theta`` (a scalar)."""
    return step_rewards(jnp.full(horizon, theta), horizon).sum()


@functools.partial(jax.jit, static_argnames="horizon")
def exact_gradient(theta, horizon: int) -> jax.Array:
    """d(return)/d(theta) of the full unroll; ``theta`` may be an array."""
    grad = jax.vmap(jax.grad(episode_return), in_axes=(0, None))
    return grad(jnp.ravel(theta), horizon).reshape(jnp.shape(theta))


@functools.partial(jax.jit, static_argnames="horizon")
def truncated_gradient(theta, horizon: int) -> jax.Array:
    """What truncated ES with K = 1 follows, summed over a run: each step's
    reward differentiated only through that step's own theta (the diagonal
    of the per-step Jacobian)."""

    def diagonal(x):
        return jnp.trace(jax.jacobian(step_rewards)(jnp.full(horizon, x), horizon))

    return jax.vmap(diagonal)(jnp.ravel(theta)).reshape(jnp.shape(theta))


def optimum(horizon: int) -> float:
    """The maximiser of the return: one Newton step from 0 (quadratic)."""
    grad = jax.grad(episode_return)
    curvature = jax.grad(grad)(0.0, horizon)
    return float(-grad(0.0, horizon) / curvature)
