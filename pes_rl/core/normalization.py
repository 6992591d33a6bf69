"""Running observation statistics (Welford / Chan et al. parallel update) and
the change of variables that keeps persistent particles exact when they move.

The statistics are part of the policy input, not of the parameters theta: the
policy sees ``(obs - mean) * inv_std``. They are updated after each window from
the observations of live particles. A persistent particle's accumulated
perturbation spans windows run under older statistics, so every update of the
statistics re-expresses theta, the particles' perturbations and the
estimator's stored score in the new normalisation (``renormalize``): each
policy's actions stay the same, and the estimate stays unbiased for the
gradient under the normaliser in force.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

# 1/std is at most 1/STD_FLOOR: a near-constant feature is not blown up by its
# numerical noise. A floor rather than a clip of normalised observations, as a
# clip would change what a policy does when the statistics move (no exact
# change of variables exists for it).
STD_FLOOR = 1e-2


class RunningStats(NamedTuple):
    count: jax.Array  # [] float32
    mean: jax.Array  # [obs_dim]
    m2: jax.Array  # [obs_dim] sum of squared deviations from the mean


Normalizer = tuple[Any, Any]  # (mean, inv_std): the policy sees (obs - mean) * inv_std


def update_stats_jax(
    stats: RunningStats,
    count: jax.Array,
    total: jax.Array,
    total_sq: jax.Array,
    center: jax.Array | float = 0.0,
) -> RunningStats:
    """Merge a batch given by its count, sum and sum of squares (Chan et
    al.). ``total`` and ``total_sq`` may be sums of ``obs - center``: with
    ``center`` near the mean, float32 keeps the variance of observations far
    from zero."""
    safe_count = jnp.maximum(count, 1.0)
    shifted_mean = total / safe_count
    batch_m2 = jnp.maximum(total_sq - count * shifted_mean**2, 0.0)
    batch_mean = center + shifted_mean
    new_count = stats.count + count
    safe_new = jnp.maximum(new_count, 1.0)
    delta = batch_mean - stats.mean
    merged = RunningStats(
        new_count,
        stats.mean + delta * count / safe_new,
        stats.m2 + batch_m2 + delta**2 * stats.count * count / safe_new,
    )
    return jax.tree.map(lambda new, old: jnp.where(count > 0, new, old), merged, stats)


def normalizer_jax(
    stats: RunningStats, enabled: bool, center: bool = True
) -> tuple[jax.Array, jax.Array]:
    """(mean, 1/std) to apply to observations; identity while disabled or
    before two observations have been seen. Without ``center`` (a first
    layer with no bias to absorb a shift of the mean) the mean is zero.
    ``enabled`` and ``center`` are static."""
    if not enabled:
        return jnp.zeros_like(stats.mean), jnp.ones_like(stats.mean)
    ready = stats.count >= 2
    std = jnp.maximum(jnp.sqrt(stats.m2 / jnp.maximum(stats.count, 1.0)), STD_FLOOR)
    mean = jnp.where(ready & center, stats.mean, 0.0)
    return mean, jnp.where(ready, 1.0 / std, 1.0)


# -- the change of variables ------------------------------------------------
# The policy's first layer is a Dense layer reading the normalised observation
# (``params["params"]["Dense_0"]``, kernel [obs_dim, out]). With old and new
# normalisers (m, s) and (m', s'), kernel' = diag(s / s') kernel and
# bias' = bias + kernel^T (s * (m' - m)) give the same output for every
# observation. The map M is linear in the parameters, so perturbations follow
# it too. A score (Stein's lemma: E[eps R] / sigma^2 = dE[R]/dtheta) transforms
# like a gradient, with the inverse transpose: kernel' = (kernel - c b^T) / r
# with r = s / s' and c = s * (m' - m), bias' = bias.


def first_layer(params: Any) -> dict | None:
    """The Dense layer that reads the observation, or None if the parameters
    are not laid out as pes_rl's policies (linear, mlp, gru, lstm)."""
    try:
        layer = params["params"]["Dense_0"]
    except (KeyError, TypeError):
        return None
    return layer if getattr(layer.get("kernel"), "ndim", 0) == 2 else None


