"""Shipped toy problems with known answers.

- ``LinearQuadratic``: the linear-quadratic task of ``pes_rl.envs.toy``
  with its linear policy folded in: theta weighs the observation
  ``[1, t / T]``. Smoothed gradients are exact (rewards are quadratic in
  theta), the statistical tests' ground truth.
- ``InfluenceBalancing``: Tallec and Ollivier, "Unbiased Online Recurrent
  Optimization", ICLR 2018 (arXiv 1702.05043), section 5, as the PES paper
  uses it (Vicol et al. 2021, arXiv 2112.13835) to show truncation bias.
- ``LRScheduleToy``: the PES paper's learning-rate schedule toy
  (google-research ``persistent_es/toy_regression.py``): theta is two log
  learning rates of a linear schedule for SGD on a 2-D loss with one global
  minimum and many local ones; the meta-objective is the sum of the inner
  losses along the run.
"""

from typing import Any

import jax
import jax.numpy as jnp


class LinearQuadratic:
    """``s' = rho s + a`` from 0, reward ``-(s' - target)^2``, action
    ``a = theta . [1, t / T]`` clipped to +-100 (the env's action space)."""

    def __init__(self, horizon: int = 20, rho: float = 0.9, target: float = 1.0):
        self.horizon, self.rho, self.target = horizon, rho, target

    def init_params(self, key: jax.Array) -> jax.Array:
        return jnp.zeros(2, jnp.float32)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        return {"s": jnp.zeros((), jnp.float32), "t": jnp.zeros((), jnp.int32)}

    def step(self, params: jax.Array, state: dict, key: jax.Array):
        obs = jnp.stack([1.0, state["t"] / self.horizon]).astype(jnp.float32)
        action = jnp.clip(params @ obs, -100.0, 100.0)
        s = self.rho * state["s"] + action
        reward = -((s - self.target) ** 2)
        return {"s": s, "t": state["t"] + 1}, reward, jnp.zeros((), bool)


class InfluenceBalancing:
    """A state of ``state_dim`` numbers starts at ones and follows
    ``s' = A s + theta * sign`` (A: 0.5 on the diagonal and the
    superdiagonal; sign +1 on the first ``num_positive`` coordinates, -1 on
    the rest); the loss of a step is ``0.5 (s'[0] - 1)^2``. Theta reaches
    ``s[0]`` at once with a positive sign; the negative coordinates reach it
    only through the chain of couplings, tens of steps later."""

    def __init__(
        self,
        horizon: int = 200,
        state_dim: int = 23,
        num_positive: int = 10,
        theta0: float = 0.5,
    ):
        self.horizon, self.theta0 = horizon, theta0
        self.sign = jnp.where(jnp.arange(state_dim) < num_positive, 1.0, -1.0)

    def init_params(self, key: jax.Array) -> jax.Array:
        return jnp.full((1,), self.theta0, jnp.float32)

    def init(self, key: jax.Array) -> jax.Array:
        return jnp.ones_like(self.sign)

    def step(self, params: jax.Array, state: jax.Array, key: jax.Array):
        nxt = 0.5 * state + params[0] * self.sign
        nxt = nxt.at[:-1].add(0.5 * state[1:])
        return nxt, -0.5 * (nxt[0] - 1.0) ** 2, jnp.zeros((), bool)


def toy_regression_loss(x: jax.Array) -> jax.Array:
    """The PES paper's 2-D inner loss: its global minimum is at x = (0, 100),
    with a local minimum near every multiple of pi along x[1]."""
    return (
        jnp.sqrt(x[0] ** 2 + 5.0)
        - jnp.sqrt(5.0)
        + jnp.sin(x[1]) ** 2 * jnp.exp(-5.0 * x[0] ** 2)
        + 0.25 * jnp.abs(x[1] - 100.0)
    )


class LRScheduleToy:
    """SGD on ``toy_regression_loss`` from x = (1, 1) for ``horizon`` steps
    with ``lr_t = (1 - t/T) exp(theta_0) + (t/T) exp(theta_1)`` (weight decay
    1e-10, as the paper's code); the reward of a step is minus the loss after
    it. The log learning rates are clipped to [-20, 10] so that a wild
    theta (a bad outer step size) gives a finite loss, not an overflow."""

    weight_decay = 1e-10

    def __init__(self, horizon: int = 100, theta0: tuple = (-4.0, -4.0)):
        self.horizon, self.theta0 = horizon, theta0

    def init_params(self, key: jax.Array) -> jax.Array:
        return jnp.asarray(self.theta0, jnp.float32)

    def init(self, key: jax.Array) -> dict[str, Any]:
        return {"x": jnp.ones(2, jnp.float32), "t": jnp.zeros((), jnp.int32)}

    def learning_rate(self, params: jax.Array, t: jax.Array) -> jax.Array:
        fraction = t / self.horizon
        rates = jnp.exp(jnp.clip(params, -20.0, 10.0))
        return (1 - fraction) * rates[0] + fraction * rates[1]

    def step(self, params: jax.Array, state: dict, key: jax.Array):
        x = state["x"]
        grad = jax.grad(toy_regression_loss)(x) + self.weight_decay * x
        x = x - self.learning_rate(params, state["t"]) * grad
        reward = -toy_regression_loss(x)
        return {"x": x, "t": state["t"] + 1}, reward, jnp.zeros((), bool)
