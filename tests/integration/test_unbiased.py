"""Statistical checks of unbiasedness against a known gradient.

The task is the linear-quadratic toy env (``pes_rl.envs.toy``): with a linear
policy on its state-independent observation, every window return is quadratic
in the parameters, so Gaussian smoothing changes it only by a constant and
the exact gradient of the unperturbed unroll (``lq_exact``) is the gradient
the estimators must match on average. With observation normalisation the
policy stays linear in its parameters, so the same holds under any fixed
normaliser.

These tests are probabilistic: each sample is one gradient estimate from an
agent with its own seed, and the mean over seeds must lie within
``TOLERANCE`` standard errors of the truth in every coordinate. The seeds are
fixed, so the outcome is reproducible; with independent draws a false
failure would happen with probability below 1e-3.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from lq_exact import linear, staggered_gradient, window_jacobian, z_scores

from pes_rl.agents import NRES, PES, FullES, TruncatedES
from pes_rl.core import estimators
from pes_rl.core.schedules import LinearDecay
from pes_rl.problems.toys import LinearQuadratic

HORIZON, WINDOW = 20, 5
NUM_WINDOWS = HORIZON // WINDOW
THETA = jnp.array([0.3, -0.4])  # kernel of the linear policy on obs [1, t/T]
SIGMA = 0.2
NUM_SEEDS = 24
NUM_PARTICLES = 64  # 32 pairs: 8 at each of the 4 staggered offsets
TOLERANCE = 4.0
# Keeps theta fixed, so every sample shares it; one instance lets all agents
# share their compiled functions.
FROZEN = optax.set_to_zero()


@functools.cache
def jacobian() -> np.ndarray:
    """d R_w / d theta_v for every window pair (w, v): [W, W, D]. Computed
    when a test first needs it, not while every worker collects."""
    return np.asarray(window_jacobian(linear, THETA, HORIZON, WINDOW))


def true_per_window() -> np.ndarray:
    """What a staggered PES/NRES window estimates: the objective per window
    averaged over window positions, (1/W) sum_w dR_w/dtheta."""
    return jacobian().sum(axis=(0, 1)) / NUM_WINDOWS


def truncated_per_window() -> np.ndarray:
    """Truncated ES sees only the current window's own parameters."""
    return np.einsum("wwd->d", jacobian()) / NUM_WINDOWS


# The toy as an env on both backends, and as a Problem on the jitted engine.
ENV_BACKENDS = ["gymnasium", "brax"]
BACKENDS = [*ENV_BACKENDS, "problem"]
LQ_PROBLEM = LinearQuadratic(horizon=HORIZON)  # one object: shared compiles


def make_agent(cls, seed, sigma=SIGMA, optimizer=FROZEN, backend="gymnasium", **kwargs):
    task = {"problem": LQ_PROBLEM}
    if backend != "problem":
        task = {"env": "linear_quadratic", "backend": backend}
    agent = cls(
        **task,
        num_particles=NUM_PARTICLES,
        truncation_length=WINDOW,
        horizon=HORIZON,
        sigma=sigma,
        optimizer=optimizer,
        seed=seed,
        preset=None,  # raw returns: the unbiased estimate
        **kwargs,
    )
    agent.theta = THETA.astype(jnp.float32)
    return agent


@functools.cache
def estimates(cls, num_updates: int, sigma, backend) -> np.ndarray:
    """Per seed, the first ``num_updates`` estimates: [seed, update, dim]."""
    out = []
    for seed in range(NUM_SEEDS):
        agent = make_agent(cls, seed, sigma, backend=backend)
        out.append([agent.update()["grad"] for _ in range(num_updates)])
    return np.array(out)


def samples(cls, num_updates: int, sigma=SIGMA, backend="gymnasium") -> np.ndarray:
    """Per seed, the mean of the first ``num_updates`` estimates. PES and
    NRES agents run every window of an episode once, and the tests of the
    first update and of later ones read the same agents."""
    runs = max(num_updates, NUM_WINDOWS) if cls in (PES, NRES) else num_updates
    return estimates(cls, runs, sigma, backend)[:, :num_updates].mean(axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [PES, NRES])
def test_first_update_after_staggered_start_is_unbiased(cls, backend):
    z = z_scores(samples(cls, 1, backend=backend), true_per_window())
    assert np.all(np.abs(z) < TOLERANCE), z


