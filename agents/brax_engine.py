"""The agent's engine on the Brax backend: whole updates as one jitted call.

One call runs ``U`` updates in an outer ``lax.scan``; each update is ask ->
``lax.scan`` over K vmapped steps of policy and env -> tell -> optax ->
normaliser update. The train state stays on the device between calls and
the environment carry is donated. Particles are sharded along their axis
over a mesh of local devices.
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from pes_rl.envs.brax_backend import BraxBackend, BraxCarry
from pes_rl.estimators import Estimator, EstimatorState
from pes_rl.normalization import (
    RunningStats,
    make_renormalize,
    normalizer_jax,
    update_stats_jax,
)


@struct.dataclass
class TrainState:
    theta: jax.Array  # [D] mean parameters
    opt_state: Any
    est_state: EstimatorState
    obs_stats: RunningStats
    key: jax.Array  # typed key for the perturbations


class UpdateMetrics(NamedTuple):
    """Per update, stacked over the updates of one call."""

    grad: jax.Array  # [D] ascent direction before the optimiser
    window_return: jax.Array  # [] mean window return over the N particles
    env_steps: jax.Array  # [] live transitions
    simulated_steps: jax.Array  # [] transitions vmap simulated, absorbed included
    episodes_completed: jax.Array  # []
    completed_return_sum: jax.Array  # []
    finite: jax.Array  # [] bool, returns, observations and grad were finite


class BraxEngine:
    def __init__(
        self,
        backend: BraxBackend,
        act: Callable,
        unravel: Callable,
        estimator: Estimator,
        tx: optax.GradientTransformation,
        num_particles: int,
        truncation_length: int,
        mean_particle: int | None,
        obs_norm: bool,
        center_obs: bool,
        num_devices: int | None = None,
    ):
        self.backend = backend
        renormalize = make_renormalize(unravel)

        def normalizer(obs_stats):
            return normalizer_jax(obs_stats, obs_norm, center_obs)

        self.normalizer = jax.jit(normalizer)
        self.num_particles = num_particles
        devices = jax.devices()
        if num_devices is not None:
            devices = devices[:num_devices]
        self.mesh = Mesh(np.asarray(devices), ("particles",))
        self.num_devices = len(devices)
        self._replicated = NamedSharding(self.mesh, PartitionSpec())
        self._by_particle = NamedSharding(self.mesh, PartitionSpec("particles"))

        def window(carry, ts: TrainState, active, learn, healthy):
            """One window; nothing is learned once ``healthy`` is False (a
            non-finite window happened earlier in this call)."""
            key, ask_key = jax.random.split(ts.key)
            est_state = estimator.ask(ask_key, ts.est_state)
            thetas = ts.theta + est_state.eps
            if mean_particle is not None:
                thetas = jnp.concatenate([thetas, ts.theta[None]])
            obs_mean, obs_inv_std = normalizer(ts.obs_stats)
            carry, stats = backend.unroll(
                carry,
                act,
                jax.vmap(unravel)(thetas),
                obs_mean,
                obs_inv_std,
                truncation_length,
                active,
                broadcast_from=mean_particle,
                collect_obs=obs_norm,
            )
            carry = self._constrain(carry)
            returns = stats.returns[:num_particles]
            grad, est_state = estimator.tell(
                est_state, returns, stats.episode_ended[:num_particles]
            )
            finite = stats.finite & jnp.isfinite(grad).all()
            # optax minimises: the loss gradient is minus the ascent direction.
            updates, opt_state = tx.update(-grad, ts.opt_state, ts.theta)
            apply = learn & finite & healthy
            theta = jnp.where(apply, optax.apply_updates(ts.theta, updates), ts.theta)
            opt_state = jax.tree.map(
                lambda new, old: jnp.where(apply, new, old), opt_state, ts.opt_state
            )
            obs_stats = ts.obs_stats
            if obs_norm:
                updated = update_stats_jax(
                    obs_stats,
                    stats.obs_count,
                    stats.obs_sum,
                    stats.obs_sum_sq,
                    center=obs_mean,
                )
                obs_stats = jax.tree.map(
                    lambda new, old: jnp.where(finite & healthy, new, old),
                    updated,
                    obs_stats,
                )
                theta, eps, score, opt_state = renormalize(
                    theta,
                    est_state.eps,
                    est_state.score,
                    opt_state,
                    (obs_mean, obs_inv_std),
                    normalizer(obs_stats),
                )
                est_state = est_state.replace(eps=eps, score=score)
            ts = TrainState(
                theta=theta,
                opt_state=opt_state,
                est_state=est_state,
                obs_stats=obs_stats,
                key=key,
            )
            metrics = UpdateMetrics(
                grad=grad,
                window_return=returns.mean(),
                env_steps=stats.env_steps,
                simulated_steps=stats.simulated_steps,
                episodes_completed=stats.completed_count,
                completed_return_sum=stats.completed_return_sum,
                finite=finite,
            )
            return carry, ts, metrics

        def run(carry, ts, active, learn, num_windows):
            """The first ``num_windows`` windows of ``active`` [U, M] and
            ``learn`` [U]; fewer than U leaves the rest of the metrics zero."""
            per_call = active.shape[0]
            zeros = jnp.zeros((per_call,), jnp.float32)
            counts = jnp.zeros((per_call,), jnp.int32)
            buffers = UpdateMetrics(
                grad=jnp.zeros((per_call,) + ts.theta.shape, ts.theta.dtype),
                window_return=zeros,
                env_steps=counts,
                simulated_steps=counts,
                episodes_completed=counts,
                completed_return_sum=zeros,
                finite=jnp.zeros((per_call,), bool),
            )

            def body(i, loop):
                carry, ts, buffers, healthy = loop
                carry, ts, metrics = window(carry, ts, active[i], learn[i], healthy)
                buffers = jax.tree.map(
                    lambda buf, m: buf.at[i].set(m), buffers, metrics
                )
                return carry, ts, buffers, healthy & metrics.finite

            loop = (carry, ts, buffers, jnp.ones((), bool))
            carry, ts, buffers, _ = jax.lax.fori_loop(0, num_windows, body, loop)
            return carry, ts, buffers

        # The carry is donated; the rest stays valid for the caller. Compiled
        # once per number of updates per call (the shape of ``learn``), ahead
        # of time in a thread, so it overlaps other work (the first evaluation
        # compiles meanwhile).
        self._run = jax.jit(run, donate_argnums=0)
        self._compiled_runs: dict[int, Future] = {}
        # Wall-clock the caller spent compiling or waiting for a compile.
        self.compile_seconds = 0.0
        self.init_carry = jax.jit(backend.init)

        def evaluate(theta, obs_stats, eval_backend, key, first_episode):
            num_episodes = eval_backend.num_envs
            episodes = first_episode + jnp.arange(num_episodes)
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, episodes)
            carry = eval_backend.start(keys, key)
            obs_mean, obs_inv_std = normalizer(obs_stats)
            params = jax.vmap(unravel)(
                jnp.broadcast_to(theta, (num_episodes,) + theta.shape)
            )
            _, stats = eval_backend.unroll(
                carry,
                act,
                params,
                obs_mean,
                obs_inv_std,
                eval_backend.horizon,
                jnp.ones((num_episodes,), bool),
            )
            return stats.returns, stats.env_steps, stats.finite

        self._evaluate = jax.jit(evaluate, static_argnums=2)
        self._eval_backend: BraxBackend | None = None

    def evaluate_episodes(self, theta, obs_stats, num_episodes: int, key):
        """(returns [num_episodes], env steps, finite) of the mean policy.

        Episode i starts from ``fold_in(key, i)`` whatever ``num_episodes``
        is. The batch size is fixed by the first call (one compile); larger
        requests take several calls, smaller ones discard the extra episodes.
        """
        if self._eval_backend is None:
            self._eval_backend = BraxBackend(
                self.backend.env,
                num_episodes,
                self.backend.horizon,
                partner=np.arange(num_episodes),
            )
        batch = self._eval_backend.num_envs
        first_call = self._evaluate._cache_size() == 0
        start = time.perf_counter()
        returns, env_steps, finite = [], 0, True
        for first in range(0, num_episodes, batch):
            batch_returns, batch_steps, batch_finite = self._evaluate(
                theta, obs_stats, self._eval_backend, key, first
            )
            returns.append(np.asarray(batch_returns))
            env_steps += int(batch_steps)
            finite = finite and bool(batch_finite)
        if first_call:  # mostly compiling
            self.compile_seconds += time.perf_counter() - start
        return np.concatenate(returns)[:num_episodes], env_steps, finite

    def start_compile(self, carry: BraxCarry, ts: TrainState, per_call: int) -> None:
        """Trace and compile ``run`` for these shapes in a background thread."""
        if per_call not in self._compiled_runs:
            # Shapes only: the caller may donate its arrays before this runs.
            carry, ts = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                (carry, ts),
            )
            active = jnp.ones((per_call, self.backend.num_envs), bool)
            learn = jnp.ones((per_call,), bool)

            future = Future()

            def compile_run():
                try:
                    lowered = self._run.lower(carry, ts, active, learn, per_call)
                    future.set_result(lowered.compile())
                except BaseException as err:  # reported where it is awaited
                    future.set_exception(err)

            # A daemon thread: exiting (say after an error) need not wait for it.
            threading.Thread(target=compile_run, daemon=True).start()
            self._compiled_runs[per_call] = future

    def run(self, carry, ts, active, learn, num_windows):
        """Windows ``:num_windows`` of ``active`` [U, M] and ``learn`` [U]."""
        self.start_compile(carry, ts, len(learn))
        future = self._compiled_runs[len(learn)]
        if not future.done():
            start = time.perf_counter()
            future.result()
            self.compile_seconds += time.perf_counter() - start
        return future.result()(carry, ts, active, learn, num_windows)

    def _constrain(self, carry: BraxCarry) -> BraxCarry:
        """Keep the environments sharded along the particle axis."""
        if self.num_devices == 1 or self.backend.num_envs % self.num_devices:
            return carry
        return jax.tree.map(
            lambda x: jax.lax.with_sharding_constraint(
                x, self._by_particle if x.ndim else self._replicated
            ),
            carry,
        )

    def place(self, ts: TrainState) -> TrainState:
        """Put the train state on the mesh: particle arrays split along their
        first axis where it divides evenly, everything else replicated."""

        def put(x, split: bool):
            shardable = split and x.ndim > 0 and x.shape[0] % self.num_devices == 0
            return jax.device_put(
                x, self._by_particle if shardable else self._replicated
            )

        return TrainState(
            theta=put(ts.theta, False),
            opt_state=jax.tree.map(lambda x: put(x, False), ts.opt_state),
            est_state=jax.tree.map(lambda x: put(x, True), ts.est_state).replace(
                count=put(ts.est_state.count, False)
            ),
            obs_stats=jax.tree.map(lambda x: put(x, False), ts.obs_stats),
            key=jax.device_put(ts.key, self._replicated),
        )

    def place_carry(self, carry: BraxCarry) -> BraxCarry:
        split = self.backend.num_envs % self.num_devices == 0

        def put(x):
            by_particle = split and x.ndim > 0
            return jax.device_put(
                x, self._by_particle if by_particle else self._replicated
            )

        return jax.tree.map(put, carry)
