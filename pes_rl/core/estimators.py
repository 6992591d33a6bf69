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

Top-b directions (ARS, Mania et al. 2018, arXiv 1803.07055, V1-t/V2-t):
with ``top_pairs`` b, an update weighs only the b pairs whose better member
earned the most per window over the span its noise has been in use: the
window for PES and truncated ES (fresh noise every window), the episode so
far for NRES (one eps per episode; per window, since staggered pairs are at
different points of their episodes), the episode for full-episode ES.
Fitness shaping then sees the 2b kept returns and the sum is divided by
2b. Selecting on the returns biases the estimate, as centred ranks do: it
favours the perturbations that happened to do well.
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
    span_return: jax.Array  # [N] returns since eps was drawn (top-b's ranking)
    span_windows: jax.Array  # [N] windows since eps was drawn


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


def top_pairs_mask(span_mean: jax.Array, top_pairs: int | None) -> jax.Array:
    """[N] bool: both members of the ``top_pairs`` pairs with the highest
    max(R+, R-) (ties to the lower pair index); all particles for None."""
    if top_pairs is None:
        return jnp.ones(span_mean.shape, bool)
    best = span_mean.reshape(-1, 2).max(axis=1)
    kept = jnp.zeros(best.shape, bool).at[jax.lax.top_k(best, top_pairs)[1]].set(True)
    return jnp.repeat(kept, 2)


def shape_kept(returns: jax.Array, kept: jax.Array, shaping: FitnessShaping):
    """Fitness of the kept particles, shaped among themselves; 0 elsewhere."""
    count = kept.sum()
    if shaping == "std":
        mean = jnp.where(kept, returns, 0.0).sum() / count
        var = jnp.where(kept, (returns - mean) ** 2, 0.0).sum() / count
        std = jnp.sqrt(var)
        fitness = jnp.where(std > 0, returns / jnp.where(std > 0, std, 1.0), 0.0)
    elif shaping == "centered_ranks":
        # Ranks among the kept; the others sort below all of them.
        order = jnp.where(kept, returns, -jnp.inf)
        ranks = jnp.argsort(jnp.argsort(order)) - (returns.shape[0] - count)
        fitness = ranks.astype(returns.dtype) / (count - 1) - 0.5
    else:
        fitness = returns
    return jnp.where(kept, fitness, 0.0)


def _direction(score, returns, span_mean, shaping, top_pairs):
    """``g = sum_i score_i f_i / n`` over the n particles the update keeps."""
    if top_pairs is None:
        return score.T @ shape_fitness(returns, shaping) / returns.shape[0]
    kept = top_pairs_mask(span_mean, top_pairs)
    return score.T @ shape_kept(returns, kept, shaping) / (2 * top_pairs)


def make_estimator(
    *,
    accumulate: bool,
    reuse_noise: bool,
    fitness_shaping: FitnessShaping = "none",
    top_pairs: int | None = None,
) -> Estimator:
    """The shared engine. ``accumulate`` weights returns by xi (PES);
    ``reuse_noise`` keeps eps for a whole episode (NRES); ``top_pairs``
    (b) keeps the b best pairs in each update (the module's docstring)."""
    if fitness_shaping not in FITNESS_SHAPINGS:
        raise ValueError(f"unknown fitness shaping {fitness_shaping!r}")

    def init(num_particles: int, dim: int) -> EstimatorState:
        zeros, none = jnp.zeros((num_particles, dim)), jnp.zeros(num_particles)
        redraw = jnp.ones((num_particles,), bool)
        return EstimatorState(zeros, zeros, redraw, none, none)

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
            new_span = state.redraw
        else:
            eps = fresh
            score = fresh * inverse_variance + (state.score if accumulate else 0.0)
            new_span = jnp.ones_like(state.redraw)
        return EstimatorState(
            eps=eps,
            score=score,
            redraw=jnp.zeros_like(state.redraw),
            span_return=jnp.where(new_span, 0.0, state.span_return),
            span_windows=jnp.where(new_span, 0.0, state.span_windows),
        )

    def tell(state: EstimatorState, returns: jax.Array, episode_ended: jax.Array):
        returns = returns.astype(jnp.float32)
        span_return = state.span_return + returns
        span_windows = state.span_windows + 1.0
        # Per window: staggered NRES pairs have run spans of different lengths.
        span_mean = span_return / span_windows
        grad = _direction(state.score, returns, span_mean, fitness_shaping, top_pairs)
        if accumulate:  # an ended episode's accumulator starts again from zero
            score = jnp.where(episode_ended[:, None], 0.0, state.score)
        else:
            score = state.score
        state = state.replace(
            score=score, redraw=episode_ended, span_return=span_return,
            span_windows=span_windows,
        )  # fmt: skip
        return grad, state

    return Estimator(init=init, ask=ask, tell=tell)


def pes(fitness_shaping: FitnessShaping = "none", top_pairs=None) -> Estimator:
    return make_estimator(
        accumulate=True,
        reuse_noise=False,
        fitness_shaping=fitness_shaping,
        top_pairs=top_pairs,
    )


def nres(fitness_shaping: FitnessShaping = "none", top_pairs=None) -> Estimator:
    return make_estimator(
        accumulate=False,
        reuse_noise=True,
        fitness_shaping=fitness_shaping,
        top_pairs=top_pairs,
    )


def truncated_es(fitness_shaping: FitnessShaping = "none", top_pairs=None) -> Estimator:
    """TES and FullES share this rule; they differ in how the backend runs
    windows (a shared start state, or whole episodes from reset)."""
    return make_estimator(
        accumulate=False,
        reuse_noise=False,
        fitness_shaping=fitness_shaping,
        top_pairs=top_pairs,
    )
