"""One training state and one pure update, shared by both loops.

An update is ``ask`` -> a window of K steps -> ``finish``: ``ask`` draws the
window's perturbations and gives every particle its parameters and the
normaliser; the window runs on the jitted engine or on the host; ``finish``
turns the window's returns into the ascent direction (``tell``), takes the
optimiser step and updates the observation normaliser (re-expressing theta,
the particles and the optimiser's moments in the new normalisation). The
jitted engine composes the three inside one jit; the host loop jits ``ask``
and ``finish`` and runs the window in between.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from pes_rl.estimators import Estimator, EstimatorState
from pes_rl.multihost import to_host
from pes_rl.normalization import (
    RunningStats,
    make_renormalize,
    normalizer_jax,
    update_stats_jax,
)


@struct.dataclass
class TrainState:
    theta: jax.Array  # [D] mean parameters, flat
    opt_state: Any
    est_state: EstimatorState
    obs_stats: RunningStats  # float32, moments centred at the mean
    key: jax.Array  # the noise stream, split once per window


class WindowOut(NamedTuple):
    """What a window reports, per particle (M = N, or N + 1 for truncated
    ES's shared trajectory) and in total."""

    returns: jax.Array  # [M] summed reward of the window
    episode_ended: jax.Array  # [M] bool, the pair's episode ended
    env_steps: jax.Array  # [] live transitions
    simulated_steps: jax.Array  # [] transitions computed, absorbed included
    completed_return_sum: jax.Array  # [] returns of episodes ended in the window
    completed_count: jax.Array  # []
    obs_count: jax.Array  # [] live observations the policy saw
    obs_sum: jax.Array  # [O] of obs - normaliser mean
    obs_sum_sq: jax.Array  # [O] of (obs - normaliser mean)^2
    finite: jax.Array  # [] bool, every live reward and observation was finite


class UpdateMetrics(NamedTuple):
    grad: jax.Array  # [D] ascent direction before the optimiser
    window_return: jax.Array  # [] mean window return over the N particles
    env_steps: jax.Array  # []
    simulated_steps: jax.Array  # []
    episodes_completed: jax.Array  # []
    completed_return_sum: jax.Array  # []
    finite: jax.Array  # [] bool: returns, observations and grad finite


def init_stats(obs_dim: int) -> RunningStats:
    zeros = jnp.zeros((obs_dim,), jnp.float32)
    return RunningStats(jnp.zeros((), jnp.float32), zeros, zeros)


class Update(NamedTuple):
    """The update's two halves, pure functions closed over the estimator,
    the optimiser and the parameter layout."""

    ask: Callable  # (ts) -> ts, particle thetas [M, D], (obs_mean, obs_inv_std)
    finish: Callable  # (ts, window, learn, healthy) -> ts, UpdateMetrics
    normalizer: Callable  # (obs_stats) -> (obs_mean, obs_inv_std)


def make_update(
    estimator: Estimator,
    tx: optax.GradientTransformation,
    unravel: Callable,
    num_particles: int,
    with_mean_particle: bool,
    obs_norm: bool,
    center_obs: bool,
) -> Update:
    """``with_mean_particle``: one more particle runs theta itself (truncated
    ES's shared trajectory). Without a bias in the policy's first layer
    (``center_obs`` False) observations are scaled, not centred."""
    renormalize = make_renormalize(unravel)

    def normalizer(obs_stats):
        return normalizer_jax(obs_stats, obs_norm, center_obs)

    def ask(ts: TrainState):
        key, ask_key = jax.random.split(ts.key)
        est_state = estimator.ask(ask_key, ts.est_state)
        thetas = ts.theta + est_state.eps
        if with_mean_particle:
            thetas = jnp.concatenate([thetas, ts.theta[None]])
        ts = ts.replace(est_state=est_state, key=key)
        return ts, thetas, normalizer(ts.obs_stats)

    def finish(ts: TrainState, window: WindowOut, learn, healthy):
        """Nothing is learned from a non-finite window, nor once ``healthy``
        is False (a non-finite window came earlier in the same call)."""
        returns = window.returns[:num_particles]
        grad, est_state = estimator.tell(
            ts.est_state, returns, window.episode_ended[:num_particles]
        )
        finite = window.finite & jnp.isfinite(grad).all()
        # optax minimises: the loss gradient is minus the ascent direction.
        updates, opt_state = tx.update(-grad, ts.opt_state, ts.theta)
        apply = learn & finite & healthy
        theta = jnp.where(apply, optax.apply_updates(ts.theta, updates), ts.theta)
        opt_state = jax.tree.map(
            lambda new, old: jnp.where(apply, new, old), opt_state, ts.opt_state
        )
        obs_stats = ts.obs_stats
        if obs_norm:
            old = normalizer(obs_stats)
            updated = update_stats_jax(
                obs_stats,
                window.obs_count,
                window.obs_sum,
                window.obs_sum_sq,
                center=old[0],
            )
            obs_stats = jax.tree.map(
                lambda new, prev: jnp.where(finite & healthy, new, prev),
                updated,
                obs_stats,
            )
            theta, eps, score, opt_state = renormalize(
                theta,
                est_state.eps,
                est_state.score,
                opt_state,
                old,
                normalizer(obs_stats),
            )
            est_state = est_state.replace(eps=eps, score=score)
        ts = ts.replace(
            theta=theta, opt_state=opt_state, est_state=est_state, obs_stats=obs_stats
        )
        metrics = UpdateMetrics(
            grad=grad,
            window_return=returns.mean(),
            env_steps=window.env_steps,
            simulated_steps=window.simulated_steps,
            episodes_completed=window.completed_count,
            completed_return_sum=window.completed_return_sum,
            finite=finite,
        )
        return ts, metrics

    return Update(ask=ask, finish=finish, normalizer=normalizer)


def unpack_state(ts: TrainState) -> dict[str, Any]:
    """The state as plain host data (numpy, keys as key data), for a
    checkpoint. Gathers arrays split over other processes' devices: every
    process calls it."""
    return to_host(ts.replace(key=jax.random.key_data(ts.key)))


def pack_state(data: Any) -> TrainState:
    """``unpack_state`` undone."""
    ts = jax.tree.map(jnp.asarray, data)
    return ts.replace(key=jax.random.wrap_key_data(ts.key))
