"""Running observation statistics (Welford / Chan et al. parallel update).

The statistics are part of the policy input, not of the parameters theta: the
policy sees ``(obs - mean) / std``. They are updated after each window from the
observations of live particles.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class RunningStats(NamedTuple):
    count: float
    mean: np.ndarray  # [obs_dim]
    m2: np.ndarray  # [obs_dim] sum of squared deviations from the mean


def init_stats(obs_dim: int) -> RunningStats:
    return RunningStats(0.0, np.zeros(obs_dim), np.zeros(obs_dim))


def update_stats(
    stats: RunningStats, count: float, total: np.ndarray, total_sq: np.ndarray
) -> RunningStats:
    """Merge a batch given by its count, sum and sum of squares."""
    if count == 0:
        return stats
    batch_mean = total / count
    batch_m2 = np.maximum(total_sq - count * batch_mean**2, 0.0)
    new_count = stats.count + count
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * count / new_count
    m2 = stats.m2 + batch_m2 + delta**2 * stats.count * count / new_count
    return RunningStats(new_count, mean, m2)


def normalizer(stats: RunningStats, enabled: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, 1/std) to apply to observations; identity while disabled or
    before two observations have been seen."""
    dim = stats.mean.shape[0]
    if not enabled or stats.count < 2:
        return np.zeros(dim, np.float32), np.ones(dim, np.float32)
    std = np.sqrt(stats.m2 / stats.count + 1e-8)
    return stats.mean.astype(np.float32), (1.0 / std).astype(np.float32)


def update_stats_jax(
    stats: RunningStats,
    count: jax.Array,
    total: jax.Array,
    total_sq: jax.Array,
    center: jax.Array | float = 0.0,
) -> RunningStats:
    """``update_stats`` in JAX, for jitted train steps. ``total`` and
    ``total_sq`` may be sums of ``obs - center``: with ``center`` near the
    mean, float32 keeps the variance of observations far from zero."""
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


def normalizer_jax(stats: RunningStats, enabled: bool) -> tuple[jax.Array, jax.Array]:
    """``normalizer`` in JAX; ``enabled`` is static."""
    if not enabled:
        return jnp.zeros_like(stats.mean), jnp.ones_like(stats.mean)
    ready = stats.count >= 2
    std = jnp.sqrt(stats.m2 / jnp.maximum(stats.count, 1.0) + 1e-8)
    return jnp.where(ready, stats.mean, 0.0), jnp.where(ready, 1.0 / std, 1.0)
