"""The jitted engine: whole updates of a Problem as one device call.

One call runs U windows in a ``fori_loop`` with a dynamic count; each window
is ask -> ``lax.scan`` over K vmapped problem steps -> finish (tell, optax,
normaliser). The carry (the particles' problem states) is donated; the rest
of the train state stays valid for the caller. Particles are sharded along
their axis over a mesh of devices. The engine is compiled once and shared by
agents with the same recipe; the particles' carry belongs to each agent's
``JaxLoop``.
"""

import threading
import time
from concurrent.futures import Future
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from pes_rl.core.multihost import to_global, to_host
from pes_rl.core.problem_window import ProblemBackend, ProblemCarry
from pes_rl.core.train_state import TrainState, Update, UpdateMetrics
from pes_rl.errors import ConfigError


class JaxEngine:
    def __init__(
        self,
        problem: Any,
        update: Update,
        unravel,
        num_envs: int,
        truncation_length: int,
        partner: np.ndarray,
        mean_particle: int | None,
        obs_norm: bool,
        num_devices: int | None = None,
        reward_shift: float = 0.0,
    ):
        self.backend = backend = ProblemBackend(
            problem, num_envs, partner, reward_shift
        )
        self.update = update
        self.mesh = _device_mesh(num_devices)
        self.num_devices = self.mesh.devices.size
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.by_particle = NamedSharding(self.mesh, PartitionSpec("particles"))

        def window(carry, ts, active, learn, healthy):
            ts, thetas, normalizer = update.ask(ts)
            carry, out = backend.unroll(
                carry,
                jax.vmap(unravel)(thetas),
                normalizer,
                truncation_length,
                active,
                broadcast_from=mean_particle,
                collect_obs=obs_norm,
            )
            ts, metrics = update.finish(ts, out, learn, healthy)
            return self._constrain(carry), ts, metrics

        # Compiled once per number of windows per call (the shape of
        # ``learn``), ahead of time in a thread, so it overlaps other work.
        self._run = jax.jit(_windows(window), donate_argnums=0)
        self._compiled_runs: dict[int, Future] = {}
        self.compile_seconds = 0.0  # spent compiling or waiting for a compile
        self.init_carry = jax.jit(backend.init)
        evaluate = _evaluation(unravel, update.normalizer)
        self._evaluate = jax.jit(evaluate, static_argnums=2)
        self.normalizer = jax.jit(update.normalizer)
        if hasattr(problem, "act"):  # (params, obs [B, O], normaliser) -> [B, A]
            self.act_mean = jax.jit(jax.vmap(problem.act, in_axes=(None, 0, None)))
            # ... and with a carry [B, C] -> ([B, A], [B, C])
            self.step_mean = jax.jit(jax.vmap(problem.act, in_axes=(None, 0, None, 0)))
        self._eval_backend: ProblemBackend | None = None

    def evaluate_episodes(self, theta, obs_stats, num_episodes: int, key):
        """(returns [num_episodes], env steps, finite) of the mean parameters
        over whole inner runs. Run i starts from ``fold_in(key, i)`` whatever
        ``num_episodes`` is. The batch size is fixed by the first call (one
        compile); larger requests take several calls."""
        if self._eval_backend is None:
            self._eval_backend = ProblemBackend(
                self.backend.problem, num_episodes, np.arange(num_episodes)
            )
        eval_backend = self._eval_backend
        batch = eval_backend.num_envs
        first_call = self._evaluate._cache_size() == 0
        start = time.perf_counter()
        returns, env_steps, finite = [], 0, True
        for first in range(0, num_episodes, batch):
            batch_returns, batch_steps, batch_finite = self._evaluate(
                theta, obs_stats, eval_backend, key, first
            )
            batch_returns, batch_steps, batch_finite = to_host(
                (batch_returns, batch_steps, batch_finite)
            )
            returns.append(np.asarray(batch_returns))
            env_steps += int(batch_steps)
            finite = finite and bool(batch_finite)
        if first_call:  # mostly compiling
            self.compile_seconds += time.perf_counter() - start
        return np.concatenate(returns)[:num_episodes], env_steps, finite

    def start_compile(self, carry: ProblemCarry, ts: TrainState, per_call: int):
        """Trace and compile ``run`` for these shapes in a background thread."""
        if per_call in self._compiled_runs:
            return
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

        # A daemon thread; JaxLoop.close waits for it (exiting mid-compile
        # crashes the process).
        threading.Thread(target=compile_run, daemon=True).start()
        self._compiled_runs[per_call] = future

    def wait_for_compiles(self) -> None:
        for future in self._compiled_runs.values():
            try:
                future.result()
            except BaseException:
                pass  # reported where the compiled function is used

    def run(self, carry, ts, active, learn, num_windows):
        """Windows ``:num_windows`` of ``active`` [U, M] and ``learn`` [U]."""
        self.start_compile(carry, ts, len(learn))
        future = self._compiled_runs[len(learn)]
        if not future.done():
            start = time.perf_counter()
            future.result()
            self.compile_seconds += time.perf_counter() - start
        return future.result()(carry, ts, active, learn, num_windows)

    def _constrain(self, carry: ProblemCarry) -> ProblemCarry:
        """Keep the particles sharded along their axis."""
        if self.num_devices == 1 or self.backend.num_envs % self.num_devices:
            return carry
        return jax.tree.map(
            lambda x: jax.lax.with_sharding_constraint(
                x, self.by_particle if x.ndim else self.replicated
            ),
            carry,
        )

    def place(self, ts: TrainState) -> TrainState:
        """The train state on the mesh: particle arrays split along their
        first axis where it divides evenly, everything else replicated. With
        several processes, from the value every process holds."""

        def put(x, split: bool):
            shardable = split and x.ndim > 0 and x.shape[0] % self.num_devices == 0
            return to_global(x, self.by_particle if shardable else self.replicated)

        return ts.replace(
            theta=put(ts.theta, False),
            opt_state=jax.tree.map(lambda x: put(x, False), ts.opt_state),
            est_state=jax.tree.map(lambda x: put(x, True), ts.est_state),
            obs_stats=jax.tree.map(lambda x: put(x, False), ts.obs_stats),
            key=to_global(ts.key, self.replicated),
            hyper=jax.tree.map(lambda x: put(x, False), ts.hyper),
        )

    def place_carry(self, carry: ProblemCarry) -> ProblemCarry:
        split = self.backend.num_envs % self.num_devices == 0

        def put(x):
            by_particle = split and x.ndim > 0
            return to_global(x, self.by_particle if by_particle else self.replicated)

        return jax.tree.map(put, carry)


