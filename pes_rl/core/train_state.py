"""One training state and one pure update, shared by both loops.

An update is ``ask`` -> a window of K steps -> ``finish``: ``ask`` draws the
window's perturbations and gives every particle its parameters and the
normaliser; the window runs on the jitted engine or on the host; ``finish``
turns the window's returns into the ascent direction (``tell``), takes the
optimiser step and updates the observation normaliser (re-expressing theta,
the particles and the optimiser's moments in the new normalisation). The
jitted engine composes the three inside one jit; the host loop jits ``ask``
and ``finish`` and runs the window in between.

sigma and the learning rate are data of the state (``Hyperparams``), not
constants of the compiled update: agents that differ only in their values,
or in the length of a decay, share one compiled update.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from pes_rl.core.estimators import Estimator, EstimatorState
from pes_rl.core.multihost import to_host
from pes_rl.core.normalization import (
    RunningStats,
    make_renormalize,
    normalizer_jax,
    update_stats_jax,
)
from pes_rl.core.schedules import LinearDecay, Rate, as_rate
from pes_rl.errors import ConfigError


@struct.dataclass
class Hyperparams:
    """sigma and the learning rate, and the one clock of their schedules."""

    sigma: Rate
    learning_rate: Rate
    # 1 / sigma^2 of a constant sigma, from its float64 square on the host:
    # the value XLA folded when sigma was compiled in, so the same numbers.
    inverse_variance: jax.Array  # [] float32
    updates: jax.Array  # [] int32, optimiser updates taken: both schedules' count


def make_hyperparams(sigma: Any, learning_rate: Any, updates: int = 0) -> Hyperparams:
    """From the config's values: numbers, ``LinearDecay``s or other
    schedules (those are compiled in: ``Schedules``)."""
    start = sigma.start if isinstance(sigma, LinearDecay) else sigma
    inverse = 0.0 if callable(start) else np.float32(1) / np.float32(start**2)
    return Hyperparams(
        sigma=as_rate(sigma),
        learning_rate=as_rate(learning_rate),
        inverse_variance=jnp.asarray(inverse, jnp.float32),
        updates=jnp.asarray(updates, jnp.int32),
    )


def with_hyperparams(ts: "TrainState", config: Any) -> "TrainState":
    """``ts`` with ``config``'s sigma and learning rate, the count kept."""
    hyper = make_hyperparams(config.sigma, config.learning_rate, ts.hyper.updates)
    return ts.replace(hyper=hyper)


class Schedules(NamedTuple):
    """Schedules given as callables of the update count (not numbers or
    ``LinearDecay``s): code, so compiled in. None: the state's ``Rate``."""

    sigma: Callable | None = None
    learning_rate: Callable | None = None


