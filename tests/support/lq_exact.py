"""Exact gradients on the linear-quadratic toy (``pes_rl.envs.toy``), the
ground truth of the statistical tests.

The state follows ``s' = rho * s + a`` from 0, the reward is
``-(s' - target)^2`` and the observation before step t (1-based) is
``[1, (t - 1) / T]``. With a policy linear in its parameters every reward is
quadratic in the parameters of the windows so far, so Gaussian smoothing
changes its mean only by a constant and gradients of the unperturbed unroll
are the smoothed gradients. Where a termination rule multiplies rewards by an
indicator of a perturbed parameter, the smoothed value uses the moments of a
truncated normal instead (``smoothed_masked``).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

RHO, TARGET = 0.9, 1.0

# (params of the window, observation [2]) -> action
Act = Callable[[jax.Array, jax.Array], jax.Array]


def linear(theta: jax.Array, obs: jax.Array) -> jax.Array:
    """The linear policy without bias and without normalisation."""
    return theta @ obs


def rewards(act: Act, per_window: jax.Array, horizon: int, window: int):
    """Reward of every step [T] when window w acts with ``per_window[w]``."""
    t = jnp.arange(horizon)
    obs = jnp.stack([jnp.ones(horizon), t / horizon], axis=1)
    actions = jax.vmap(act)(per_window[t // window], obs)
    # s_t = sum_{k <= t} rho^(t - k) a_k
    lag = t[:, None] - t[None, :]
    states = jnp.where(lag >= 0, RHO ** jnp.maximum(lag, 0), 0.0) @ actions
    return -((states - TARGET) ** 2)


def window_jacobian(act: Act, theta: jax.Array, horizon: int, window: int):
    """d R_w / d theta_v for every pair of windows (w, v): [W, W, D]."""
    num_windows = horizon // window

    def window_returns(per_window):
        return rewards(act, per_window, horizon, window).reshape(num_windows, -1).sum(1)

    return jax.jacobian(window_returns)(jnp.tile(theta, (num_windows, 1)))


def staggered_gradient(act: Act, theta, horizon: int, window: int) -> jax.Array:
    """What a staggered PES or NRES window estimates: the gradient of the
    window return averaged over the window positions, (1/W) sum_w dR_w/dtheta."""
    jacobian = window_jacobian(act, theta, horizon, window)
    return jacobian.sum(axis=(0, 1)) / jacobian.shape[0]


def smoothed(quadratics: Callable, dim: int, threshold=None) -> jax.Array:
    """E[q_i(z)] for z ~ N(0, I_dim) and a vector of quadratics q, or with
    ``threshold`` E[q_i(z) 1{z_0 <= threshold}] (truncated-normal moments)."""
    zero = jnp.zeros(dim)
    constant = quadratics(zero)
    linear_part = jax.jacfwd(quadratics)(zero)  # [n, dim]
    half_hessian = jax.jacfwd(jax.jacrev(quadratics))(zero) / 2  # [n, dim, dim]
    laplacian = jnp.trace(half_hessian, axis1=1, axis2=2)
    if threshold is None:
        return constant + laplacian
    below, density = norm.cdf(threshold), norm.pdf(threshold)
    first = half_hessian[:, 0, 0]
    return (
        (constant + laplacian - first) * below
        - linear_part[:, 0] * density
        + first * (below - threshold * density)
    )


def z_scores(draws, truth):
    """Per coordinate, how many standard errors the mean of ``draws`` [S, D]
    (one estimate per seed) lies from ``truth``."""
    standard_error = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    return (draws.mean(axis=0) - np.asarray(truth)) / standard_error
