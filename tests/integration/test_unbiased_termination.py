"""Unbiasedness with early termination, against an exact gradient.

The task (``tests/support/hazard_env.py``) ends a pair's episode after each step with
a known hazard drawn from the pair's shared reset seed, and terminates the
one member of each pair whose first action exceeds theta's first parameter
after step RULE_STEP, while its partner goes on. The objective per step t is
``E[r_t 1{step t runs}]``: the hazard survival probabilities are known, and
the rule multiplies later rewards by an indicator of a perturbed parameter,
whose smoothed value comes from truncated-normal moments (``lq_exact``).
Episodes end early, so pairs restart at window boundaries and their window
positions (phases) drift; their distribution follows from the hazard by a
recursion over windows.

These tests are probabilistic: the mean estimate over seeds must lie within
``TOLERANCE`` standard errors of the truth in every coordinate. The seeds are
fixed, so the outcome is reproducible.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hazard_env import HazardEnv
from lq_exact import linear, rewards, smoothed, z_scores

from pes_rl.agents import NRES, PES, FullES
from pes_rl.envs import register

HORIZON, WINDOW = 20, 5
NUM_WINDOWS = HORIZON // WINDOW
HAZARD, RULE_STEP = 0.04, 8
THETA = jnp.array([0.3, -0.4])  # the rule's threshold is THETA[0]
SIGMA = 0.2
NUM_SEEDS, NUM_PARTICLES, TOLERANCE = 24, 64, 4.0
FROZEN = optax.set_to_zero()

register(
    "lq_hazard",
    gymnasium=HazardEnv,
    brax="hazard_brax:HazardBrax",  # imports Brax when a test first needs it
    max_episode_steps=HORIZON,
    hazard=HAZARD,
    rule_step=RULE_STEP,
    rule_threshold=float(THETA[0]),
)


def window_objective(theta, phase, window: int, shared_noise: bool):
    """Expected return of the window at ``phase`` of an episode that is alive
    when the window starts. ``shared_noise``: one perturbation for the whole
    episode (NRES, FullES); otherwise one per window (PES). Every window of
    the episode draws its noise, though the window at ``phase`` reads only
    its own and earlier ones: ``phase`` is then traced, and one compile
    serves every phase."""
    dim, num_windows = theta.shape[0], HORIZON // window
    num_z = dim if shared_noise else num_windows * dim

    def window_rewards(z):
        noise = z.reshape(-1, dim) * SIGMA
        if shared_noise:
            noise = jnp.tile(noise, (num_windows, 1))
        steps = rewards(linear, theta + noise, HORIZON, window)
        return jax.lax.dynamic_slice(steps, (phase * window,), (window,))

    steps = phase * window + jnp.arange(1, window + 1)  # 1-based, in the episode
    threshold = (THETA[0] - theta[0]) / SIGMA  # z_0 below it: no rule termination
    expected = jnp.where(
        steps > RULE_STEP,
        smoothed(window_rewards, num_z, threshold),
        smoothed(window_rewards, num_z),
    )
    return ((1 - HAZARD) ** jnp.arange(window) * expected).sum()


window_gradient = jax.jit(jax.grad(window_objective), static_argnums=(2, 3))


def phase_distribution(windows_run: int) -> np.ndarray:
    """Probabilities of a pair's phase after ``windows_run`` windows from the
    start of an episode: a window ends the episode by the hazard, or at the
    horizon after the last window."""
    probs = np.eye(NUM_WINDOWS)[0]
    ends = np.full(NUM_WINDOWS, 1 - (1 - HAZARD) ** WINDOW)
    ends[-1] = 1.0
    for _ in range(windows_run):
        moved = np.zeros(NUM_WINDOWS)
        moved[0] = (probs * ends).sum()
        moved[1:] = (probs * (1 - ends))[:-1]
        probs = moved
    return probs


def staggered_truth(shared_noise: bool, num_updates: int) -> np.ndarray:
    """The mean of the first ``num_updates`` expected estimates after the
    staggered warm-up: pair j starts ``offset_j`` windows before the first
    update (the agent's offsets), at the start of an episode."""
    gradients = np.array(
        [
            window_gradient(THETA, phase, WINDOW, shared_noise)
            for phase in range(NUM_WINDOWS)
        ]
    )
    num_pairs = NUM_PARTICLES // 2
    offsets = (np.arange(num_pairs) * NUM_WINDOWS) // num_pairs
    weights = np.mean(
        [
            phase_distribution(offset + update)
            for offset in offsets
            for update in range(num_updates)
        ],
        axis=0,
    )
    return weights @ gradients


@functools.cache
def samples(cls, num_updates: int, backend: str) -> np.ndarray:
    out = []
    for seed in range(NUM_SEEDS):
        agent = cls(
            env="lq_hazard",
            backend=backend,
            num_particles=NUM_PARTICLES,
            truncation_length=WINDOW,
            horizon=HORIZON,
            sigma=SIGMA,
            optimizer=FROZEN,
            seed=seed,
            preset=None,  # raw returns: the unbiased estimate
        )
        agent.theta = THETA.astype(jnp.float32)
        out.append(np.mean([agent.update()["grad"] for _ in range(num_updates)], 0))
    return np.array(out)


@pytest.mark.parametrize("backend", ["gymnasium", "brax"])
@pytest.mark.parametrize("cls", [PES, NRES])
def test_persistent_estimators_are_unbiased_with_termination(cls, backend):
    truth = staggered_truth(shared_noise=cls is NRES, num_updates=NUM_WINDOWS)
    z = z_scores(samples(cls, NUM_WINDOWS, backend), truth)
    assert np.all(np.abs(z) < TOLERANCE), z


@pytest.mark.parametrize("backend", ["gymnasium", "brax"])
def test_full_es_is_unbiased_with_termination(backend):
    truth = window_gradient(THETA, 0, HORIZON, True)
    z = z_scores(samples(FullES, 1, backend), truth)
    assert np.all(np.abs(z) < TOLERANCE), z


def test_the_truth_sees_the_termination():
    """The same test rejects the gradient without termination: the tests
    above would notice an estimator that ignored it."""
    draws = samples(PES, NUM_WINDOWS, "gymnasium")
    no_termination = jax.grad(
        lambda theta: (
            sum(
                window_objective_without_termination(theta, phase)
                for phase in range(NUM_WINDOWS)
            )
            / NUM_WINDOWS
        )
    )(THETA)
    assert np.max(np.abs(z_scores(draws, no_termination))) > TOLERANCE


def window_objective_without_termination(theta, phase):
    per_window = jnp.tile(theta, (NUM_WINDOWS, 1))
    steps = rewards(linear, per_window, HORIZON, WINDOW)
    return steps[phase * WINDOW : (phase + 1) * WINDOW].sum()