@struct.dataclass
class TrainState:
    theta: jax.Array  # [D] mean parameters, flat
    opt_state: Any
    est_state: EstimatorState
    obs_stats: RunningStats  # float32, moments centred at the mean
    key: jax.Array  # the noise stream, split once per window
    hyper: Hyperparams


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
    the kind of optimiser and the parameter layout (not over the values of
    sigma and the learning rate: ``TrainState.hyper``)."""

    ask: Callable  # (ts) -> ts, particle thetas [M, D], (obs_mean, obs_inv_std)
    finish: Callable  # (ts, window, learn, healthy) -> ts, UpdateMetrics
    normalizer: Callable  # (obs_stats) -> (obs_mean, obs_inv_std)


def sigma_now(hyper: Hyperparams, schedules: Schedules):
    """(sigma, 1 / sigma^2 or None) of the next window."""
    if schedules.sigma is not None:
        return schedules.sigma(hyper.updates), None
    sigma = hyper.sigma.at(hyper.updates)
    constant = hyper.sigma.change == 0
    return sigma, jnp.where(constant, hyper.inverse_variance, 1.0 / sigma**2)


def learning_rate_now(hyper: Hyperparams, schedules: Schedules):
    if schedules.learning_rate is not None:
        return schedules.learning_rate(hyper.updates)
    return hyper.learning_rate.at(hyper.updates)


def make_update(
    estimator: Estimator,
    optimizer: Callable[[Any], optax.GradientTransformation],
    unravel: Callable,
    num_particles: int,
    with_mean_particle: bool,
    obs_norm: bool,
    center_obs: bool,
    schedules: Schedules | None = None,
) -> Update:
    """``optimizer(learning_rate)`` makes the optimiser for this update's
    step size (a traced value). ``with_mean_particle``: one more particle
    runs theta itself (truncated ES's shared trajectory). Without a bias in
    the policy's first layer (``center_obs`` False) observations are scaled,
    not centred."""
    renormalize = make_renormalize(unravel)
    schedules = schedules or Schedules()

    def normalizer(obs_stats):
        return normalizer_jax(obs_stats, obs_norm, center_obs)

    def ask(ts: TrainState):
        key, ask_key = jax.random.split(ts.key)
        sigma, inverse_variance = sigma_now(ts.hyper, schedules)
        est_state = estimator.ask(ask_key, ts.est_state, sigma, inverse_variance)
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
        tx = optimizer(learning_rate_now(ts.hyper, schedules))
        apply = learn & finite & healthy
        theta, opt_state = _ascend(tx, grad, ts.theta, ts.opt_state, apply)
        hyper = ts.hyper.replace(updates=ts.hyper.updates + apply.astype(jnp.int32))
        obs_stats = ts.obs_stats
        if obs_norm:
            obs_stats, theta, est_state, opt_state = _renormalized(
                normalizer, renormalize, window, finite & healthy,
                obs_stats, theta, est_state, opt_state,
            )  # fmt: skip
        ts = ts.replace(
            theta=theta, opt_state=opt_state, est_state=est_state,
            obs_stats=obs_stats, hyper=hyper,
        )  # fmt: skip
        return ts, _metrics(grad, returns, window, finite)

    return Update(ask=ask, finish=finish, normalizer=normalizer)


def _ascend(tx, grad, theta, opt_state, apply):
    """One optimiser step up ``grad`` where ``apply``, else no change."""
    # optax minimises: the loss gradient is minus the ascent direction.
    updates, new_opt_state = tx.update(-grad, opt_state, theta)
    new_theta = jnp.where(apply, optax.apply_updates(theta, updates), theta)
    new_opt_state = jax.tree.map(
        lambda new, old: jnp.where(apply, new, old), new_opt_state, opt_state
    )
    return new_theta, new_opt_state


def _renormalized(
    normalizer, renormalize, window: WindowOut, keep, obs_stats, theta, est_state,
    opt_state,
):  # fmt: skip
    """The statistics with the window's observations (kept only when
    ``keep``), and theta, the perturbations, the scores and the optimiser
    state re-expressed for them."""
    old = normalizer(obs_stats)
    updated = update_stats_jax(
        obs_stats, window.obs_count, window.obs_sum, window.obs_sum_sq, center=old[0]
    )
    obs_stats = jax.tree.map(
        lambda new, prev: jnp.where(keep, new, prev), updated, obs_stats
    )
    theta, eps, score, opt_state = renormalize(
        theta, est_state.eps, est_state.score, opt_state, old, normalizer(obs_stats)
    )
    return obs_stats, theta, est_state.replace(eps=eps, score=score), opt_state


def _metrics(grad, returns, window: WindowOut, finite) -> UpdateMetrics:
    return UpdateMetrics(
        grad=grad,
        window_return=returns.mean(),
        env_steps=window.env_steps,
        simulated_steps=window.simulated_steps,
        episodes_completed=window.completed_count,
        completed_return_sum=window.completed_return_sum,
        finite=finite,
    )


def unpack_state(ts: TrainState) -> dict[str, Any]:
    """The state as plain host data (numpy, keys as key data), for a
    checkpoint. Gathers arrays split over other processes' devices: every
    process calls it."""
    return to_host(ts.replace(key=jax.random.key_data(ts.key)))


def pack_state(data: Any) -> TrainState:
    """``unpack_state`` undone."""
    ts = jax.tree.map(jnp.asarray, data)
    return ts.replace(key=jax.random.wrap_key_data(ts.key))


def restore_state(saved: TrainState, fresh: TrainState, num_updates: int):
    """A checkpoint's state in ``fresh``'s layout, with ``fresh``'s sigma and
    learning rate (the agent's config, a load's overrides included) and the
    checkpoint's update count. Checkpoints from before the hyperparameters
    were traced have no ``hyper`` (the count is ``num_updates``), a window
    count in the estimator's state and, with a learning-rate schedule, the
    schedule's count in the optimiser's state: both are dropped."""
    old = getattr(saved, "hyper", None)
    updates = num_updates if old is None else old.updates
    est_state = {  # a field newer than the checkpoint starts fresh
        f.name: getattr(saved.est_state, f.name, getattr(fresh.est_state, f.name))
        for f in dataclasses.fields(EstimatorState)
    }
    state = TrainState(
        theta=saved.theta,
        opt_state=_optimizer_state(saved.opt_state, fresh.opt_state),
        est_state=EstimatorState(**est_state),
        obs_stats=saved.obs_stats,
        key=saved.key,
        hyper=fresh.hyper.replace(updates=jnp.asarray(updates, jnp.int32)),
    )
    return pack_state(state)


def _optimizer_state(saved: Any, fresh: Any) -> Any:
    """``saved`` in ``fresh``'s layout: a learning-rate schedule's count
    (``ScaleByScheduleState``, before ``Hyperparams.updates`` counted) gives
    way to the empty state a traced learning rate has."""
    if jax.tree.structure(saved) == jax.tree.structure(fresh):
        return saved
    if isinstance(saved, tuple) and isinstance(fresh, tuple):
        saved = tuple(
            new
            if isinstance(old, optax.ScaleByScheduleState)
            and isinstance(new, optax.EmptyState)
            else old
            for old, new in zip(saved, fresh, strict=False)
        )
        if jax.tree.structure(saved) == jax.tree.structure(fresh):
            return saved
    raise ConfigError(
        "the checkpoint's optimiser state does not fit this agent's optimizer: "
        "load it with the optimizer it was trained with"
    )
