"""Estimator maths with hand-computed numbers (N = 2 particles, D = 2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.core.estimators import (
    EstimatorState,
    nres,
    pes,
    shape_fitness,
    truncated_es,
)
from pes_rl.core.schedules import LinearDecay


def state(weight, sigma, eps=None):
    """A state whose window-return weight (xi or eps) is ``weight``."""
    weight = jnp.asarray(weight, jnp.float32)
    return EstimatorState(
        eps=weight if eps is None else jnp.asarray(eps, jnp.float32),
        score=weight / sigma**2,
        redraw=jnp.zeros(weight.shape[0], bool),
        span_return=jnp.zeros(weight.shape[0], jnp.float32),
        span_windows=jnp.zeros(weight.shape[0], jnp.float32),
    )


def test_tell_is_weighted_sum_over_n_sigma_squared():
    # g = (xi_0 R_0 + xi_1 R_1) / (N sigma^2) with sigma = 0.5, N = 2:
    # ((1, 2) * 3 + (-1, -2) * 1) / 0.5 = (2, 4) / 0.5 = (4, 8)
    grad, _ = pes().tell(
        state([[1.0, 2.0], [-1.0, -2.0]], 0.5),
        jnp.array([3.0, 1.0]),
        jnp.array([False, False]),
    )
    np.testing.assert_allclose(grad, [4.0, 8.0])


def test_ask_draws_antithetic_pairs_scaled_by_sigma():
    estimator = truncated_es()
    s = estimator.ask(jax.random.key(0), estimator.init(4, 3), 0.3)
    np.testing.assert_allclose(s.eps[1], -s.eps[0])
    np.testing.assert_allclose(s.eps[3], -s.eps[2])
    z = jax.random.normal(jax.random.key(0), (2, 3))
    np.testing.assert_allclose(s.eps[::2], 0.3 * z, rtol=1e-6)


def test_pes_accumulates_until_the_episode_ends():
    estimator = pes()
    s = estimator.init(2, 2)
    s1 = estimator.ask(jax.random.key(1), s, 1.0)
    s2 = estimator.ask(jax.random.key(2), s1, 1.0)
    np.testing.assert_allclose(s2.score, s1.eps + s2.eps, rtol=1e-6)
    # xi includes this window's eps, and the weight used is xi, not eps:
    # R = (1, 0) gives g = xi_0 / 2.
    grad, s3 = estimator.tell(s2, jnp.array([1.0, 0.0]), jnp.array([False, False]))
    np.testing.assert_allclose(grad, s2.score[0] / 2, rtol=1e-6)
    np.testing.assert_allclose(s3.score, s2.score)
    # The episode ends: the accumulator restarts from the next window's eps.
    _, s4 = estimator.tell(s3, jnp.array([1.0, 0.0]), jnp.array([True, True]))
    np.testing.assert_allclose(s4.score, 0.0)
    s5 = estimator.ask(jax.random.key(3), s4, 1.0)
    np.testing.assert_allclose(s5.score, s5.eps)


def test_nres_reuses_noise_within_an_episode_and_redraws_after():
    estimator = nres()
    s1 = estimator.ask(jax.random.key(1), estimator.init(2, 2), 1.0)
    _, s1 = estimator.tell(s1, jnp.array([1.0, 2.0]), jnp.array([False, False]))
    s2 = estimator.ask(jax.random.key(2), s1, 1.0)
    np.testing.assert_allclose(s2.eps, s1.eps)
    np.testing.assert_allclose(s2.score, s1.eps)  # the weight is eps, never a sum
    _, s2 = estimator.tell(s2, jnp.array([1.0, 2.0]), jnp.array([True, True]))
    s3 = estimator.ask(jax.random.key(3), s2, 1.0)
    assert not np.allclose(s3.eps, s1.eps)


@pytest.mark.parametrize("make", [truncated_es, nres])
def test_weight_is_this_windows_eps(make):
    # R = (2, 4), eps = +-(0.5, -1), sigma = 0.5:
    # g = ((0.5, -1) * 2 + (-0.5, 1) * 4) / (2 * 0.25) = (-1, 2) / 0.5 = (-2, 4)
    eps = [[0.5, -1.0], [-0.5, 1.0]]
    grad, _ = make().tell(
        state(eps, 0.5), jnp.array([2.0, 4.0]), jnp.array([False, False])
    )
    np.testing.assert_allclose(grad, [-2.0, 4.0])


def test_fitness_shaping():
    returns = jnp.array([3.0, 1.0, 2.0, 0.0])
    np.testing.assert_allclose(shape_fitness(returns, "none"), returns)
    np.testing.assert_allclose(
        shape_fitness(returns, "std"), returns / np.std([3.0, 1.0, 2.0, 0.0]), rtol=1e-6
    )
    np.testing.assert_allclose(
        shape_fitness(returns, "centered_ranks"), [0.5, -1 / 6, 1 / 6, -0.5], rtol=1e-6
    )
    # Equal returns carry no information: zero, not a division by zero.
    np.testing.assert_allclose(shape_fitness(jnp.ones(4), "std"), 0.0)


def test_sigma_schedule_weights_each_window_by_its_own_sigma():
    estimator = pes()
    decay = LinearDecay(start=1.0, end=0.5, steps=1)
    s1 = estimator.ask(jax.random.key(1), estimator.init(2, 2), decay(0))
    s2 = estimator.ask(jax.random.key(2), s1, decay(1))
    z = jax.random.normal(jax.random.key(2), (1, 2))[0]
    np.testing.assert_allclose(s2.eps[0], 0.5 * z, rtol=1e-6)
    np.testing.assert_allclose(s2.score, s1.eps / 1.0 + s2.eps / 0.25, rtol=1e-6)