def _replace_first_layer(params: Any, layer: dict) -> Any:
    return {**params, "params": {**params["params"], "Dense_0": layer}}


def reexpress_params(params: Any, old: Normalizer, new: Normalizer) -> Any:
    """Parameters (or a perturbation) under ``new`` that act as ``params``
    did under ``old``. A first layer without a bias needs equal means."""
    layer = dict(first_layer(params))
    (old_mean, old_inv_std), (new_mean, new_inv_std) = old, new
    kernel = layer["kernel"]
    layer["kernel"] = kernel * (old_inv_std / new_inv_std)[:, None]
    if "bias" in layer:
        layer["bias"] = layer["bias"] + (old_inv_std * (new_mean - old_mean)) @ kernel
    return _replace_first_layer(params, layer)


def reexpress_score(score: Any, old: Normalizer, new: Normalizer) -> Any:
    """A gradient-like quantity (the inverse transpose of ``reexpress_params``)."""
    layer = dict(first_layer(score))
    (old_mean, old_inv_std), (new_mean, new_inv_std) = old, new
    kernel = layer["kernel"]
    if "bias" in layer:
        shift = old_inv_std * (new_mean - old_mean)
        kernel = kernel - shift[:, None] * layer["bias"][None, :]
    layer["kernel"] = kernel * (new_inv_std / old_inv_std)[:, None]
    return _replace_first_layer(score, layer)


def reexpress_second_moment(moment: Any, old: Normalizer, new: Normalizer) -> Any:
    """A mean of squared gradients (Adam's nu), with each squared gradient
    mapped as ``reexpress_score`` maps the gradient; the kernel-bias cross
    term, unknown, is left out."""
    layer = dict(first_layer(moment))
    (old_mean, old_inv_std), (new_mean, new_inv_std) = old, new
    kernel = layer["kernel"]
    if "bias" in layer:
        shift = old_inv_std * (new_mean - old_mean)
        kernel = kernel + shift[:, None] ** 2 * layer["bias"][None, :]
    layer["kernel"] = kernel * ((new_inv_std / old_inv_std) ** 2)[:, None]
    return _replace_first_layer(moment, layer)


def make_renormalize(unravel: Callable) -> Callable:
    """``renormalize(theta [D], eps [N, D], score [N, D], opt_state, old,
    new)`` on flat vectors: theta and the perturbations eps map with M, the
    score with the inverse transpose of M. The optimiser's gradient moments
    (optax's Adam and momentum states) are re-expressed as if every past
    gradient had been estimated in the new coordinates, so its per-coordinate
    step sizes keep their meaning. Pure; jit it or call it inside a jitted
    step."""

    def flat(fn):
        return lambda vector, old, new: ravel_pytree(fn(unravel(vector), old, new))[0]

    params_map, score_map = flat(reexpress_params), flat(reexpress_score)
    square_map = flat(reexpress_second_moment)
    moments = (optax.ScaleByAdamState, optax.TraceState)

    def renormalize(theta, eps, score, opt_state, old: Normalizer, new: Normalizer):
        def optimizer_moments(node):
            if isinstance(node, optax.ScaleByAdamState):
                mu, nu = score_map(node.mu, old, new), square_map(node.nu, old, new)
                return node._replace(mu=mu, nu=nu)
            if isinstance(node, optax.TraceState):
                return node._replace(trace=score_map(node.trace, old, new))
            return node

        def each(fn):
            return jax.vmap(fn, in_axes=(0, None, None))

        return (
            params_map(theta, old, new),
            each(params_map)(eps, old, new),
            each(score_map)(score, old, new),
            jax.tree.map(
                optimizer_moments,
                opt_state,
                is_leaf=lambda node: isinstance(node, moments),
            ),
        )

    return renormalize