def _device_mesh(num_devices: int | None) -> Mesh:
    """The first ``num_devices`` devices (all by default) along one
    "particles" axis. After jax.distributed.initialize the mesh spans every
    process's devices; a process without one would have no part in the
    calls."""
    devices = jax.devices()[:num_devices] if num_devices else jax.devices()
    missing = set(range(jax.process_count())) - {d.process_index for d in devices}
    if missing:
        raise ConfigError(
            f"{len(devices)} devices leave process(es) {sorted(missing)} "
            "without one: use all devices in a multi-process run"
        )
    return Mesh(np.asarray(devices), ("particles",))


def _empty_metrics(per_call: int, theta: jax.Array) -> UpdateMetrics:
    """Zeros for ``per_call`` windows' metrics, filled as they run."""
    zeros = jnp.zeros((per_call,), jnp.float32)
    counts = jnp.zeros((per_call,), jnp.int32)
    return UpdateMetrics(
        grad=jnp.zeros((per_call,) + theta.shape, theta.dtype),
        window_return=zeros,
        env_steps=counts,
        simulated_steps=counts,
        episodes_completed=counts,
        completed_return_sum=zeros,
        finite=jnp.zeros((per_call,), bool),
    )


def _windows(window):
    """``run``: several windows in one device call (a ``fori_loop``)."""

    def run(carry, ts, active, learn, num_windows):
        """The first ``num_windows`` windows of ``active`` [U, M] and
        ``learn`` [U]; fewer than U leaves the rest of the metrics zero."""
        buffers = _empty_metrics(active.shape[0], ts.theta)

        def body(i, loop):
            carry, ts, buffers, healthy = loop
            # After a non-finite window nothing runs: the agent stops there.
            carry, ts, metrics = jax.lax.cond(
                healthy,
                lambda: window(carry, ts, active[i], learn[i], healthy),
                lambda: (carry, ts, jax.tree.map(lambda b: b[i], buffers)),
            )
            buffers = jax.tree.map(lambda buf, m: buf.at[i].set(m), buffers, metrics)
            return carry, ts, buffers, healthy & metrics.finite

        loop = (carry, ts, buffers, jnp.ones((), bool))
        carry, ts, buffers, _ = jax.lax.fori_loop(0, num_windows, body, loop)
        return carry, ts, buffers

    return run


