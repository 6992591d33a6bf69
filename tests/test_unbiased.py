"""Statistical checks of unbiasedness against a known gradient.

The task is the linear-quadratic toy env (``pes_rl.envs.toy``): with a linear
policy on its state-independent observation, every window return is quadratic
in the parameters, so Gaussian smoothing changes it only by a constant and
the exact gradient of the unperturbed unroll, computed here with ``jax.grad``,
is the gradient the estimators must match on average.

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

from pes_rl.agents import NRES, PES, FullES, TruncatedES
from pes_rl.schedules import LinearDecay

HORIZON, WINDOW = 20, 5
NUM_WINDOWS = HORIZON // WINDOW
RHO, TARGET = 0.9, 1.0
THETA = jnp.array([0.3, -0.4])  # kernel of the linear policy on obs [1, t/T]
SIGMA = 0.2
NUM_SEEDS = 24
NUM_PARTICLES = 64  # 32 pairs: 8 at each of the 4 staggered offsets
TOLERANCE = 4.0
# Keeps theta fixed, so every sample shares it; one instance lets all agents
# share their compiled functions.
FROZEN = optax.set_to_zero()


def window_returns(theta_per_window: jnp.ndarray) -> jnp.ndarray:
    """Return of each window when window w acts with theta_per_window[w]."""
    state, returns = 0.0, []
    for w in range(NUM_WINDOWS):
        total = 0.0
        for t in range(w * WINDOW, (w + 1) * WINDOW):
            action = theta_per_window[w] @ jnp.array([1.0, t / HORIZON])
            state = RHO * state + action
            total = total - (state - TARGET) ** 2
        returns.append(total)
    return jnp.stack(returns)


# d R_w / d theta_v for every window pair (w, v): [W, W, D].
JACOBIAN = jax.jacobian(window_returns)(jnp.tile(THETA, (NUM_WINDOWS, 1)))
# The objective per window, averaged over window positions, is what a
# staggered PES/NRES window estimates: (1/W) sum_w dR_w/dtheta.
TRUE_PER_WINDOW = JACOBIAN.sum(axis=(0, 1)) / NUM_WINDOWS
# Truncated ES sees only the current window's own parameters.
TRUNCATED_PER_WINDOW = jnp.einsum("wwd->d", JACOBIAN) / NUM_WINDOWS


BACKENDS = ["gymnasium", "brax"]


def make_agent(cls, seed, sigma=SIGMA, **kwargs):
    agent = cls(
        env="linear_quadratic",
        num_particles=NUM_PARTICLES,
        truncation_length=WINDOW,
        horizon=HORIZON,
        sigma=sigma,
        optimizer=FROZEN,
        seed=seed,
        **kwargs,
    )
    agent.theta = THETA.astype(jnp.float32)
    return agent


@functools.cache
def samples(cls, num_updates: int, sigma=SIGMA, backend="gymnasium") -> np.ndarray:
    """Per seed, the mean of the first ``num_updates`` estimates."""
    out = []
    for seed in range(NUM_SEEDS):
        agent = make_agent(cls, seed, sigma, backend=backend)
        out.append(np.mean([agent.update()["grad"] for _ in range(num_updates)], 0))
    return np.array(out)


def z_scores(draws: np.ndarray, truth) -> np.ndarray:
    standard_error = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    return (draws.mean(axis=0) - np.asarray(truth)) / standard_error


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [PES, NRES])
def test_first_update_after_staggered_start_is_unbiased(cls, backend):
    z = z_scores(samples(cls, 1, backend=backend), TRUE_PER_WINDOW)
    assert np.all(np.abs(z) < TOLERANCE), z


def test_pes_with_a_sigma_schedule_is_unbiased():
    # sigma changes every window, during the warm-up and after it.
    draws = samples(PES, NUM_WINDOWS, LinearDecay(0.3, 0.1, 2 * NUM_WINDOWS))
    z = z_scores(draws, TRUE_PER_WINDOW)
    assert np.all(np.abs(z) < TOLERANCE), z


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [PES, NRES])
def test_later_updates_are_unbiased(cls, backend):
    z = z_scores(samples(cls, NUM_WINDOWS, backend=backend), TRUE_PER_WINDOW)
    assert np.all(np.abs(z) < TOLERANCE), z


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_es_is_unbiased_for_the_episode_return(backend):
    z = z_scores(samples(FullES, 1, backend=backend), JACOBIAN.sum(axis=(0, 1)))
    assert np.all(np.abs(z) < TOLERANCE), z


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_es_is_biased(backend):
    # One episode of the shared trajectory: TES's mean estimate matches the
    # truncated gradient and misses the true one by many standard errors.
    draws = samples(TruncatedES, NUM_WINDOWS, backend=backend)
    assert np.all(np.abs(z_scores(draws, TRUNCATED_PER_WINDOW)) < TOLERANCE)
    assert np.max(np.abs(z_scores(draws, TRUE_PER_WINDOW))) > 5


def test_naive_offset_without_perturbed_warm_up_is_biased():
    """Why the warm-up runs perturbed windows: starting PES pairs mid-episode
    with accumulators that never saw the earlier windows' noise is the same
    as truncated gradients for those windows, which this test detects."""
    draws = []
    for seed in range(NUM_SEEDS):
        agent = make_agent(PES, seed, stagger=False)
        agent.update()  # window 0 of every pair
        _, est_state = agent._fns.tell(  # drop the accumulated noise
            agent.est_state,
            jnp.zeros(NUM_PARTICLES),
            jnp.ones(NUM_PARTICLES, bool),
        )
        agent.est_state = est_state
        draws.append(agent.update()["grad"])  # window 1, accumulators naive
    expected_truncated = JACOBIAN[1, 1]
    expected_true = JACOBIAN[1].sum(axis=0)
    assert np.all(np.abs(z_scores(np.array(draws), expected_truncated)) < TOLERANCE)
    assert np.max(np.abs(z_scores(np.array(draws), expected_true))) > 10
