"""The change of variables that moves the policy with the normaliser."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from pes_rl.core.normalization import (
    STD_FLOOR,
    RunningStats,
    make_renormalize,
    normalizer_jax,
    reexpress_params,
)
from pes_rl.core.policies import LinearPolicy, MLPPolicy

OBS_DIM = 3
OLD = (jnp.array([0.5, -1.0, 2.0]), jnp.array([2.0, 0.5, 1.0]))
NEW = (jnp.array([0.7, -0.2, 1.0]), jnp.array([1.0, 4.0, 0.25]))


def random_params(module, seed):
    params = module.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    flat, unravel = ravel_pytree(params)
    return unravel(jax.random.normal(jax.random.key(seed), flat.shape)), unravel


@pytest.mark.parametrize(
    "module",
    [LinearPolicy(2, use_bias=True), MLPPolicy(2, (4,)), LinearPolicy(2)],
    ids=["linear", "mlp", "linear-no-bias"],
)
def test_every_policy_acts_as_before(module):
    params, _ = random_params(module, 1)
    old, new = OLD, NEW
    if module == LinearPolicy(2):  # without a bias: scale only, no centring
        old, new = (jnp.zeros(OBS_DIM), OLD[1]), (jnp.zeros(OBS_DIM), NEW[1])
    obs = jax.random.normal(jax.random.key(2), (16, OBS_DIM)) * 3
    before = module.apply(params, (obs - old[0]) * old[1])
    after = module.apply(reexpress_params(params, old, new), (obs - new[0]) * new[1])
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_scores_and_adam_moments_move_as_gradients():
    """<M^-T g, M d> = <g, d>: the score (and Adam's first moment) pair with
    perturbations as before, so E[score R] stays the gradient."""
    module = MLPPolicy(2, (4,))
    params, unravel = random_params(module, 3)
    theta = ravel_pytree(params)[0]
    renormalize = make_renormalize(unravel)
    eps = jax.random.normal(jax.random.key(4), (2, theta.size))
    score = jax.random.normal(jax.random.key(5), (2, theta.size))
    tx = optax.adam(0.1)
    opt_state = tx.init(theta)
    _, opt_state = tx.update(score[0], opt_state, theta)
    theta2, eps2, score2, opt2 = renormalize(theta, eps, score, opt_state, OLD, NEW)
    np.testing.assert_allclose(score2 @ eps2.T, score @ eps.T, rtol=1e-4)
    mu, mu2 = opt_state[0].mu, opt2[0].mu
    np.testing.assert_allclose(mu2 @ eps2[0], mu @ eps[0], rtol=1e-4)
    assert np.all(np.asarray(opt2[0].nu) >= 0)
    # Unchanged statistics change nothing, bit for bit.
    same = renormalize(theta, eps, score, opt_state, OLD, OLD)
    for a, b in zip(
        jax.tree.leaves(same),
        jax.tree.leaves((theta, eps, score, opt_state)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_the_std_floor_bounds_the_gain_of_a_constant_feature():
    stats = RunningStats(
        jnp.float32(10.0), jnp.array([1.0, 0.0]), jnp.array([0.0, 10.0])
    )
    mean, inv_std = normalizer_jax(stats, True)
    np.testing.assert_allclose(inv_std, [1 / STD_FLOOR, 1.0])
    np.testing.assert_allclose(mean, [1.0, 0.0])
    assert not np.asarray(normalizer_jax(stats, True, center=False)[0]).any()