def _evaluation(unravel, normalizer):
    """``evaluate``: whole episodes of the mean parameters, one per env of
    ``eval_backend`` (a static argument)."""

    def evaluate(theta, obs_stats, eval_backend, key, first_episode):
        num_episodes = eval_backend.num_envs
        episodes = first_episode + jnp.arange(num_episodes)
        carry = eval_backend.start(key, episodes)
        params = jax.vmap(unravel)(
            jnp.broadcast_to(theta, (num_episodes,) + theta.shape)
        )
        _, out = eval_backend.unroll(
            carry,
            params,
            normalizer(obs_stats),
            eval_backend.horizon,
            jnp.ones((num_episodes,), bool),
        )
        return out.returns, out.env_steps, out.finite

    return evaluate


class JaxLoop:
    """One agent's particles on a shared ``JaxEngine``: the agent's
    ``pes_rl.agents.loop.Loop`` on the jitted engine."""

    def __init__(self, engine: JaxEngine, resets_key: jax.Array, per_call: int):
        self.engine, self.per_call = engine, per_call
        self.failure = None  # the engine cannot tell which step was not finite
        self.carry = engine.place_carry(engine.init_carry(resets_key))
        self.last_call_seconds: float | None = None

    def prepare(self, ts: TrainState) -> None:
        """Start compiling the update in the background (training is about
        to start: the first evaluation overlaps it)."""
        self.engine.start_compile(self.carry, self.engine.place(ts), self.per_call)

    def run(self, ts: TrainState, active: np.ndarray, learn: np.ndarray):
        """Windows with ``active`` [W, M] masks and ``learn`` [W] flags, in
        device calls of ``per_call``: (state, metrics per window as numpy)."""
        per_call, chunks = self.per_call, []
        for first in range(0, len(learn), per_call):
            num = len(learn[first : first + per_call])
            active_call = np.ones((per_call, active.shape[1]), bool)
            active_call[:num] = active[first : first + num]
            learn_call = np.zeros(per_call, bool)
            learn_call[:num] = learn[first : first + num]
            started = time.perf_counter()
            self.carry, ts, metrics = self.engine.run(
                self.carry, self.engine.place(ts), active_call, learn_call, num
            )
            metrics = to_host(metrics)
            self.last_call_seconds = time.perf_counter() - started
            chunks.append(jax.tree.map(lambda m, num=num: m[:num], metrics))
            if not metrics.finite[:num].all():
                break
        return ts, UpdateMetrics(*map(np.concatenate, zip(*chunks, strict=True)))

    def evaluate(self, ts: TrainState, num_episodes: int, key, unravel):
        return self.engine.evaluate_episodes(ts.theta, ts.obs_stats, num_episodes, key)

    def normalizer(self, obs_stats):
        return self.engine.normalizer(obs_stats)

    def mean_actions(self, ts: TrainState, unravel, obs: np.ndarray, carry=None):
        """Clipped actions of the mean policy; with the new carry when
        ``carry`` is given."""
        normalizer = self.engine.normalizer(ts.obs_stats)
        params = unravel(ts.theta)
        if carry is None:
            actions = self.engine.act_mean(params, obs, normalizer)
            return np.asarray(to_host(actions))
        actions, carry = self.engine.step_mean(params, obs, normalizer, carry)
        return tuple(np.asarray(x) for x in to_host((actions, carry)))

    def particles(self):
        carry = self.carry.replace(
            key=jax.random.key_data(self.carry.key),
            step_key=jax.random.key_data(self.carry.step_key),
        )
        return to_host(carry)

    def set_particles(self, particles) -> None:
        carry = jax.tree.map(jnp.asarray, particles)
        carry = carry.replace(
            key=jax.random.wrap_key_data(carry.key),
            step_key=jax.random.wrap_key_data(carry.step_key),
        )
        self.carry = self.engine.place_carry(carry)

    def reset_key_data(self):
        return np.asarray(to_host(jax.random.key_data(self.carry.key)))

    def set_reset_key_data(self, data) -> None:
        key = jax.random.wrap_key_data(jnp.asarray(data))
        self.carry = self.carry.replace(key=to_global(key, self.carry.key.sharding))

    @property
    def compile_seconds(self) -> float:
        return self.engine.compile_seconds

    @property
    def device_description(self) -> str:
        platform = jax.devices()[0].platform
        count = self.engine.num_devices
        return platform if count == 1 else f"{count} x {platform}"

    def close(self) -> None:
        """Wait for compiles in flight: a process exiting while XLA compiles
        in a thread crashes. The state lives in the carry."""
        self.engine.wait_for_compiles()
