"""Running observation statistics (Welford / Chan et al. parallel update).

The statistics are part of the policy input, not of the parameters theta: the
policy sees ``(obs - mean) / std``. They are updated after each window from the
observations of live particles.
"""

from typing import NamedTuple

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