def test_pes_with_a_sigma_schedule_is_unbiased():
    # sigma changes every window, during the warm-up and after it.
    draws = samples(PES, NUM_WINDOWS, LinearDecay(0.3, 0.1, 2 * NUM_WINDOWS))
    z = z_scores(draws, true_per_window())
    assert np.all(np.abs(z) < TOLERANCE), z


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [PES, NRES])
def test_later_updates_are_unbiased(cls, backend):
    z = z_scores(samples(cls, NUM_WINDOWS, backend=backend), true_per_window())
    assert np.all(np.abs(z) < TOLERANCE), z


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_es_is_unbiased_for_the_episode_return(backend):
    z = z_scores(samples(FullES, 1, backend=backend), jacobian().sum(axis=(0, 1)))
    assert np.all(np.abs(z) < TOLERANCE), z


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_es_is_biased(backend):
    # One episode of the shared trajectory: TES's mean estimate matches the
    # truncated gradient and misses the true one by many standard errors.
    draws = samples(TruncatedES, NUM_WINDOWS, backend=backend)
    assert np.all(np.abs(z_scores(draws, truncated_per_window())) < TOLERANCE)
    assert np.max(np.abs(z_scores(draws, true_per_window()))) > 5


def test_naive_offset_without_perturbed_warm_up_is_biased():
    """Why the warm-up runs perturbed windows: starting PES pairs mid-episode
    with accumulators that never saw the earlier windows' noise is the same
    as truncated gradients for those windows, which this test detects."""
    draws = []
    for seed in range(NUM_SEEDS):
        agent = make_agent(PES, seed, stagger=False)
        agent.update()  # window 0 of every pair
        _, est_state = estimators.pes().tell(  # drop the accumulated noise
            agent.est_state,
            jnp.zeros(NUM_PARTICLES),
            jnp.ones(NUM_PARTICLES, bool),
        )
        agent.est_state = est_state
        draws.append(agent.update()["grad"])  # window 1, accumulators naive
    expected_truncated = jacobian()[1, 1]
    expected_true = jacobian()[1].sum(axis=0)
    assert np.all(np.abs(z_scores(np.array(draws), expected_truncated)) < TOLERANCE)
    assert np.max(np.abs(z_scores(np.array(draws), expected_true))) > 10


# With obs_norm the linear policy has a bias: theta = (bias, kernel[0], kernel[1]).
THETA_WITH_BIAS = jnp.array([0.1, 0.3, -0.4])


@jax.jit
def normalized_truth(theta, mean, inv_std):
    """The exact staggered gradient of the linear policy with a bias,
    theta = (bias, kernel), under the normaliser (mean, inv_std)."""

    def act(theta, obs):
        return theta[0] + theta[1:] @ ((obs - mean) * inv_std)

    return staggered_gradient(act, theta, HORIZON, WINDOW)


@functools.cache
def obs_norm_errors(cls, backend: str, optimizer=FROZEN) -> np.ndarray:
    """Per seed: the second update's estimate minus the exact staggered
    gradient at theta under the normaliser read just before that update."""
    errors = []
    for seed in range(NUM_SEEDS):
        agent = make_agent(
            cls, seed, optimizer=optimizer, backend=backend, obs_norm=True
        )
        agent.theta = THETA_WITH_BIAS
        agent.update()
        # The layout normalized_truth assumes: (bias, kernel).
        assert ravel_pytree(agent.params)[0].shape == (3,)
        assert float(agent.params["params"]["Dense_0"]["bias"][0]) == agent.theta[0]
        truth = normalized_truth(agent.theta, *agent.obs_normalizer())
        errors.append(agent.update()["grad"] - np.asarray(truth))
    return np.array(errors)


@pytest.mark.parametrize("backend", ENV_BACKENDS)
@pytest.mark.parametrize("cls", [PES, NRES])
def test_unbiased_under_the_normaliser_in_force(cls, backend):
    # Observations [1, t/T] change within an episode and the statistics move
    # after every window, during the warm-up and after it.
    z = z_scores(obs_norm_errors(cls, backend), 0.0)
    assert np.all(np.abs(z) < TOLERANCE), z


def test_normaliser_changes_bias_persistent_particles_without_reexpression(
    monkeypatch,
):
    """What the change of variables fixes: the same test finds the estimate
    biased when theta and the accumulators keep their old coordinates."""
    import pes_rl.core.train_state

    def keep_coordinates(unravel):
        return lambda theta, eps, score, opt_state, old, new: (
            theta,
            eps,
            score,
            opt_state,
        )

    monkeypatch.setattr(pes_rl.core.train_state, "make_renormalize", keep_coordinates)
    # Another optimiser object: agents of this recipe compile afresh.
    z = z_scores(obs_norm_errors(PES, "gymnasium", optax.set_to_zero()), 0.0)
    assert np.max(np.abs(z)) > TOLERANCE, z
