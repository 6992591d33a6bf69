"""Gradient estimators for online evolution strategies, as pure functions.

PES: Vicol, Metz and Sohl-Dickstein, "Unbiased Gradient Estimation in Unrolled
Computation Graphs with Persistent Evolution Strategies", ICML 2021
(arXiv 2112.13835), Algorithm 2. NRES: Li et al. 2023 (arXiv 2304.12180).
TES: the same paper's Algorithm 1. FullES: Salimans et al. 2017
(arXiv 1703.03864).

Symbols follow the PES paper: ``sigma`` is the perturbation scale, ``eps`` a
particle's perturbation for the current window, and the weight w_i of its
window return is xi (PES: the sum of its perturbations since its episode
began) or eps. The ascent direction on expected return is
``g = sum_i w_i R_i / (N sigma^2)``. ``sigma`` is an argument of each
``ask`` (as evosax passes its params), so it may change from window to
window without recompiling; the state keeps ``score = sum eps / sigma_w^2``
over the windows (Stein's lemma per window), which is ``w / sigma^2`` for a
constant sigma, and ``g = sum_i score_i R_i / N``.

Particles come in antithetic pairs laid out next to each other: particle 2j
uses +eps_j and particle 2j+1 uses -eps_j. The four estimators differ only in
two switches, so they share one implementation.
"""

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

FitnessShaping = Literal["none", "std", "centered_ranks"]
FITNESS_SHAPINGS = ("none", "std", "centered_ranks")


@struct.dataclass
class EstimatorState:
    eps: jax.Array  # [N, D] perturbation used in the current window
    score: jax.Array  # [N, D] weight / sigma^2: sum eps/sigma^2 (PES) or eps/sigma^2
    redraw: jax.Array  # [N] bool, draw a fresh eps at the next ask


class Estimator(NamedTuple):
    """A bundle of pure functions closed over the estimator's structure (its
    switches and fitness shaping); sigma is an argument.

    ``init(num_particles, dim)`` makes the state; ``ask(key, state, sigma,
    inverse_variance=None)`` draws the perturbations of the next window into
    ``state.eps`` (``inverse_variance``, 1 / sigma^2, may be given as taken
    elsewhere); ``tell(state, returns, episode_ended)`` returns the ascent
    direction and the state for the next window, clearing what an ended
    episode invalidates.
    """

    init: Callable[[int, int], EstimatorState]
    ask: Callable[..., EstimatorState]
    tell: Callable[
        [EstimatorState, jax.Array, jax.Array], tuple[jax.Array, EstimatorState]
    ]


def shape_fitness(returns: jax.Array, shaping: FitnessShaping) -> jax.Array:
    """Transform window returns before weighting.

    "std" divides by the standard deviation of the window returns (the PES
    paper's Swimmer setting): the step length adapts, and since the std comes
    from the same noisy returns the estimate is only approximately unbiased.
    "centered_ranks" replaces returns by their ranks scaled into [-0.5, 0.5]
    (Salimans et al. 2017): robust to outliers, and biased.
    """
    if shaping == "none":
        return returns
    if shaping == "std":
        std = jnp.std(returns)
        return jnp.where(std > 0, returns / jnp.where(std > 0, std, 1.0), 0.0)
    if shaping == "centered_ranks":
        ranks = jnp.argsort(jnp.argsort(returns)).astype(returns.dtype)
        return ranks / (returns.shape[0] - 1) - 0.5
    raise ValueError(f"unknown fitness shaping {shaping!r}")


def make_estimator(
    *,
    accumulate: bool,
    reuse_noise: bool,
    fitness_shaping: FitnessShaping = "none",
) -> Estimator:
    """The shared engine. ``accumulate`` weights returns by xi (PES);
    ``reuse_noise`` keeps eps for a whole episode (NRES)."""
    if fitness_shaping not in FITNESS_SHAPINGS:
        raise ValueError(f"unknown fitness shaping {fitness_shaping!r}")

    def init(num_particles: int, dim: int) -> EstimatorState:
        zeros = jnp.zeros((num_particles, dim), jnp.float32)
        return EstimatorState(
            eps=zeros,
            score=zeros,
            redraw=jnp.ones((num_particles,), bool),
        )

    def ask(key, state: EstimatorState, sigma, inverse_variance=None):
        num_particles, dim = state.eps.shape
        if inverse_variance is None:
            inverse_variance = 1.0 / sigma**2
        half = sigma * jax.random.normal(key, (num_particles // 2, dim))
        fresh = jnp.stack([half, -half], axis=1).reshape(num_particles, dim)
        if reuse_noise:  # an episode keeps its eps and the sigma it was drawn with
            redraw = state.redraw[:, None]
            eps = jnp.where(redraw, fresh, state.eps)
            score = jnp.where(redraw, fresh * inverse_variance, state.score)
        else:
            eps = fresh
            score = fresh * inverse_variance + (state.score if accumulate else 0.0)
        return EstimatorState(eps=eps, score=score, redraw=jnp.zeros_like(state.redraw))

    def tell(state: EstimatorState, returns: jax.Array, episode_ended: jax.Array):
        fitness = shape_fitness(returns.astype(jnp.float32), fitness_shaping)
        grad = state.score.T @ fitness / returns.shape[0]
        if accumulate:  # an ended episode's accumulator starts again from zero
            score = jnp.where(episode_ended[:, None], 0.0, state.score)
        else:
            score = state.score
        return grad, state.replace(score=score, redraw=episode_ended)

    return Estimator(init=init, ask=ask, tell=tell)


def pes(fitness_shaping: FitnessShaping = "none") -> Estimator:
    return make_estimator(
        accumulate=True, reuse_noise=False, fitness_shaping=fitness_shaping
    )


def nres(fitness_shaping: FitnessShaping = "none") -> Estimator:
    return make_estimator(
        accumulate=False, reuse_noise=True, fitness_shaping=fitness_shaping
    )


def truncated_es(fitness_shaping: FitnessShaping = "none") -> Estimator:
    """TES and FullES share this rule; they differ in how the backend runs
    windows (a shared start state, or whole episodes from reset)."""
    return make_estimator(
        accumulate=False,
        reuse_noise=False,
        fitness_shaping=fitness_shaping,
    )
