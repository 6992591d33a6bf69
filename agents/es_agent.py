"""The agent: one engine that runs windows on a backend and feeds an estimator.

Per update: ``ask`` draws the window's perturbations, the backend unrolls K
steps with parameters theta + eps per particle, ``tell`` turns the window
returns into an ascent direction, and the optimiser takes one step.
"""

import math
import os
import pickle
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from pes_rl.config import AgentConfig, make_optimizer
from pes_rl.envs.gymnasium_backend import GymnasiumBackend, pair_partners
from pes_rl.envs.registry import brax_factory, gymnasium_factory
from pes_rl.errors import ConfigError, NonFiniteError
from pes_rl.estimators import Estimator, make_estimator
from pes_rl.keys import EVAL_SEED, key_streams, numpy_rng
from pes_rl.normalization import (
    RunningStats,
    first_layer,
    init_stats,
    make_renormalize,
    normalizer,
    update_stats,
)
from pes_rl.policies import make_policy


class _Compiled(NamedTuple):
    act_particles: Callable  # (params [N], obs [N, O], mean, inv_std) -> [N, A]
    act_mean: Callable  # (params, obs [B, O], mean, inv_std) -> [B, A]
    ask: Callable  # (key, est_state, theta) -> est_state, params [N(+1)]
    tell: Callable  # (est_state, returns, ended) -> grad, est_state
    tell_and_step: Callable  # ... theta, opt_state -> grad, est_state, theta, opt_state
    renormalize: Callable  # (theta, eps, score, opt_state, old, new) -> same four


_COMPILED: dict[tuple, tuple[_Compiled, Any]] = {}
_BRAX_ENGINES: dict[tuple, Any] = {}


def _policy(module) -> Callable:
    """(params, obs, obs_mean, obs_inv_std) -> action, on normalised obs."""

    def apply(params, obs, mean, inv_std):
        return module.apply(params, (obs - mean) * inv_std)

    return apply


def _compile(module, unravel, estimator: Estimator, tx, with_mean_particle: bool):
    apply = _policy(module)

    def ask(key, est_state, theta):
        est_state = estimator.ask(key, est_state)
        thetas = theta + est_state.eps
        if with_mean_particle:
            thetas = jnp.concatenate([thetas, theta[None]])
        return est_state, jax.vmap(unravel)(thetas)

    def tell_and_step(est_state, returns, ended, theta, opt_state):
        grad, est_state = estimator.tell(est_state, returns, ended)
        # optax minimises: the loss gradient is minus the ascent direction.
        updates, opt_state = tx.update(-grad, opt_state, theta)
        return grad, est_state, optax.apply_updates(theta, updates), opt_state

    return _Compiled(
        act_particles=jax.jit(jax.vmap(apply, in_axes=(0, 0, None, None))),
        act_mean=jax.jit(jax.vmap(apply, in_axes=(None, 0, None, None))),
        ask=jax.jit(ask),
        tell=jax.jit(estimator.tell),
        tell_and_step=jax.jit(tell_and_step),
        renormalize=jax.jit(make_renormalize(unravel)),
    )


class ESAgent:
    """Base class of PES, NRES, TruncatedES and FullES (the README compares them)."""

    accumulate = False  # weight returns by the accumulated perturbation xi (PES)
    reuse_noise = False  # keep one perturbation per episode
    shared_state = False  # all particles start each window from one state (TES)
    full_episodes = False  # K = horizon, particles reset every update

    def __init__(
        self,
        env: Any = "swimmer",
        backend: str = "gymnasium",
        policy: Any = "linear",
        num_particles: int = 20,
        truncation_length: int = 100,
        horizon: int | None = None,
        sigma: float = 0.3,
        learning_rate: float = 0.1,
        optimizer: Any = "sgd",
        fitness_shaping: str = "none",
        obs_norm: bool = False,
        stagger: bool = True,
        seed: int = 0,
        hidden_sizes: tuple[int, ...] = (32, 32),
        policy_bias: bool | None = None,
        env_kwargs: dict | None = None,
        num_workers: int = 0,
        updates_per_call: int = 1,
        num_devices: int | None = None,
        brax_physics: str | None = None,
    ):
        config = AgentConfig(
            env=env,
            backend=backend,
            policy=policy,
            num_particles=num_particles,
            truncation_length=truncation_length,
            horizon=horizon,
            sigma=sigma,
            learning_rate=learning_rate,
            optimizer=optimizer,
            fitness_shaping=fitness_shaping,
            obs_norm=obs_norm,
            stagger=stagger,
            seed=seed,
            hidden_sizes=tuple(hidden_sizes),
            policy_bias=policy_bias,
            env_kwargs=env_kwargs,
            num_workers=num_workers,
            updates_per_call=updates_per_call,
            num_devices=num_devices,
            brax_physics=brax_physics,
        )
        config.validate()
        self.config = config
        self.backend_name = resolve_backend(config.backend)
        if self.backend_name == "brax":
            brax_env, self.horizon, self.env_name = _cached_brax_env(
                env, horizon, env_kwargs, brax_physics
            )
        else:
            self._make_env, self.horizon, self.env_name = gymnasium_factory(
                env, horizon, env_kwargs
            )
        self.truncation_length = (
            self.horizon if self.full_episodes else min(truncation_length, self.horizon)
        )
        self.num_particles = num_particles
        num_envs = num_particles + 1 if self.shared_state else num_particles
        self.num_envs = num_envs
        partner = pair_partners(num_envs)
        if self.shared_state:
            self._mean_particle = num_particles  # the trajectory s of Algorithm 1
            partner[self._mean_particle] = self._mean_particle
        else:
            self._mean_particle = None
        streams = key_streams(seed)
        if self.backend_name == "brax":
            from pes_rl.envs.brax_backend import BraxBackend

            self.backend = BraxBackend(brax_env, num_envs, self.horizon, partner)
        else:
            self.backend = GymnasiumBackend(
                self._make_env,
                num_envs,
                self.horizon,
                seed=numpy_rng(streams.resets),
                partner=partner,
                num_workers=num_workers,
            )
        self.action_low, self.action_high = (
            self.backend.action_low,
            self.backend.action_high,
        )

        # With obs_norm the linear policy gets a bias by default: it absorbs
        # the moves of the normaliser's mean (see pes_rl.normalization).
        use_bias = obs_norm if policy_bias is None else policy_bias
        self.module = make_policy(
            policy,
            self.backend.action_dim,
            hidden_sizes=config.hidden_sizes,
            use_bias=use_bias,
        )
        self.key = streams.noise
        self._eval_key = streams.evaluation
        dummy_obs = jnp.zeros((self.backend.obs_dim,), jnp.float32)
        try:
            params = self.module.init(streams.init, dummy_obs)
        except Exception as err:
            raise ConfigError(f"policy cannot be initialised: {err}") from err
        layer = first_layer(params)
        if obs_norm and (layer is None or layer["kernel"].shape[0] != dummy_obs.size):
            raise ConfigError(
                "obs_norm needs a policy whose first layer is a Dense layer named "
                "Dense_0 reading the observation (the linear and mlp policies): "
                "the agent re-expresses it when the statistics change"
            )
        # Without a bias in the first layer, observations are scaled, not centred.
        self._center_obs = layer is not None and "bias" in layer
        self.theta, self._unravel = ravel_pytree(params)
        self.theta = self.theta.astype(jnp.float32)
        self._tx = make_optimizer(optimizer, learning_rate)
        self.opt_state = self._tx.init(self.theta)
        estimator = make_estimator(
            sigma=sigma,
            accumulate=self.accumulate,
            reuse_noise=self.reuse_noise,
            fitness_shaping=fitness_shaping,
        )
        self.est_state = estimator.init(num_particles, self.theta.shape[0])
        # Agents with the same policy, parameter layout, estimator and optimiser
        # share compiled functions, so building many agents compiles once.
        leaves, treedef = jax.tree.flatten(params)
        try:
            hash(self.module)
            module_key = self.module
        except TypeError:  # a module with unhashable fields: compile per instance
            module_key = id(self.module)
        cache_key = (
            module_key,
            treedef,
            tuple((leaf.shape, leaf.dtype) for leaf in leaves),
            (sigma, self.accumulate, self.reuse_noise, fitness_shaping),
            (optimizer, learning_rate) if isinstance(optimizer, str) else id(optimizer),
            self.shared_state,
        )
        if cache_key not in _COMPILED:
            fns = _compile(
                self.module, self._unravel, estimator, self._tx, self.shared_state
            )
            # Keeps id(optimizer) and id(module) unique while cached.
            _COMPILED[cache_key] = (fns, (optimizer, self.module))
        self._fns = _COMPILED[cache_key][0]
        self.obs_stats = init_stats(self.backend.obs_dim)
        if self.backend_name == "brax":
            self._init_brax(cache_key, estimator, streams.resets)
        self.env_steps = 0  # live training transitions
        self.simulated_steps = 0  # transitions computed: on Brax, absorbed ones too
        self.eval_env_steps = 0
        self.num_updates = 0
        self.last_eval_return = math.nan
        self._warmed_up = False
        self._eval_backends: dict[int, GymnasiumBackend] = {}
        self.last_call_seconds: float | None = None  # Brax: the last device call

    def _init_brax(self, cache_key: tuple, estimator: Estimator, resets) -> None:
        from pes_rl.agents.brax_engine import BraxEngine

        config = self.config
        engine_key = (
            cache_key,
            id(self.backend.env),
            self.num_envs,
            self.horizon,
            self.truncation_length,
            config.obs_norm,
            config.num_devices,
        )
        if engine_key not in _BRAX_ENGINES:
            engine = BraxEngine(
                self.backend,
                _policy(self.module),
                self._unravel,
                estimator,
                self._tx,
                self.num_particles,
                self.truncation_length,
                self._mean_particle,
                config.obs_norm,
                self._center_obs,
                config.num_devices,
            )
            _BRAX_ENGINES[engine_key] = (engine, config.optimizer)
        self._engine = _BRAX_ENGINES[engine_key][0]
        self.backend = self._engine.backend
        dim = self.backend.obs_dim
        zeros = jnp.zeros((dim,), jnp.float32)
        self.obs_stats = RunningStats(jnp.zeros((), jnp.float32), zeros, zeros)
        self._carry = self._engine.place_carry(self._engine.init_carry(resets))
        self._engine.start_compile(
            self._carry, self._train_state(), config.updates_per_call
        )

    def _train_state(self):
        from pes_rl.agents.brax_engine import TrainState

        return self._engine.place(
            TrainState(
                self.theta, self.opt_state, self.est_state, self.obs_stats, self.key
            )
        )

    # -- parameters ---------------------------------------------------------

    @property
    def params(self):
        """Flax parameters of the mean policy."""
        return self._unravel(self.theta)

    @property
    def sigma(self) -> float:
        """The perturbation scale of the next window."""
        sigma = self.config.sigma
        return float(sigma(self.est_state.count) if callable(sigma) else sigma)

    @property
    def learning_rate(self) -> float:
        """The step size of the next update (nan for a custom optimizer)."""
        rate = self.config.learning_rate
        if isinstance(self.config.optimizer, optax.GradientTransformation):
            return math.nan
        return float(rate(self.num_updates) if callable(rate) else rate)

    @property
    def compile_seconds(self) -> float | None:
        """Brax: wall-clock spent compiling (or waiting for a compile) so far."""
        return self._engine.compile_seconds if self.backend_name == "brax" else None

    @property
    def device_description(self) -> str:
        """Where training runs, e.g. "cpu" or "2 x gpu"."""
        if self.backend_name != "brax":
            workers = self.config.num_workers
            return f"cpu, {workers} worker processes" if workers else "cpu"
        platform = jax.devices()[0].platform
        count = self._engine.num_devices
        return platform if count == 1 else f"{count} x {platform}"

    @property
    def windows_per_episode(self) -> int:
        return math.ceil(self.horizon / self.truncation_length)

    # -- training -----------------------------------------------------------

    def _run_window(self, active: np.ndarray | None = None, learn: bool = True):
        self.key, ask_key = jax.random.split(self.key)
        self.est_state, particle_params = self._fns.ask(
            ask_key, self.est_state, self.theta
        )
        mean, inv_std = self._normalizer()

        def policy(obs: np.ndarray) -> np.ndarray:
            return np.asarray(
                self._fns.act_particles(particle_params, obs, mean, inv_std)
            )

        result = self.backend.unroll(
            policy,
            self.truncation_length,
            active=active,
            broadcast_from=self._mean_particle,
            collect_obs=self.config.obs_norm,
        )
        self.env_steps += result.env_steps
        self.simulated_steps += result.env_steps
        n = self.num_particles
        returns = jnp.asarray(result.returns[:n], jnp.float32)
        ended = jnp.asarray(result.episode_ended[:n])
        if learn:
            grad, est_state, theta, opt_state = self._fns.tell_and_step(
                self.est_state, returns, ended, self.theta, self.opt_state
            )
            grad = np.asarray(grad)
            if not np.isfinite(grad).all():
                raise NonFiniteError(
                    f"non-finite gradient estimate at update {self.num_updates + 1}"
                )
            self.theta, self.opt_state = theta, opt_state
        else:
            grad, est_state = self._fns.tell(self.est_state, returns, ended)
        self.est_state = est_state
        if self.config.obs_norm:
            self.obs_stats = update_stats(
                self.obs_stats, result.obs_count, result.obs_sum, result.obs_sum_sq
            )
            theta, eps, score, opt_state = self._fns.renormalize(
                self.theta,
                self.est_state.eps,
                self.est_state.score,
                self.opt_state,
                (mean, inv_std),
                self._normalizer(),
            )
            self.theta, self.opt_state = theta, opt_state
            self.est_state = self.est_state.replace(eps=eps, score=score)
        return result, grad

    def _normalizer(self) -> tuple[np.ndarray, np.ndarray]:
        if self.backend_name == "brax":  # as the jitted step computes it
            return tuple(map(np.asarray, self._engine.normalizer(self.obs_stats)))
        return normalizer(self.obs_stats, self.config.obs_norm, self._center_obs)

    def obs_normalizer(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean, inv_std)`` that ``predict`` applies as ``(obs - mean) *
        inv_std``, or None without ``obs_norm``. Read-only: a copy."""
        if not self.config.obs_norm:
            return None
        return tuple(np.array(x) for x in self._normalizer())

    def _run_brax_windows(
        self, active: np.ndarray, learn: np.ndarray
    ) -> list[dict[str, Any]]:
        """Windows with ``active`` [W, M] masks on the Brax backend, in calls
        of ``updates_per_call``; the info of each learning window."""
        per_call = self.config.updates_per_call
        infos = []
        for first in range(0, len(learn), per_call):
            num = len(learn[first : first + per_call])
            active_call = np.ones((per_call, self.num_envs), bool)
            active_call[:num] = active[first : first + num]
            learn_call = np.zeros(per_call, bool)
            learn_call[:num] = learn[first : first + num]
            state = self._train_state()
            started = time.perf_counter()
            self._carry, state, metrics = self._engine.run(
                self._carry, state, active_call, learn_call, num
            )
            self.theta, self.opt_state, self.est_state = (
                state.theta,
                state.opt_state,
                state.est_state,
            )
            self.obs_stats, self.key = state.obs_stats, state.key
            metrics = jax.device_get(metrics)
            self.last_call_seconds = time.perf_counter() - started
            self.env_steps += int(metrics.env_steps[:num].sum())
            self.simulated_steps += int(metrics.simulated_steps[:num].sum())
            for i in range(num):
                if not metrics.finite[i]:
                    raise NonFiniteError(
                        "non-finite reward, observation or gradient in update "
                        f"{self.num_updates + 1}"
                    )
                if not learn_call[i]:
                    continue
                self.num_updates += 1
                completed = int(metrics.episodes_completed[i])
                infos.append(
                    {
                        "update": self.num_updates,
                        "env_steps": self.env_steps,
                        "simulated_steps": self.simulated_steps,
                        "window_return": float(metrics.window_return[i]),
                        "grad": metrics.grad[i],
                        "grad_norm": float(np.linalg.norm(metrics.grad[i])),
                        "episodes_completed": completed,
                        "train_episode_return": (
                            float(metrics.completed_return_sum[i]) / completed
                            if completed
                            else math.nan
                        ),
                    }
                )
        return infos

    def _stagger_offsets(self) -> np.ndarray:
        """Per pair, the windows it runs before the first update (none for
        truncated ES, full episodes or ``stagger=False``)."""
        windows = self.windows_per_episode
        num_pairs = self.num_particles // 2
        if not self.config.stagger or windows == 1 or self.shared_state:
            return np.zeros(num_pairs, int)
        return (np.arange(num_pairs) * windows) // num_pairs

    @property
    def warm_up_steps(self) -> int:
        """Env steps of the staggered warm-up when no episode ends early."""
        return int(self._stagger_offsets().sum()) * 2 * self.truncation_length

    def _warm_up(self) -> None:
        """Stagger pairs over the horizon: pair j runs ``offset_j`` perturbed
        windows before the first update, exactly as training would, and their
        estimates are discarded. Idle pairs are reported as ended, so their
        accumulators start clean when they join."""
        self._warmed_up = True
        offsets = self._stagger_offsets()
        if not offsets.any():
            return
        start = offsets.max() - offsets
        masks = [np.repeat(start <= window, 2) for window in range(offsets.max())]
        if self.backend_name == "brax":
            self._run_brax_windows(np.array(masks), np.zeros(len(masks), bool))
            return
        for active in masks:
            self._run_window(active=active, learn=False)

    def _updates(self, total_env_steps: int) -> list[dict[str, Any]]:
        """One update (Gymnasium), or one call's worth of updates (Brax)
        without passing ``total_env_steps`` by more than one update."""
        if self.backend_name != "brax":
            return [self.update()]
        if not self._warmed_up:
            self._warm_up()
        per_update = self.num_envs * self.truncation_length
        num = min(
            self.config.updates_per_call,
            max(1, -(-(total_env_steps - self.env_steps) // per_update)),
        )
        return self._run_brax_windows(
            np.ones((num, self.num_envs), bool), np.ones(num, bool)
        )

    def update(self) -> dict[str, Any]:
        """One window of K steps for all particles, then one optimiser step."""
        if not self._warmed_up:
            self._warm_up()
        if self.backend_name == "brax":
            return self._run_brax_windows(
                np.ones((1, self.num_envs), bool), np.ones(1, bool)
            )[0]
        result, grad = self._run_window()
        self.num_updates += 1
        completed = result.completed_returns
        return {
            "update": self.num_updates,
            "env_steps": self.env_steps,
            "simulated_steps": self.simulated_steps,
            "window_return": float(result.returns[: self.num_particles].mean()),
            "grad": grad,
            "grad_norm": float(np.linalg.norm(grad)),
            "episodes_completed": int(completed.size),
            "train_episode_return": (
                float(completed.mean()) if completed.size else math.nan
            ),
        }

    def learn(
        self,
        total_env_steps: int,
        callback: Any = None,
        progress_bar: bool = True,
    ) -> "ESAgent":
        """Update until the cumulative training env steps reach
        ``total_env_steps``. ``callback`` is a function ``f(info)``, a
        ``pes_rl.callbacks.Callback``, or a list of them; it runs after every
        update and stops training by returning False. On the Brax backend
        updates run in device calls of ``updates_per_call``; callbacks run
        after each call with the info of its last update."""
        from pes_rl.callbacks import as_callback

        callback = as_callback(callback)
        callback.on_training_start(self)
        start_steps, start_time = self.env_steps, time.perf_counter()
        bar = tqdm(
            total=total_env_steps,
            initial=self.env_steps,
            unit="step",
            disable=not progress_bar,
            dynamic_ncols=True,
        )
        try:
            while self.env_steps < total_env_steps:
                before = self.env_steps
                info = self._updates(total_env_steps)[-1]
                bar.update(self.env_steps - before)
                elapsed = time.perf_counter() - start_time
                postfix = {
                    "steps_per_s": f"{(self.env_steps - start_steps) / elapsed:.0f}",
                    "window_return": f"{info['window_return']:.2f}",
                }
                if not math.isnan(self.last_eval_return):  # once there is one
                    postfix["eval_return"] = f"{self.last_eval_return:.1f}"
                bar.set_postfix(postfix, refresh=False)
                if callback.on_update(self, info) is False:
                    break
        finally:
            bar.close()
        callback.on_training_end(self)
        return self

    # -- using the policy ---------------------------------------------------

    def _mean_actions(self, obs: np.ndarray) -> np.ndarray:
        mean, inv_std = self._normalizer()
        actions = self._fns.act_mean(self.params, obs, mean, inv_std)
        return np.clip(np.asarray(actions), self.action_low, self.action_high)

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action of the mean policy, clipped to the action
        space; ``obs`` is one observation or a batch."""
        obs = np.asarray(obs, np.float32)
        if obs.ndim == 1:
            return self._mean_actions(obs[None])[0]
        return self._mean_actions(obs)

    def evaluate_episodes(self, num_episodes: int = 10) -> np.ndarray:
        """Returns of ``num_episodes`` episodes of the mean policy, on
        separate environments reset with fixed seeds."""
        if self.backend_name == "brax":
            returns, env_steps, finite = self._engine.evaluate_episodes(
                self.theta, self.obs_stats, num_episodes, self._eval_key
            )
            if not finite:
                raise NonFiniteError("non-finite reward or observation in evaluation")
            self.eval_env_steps += env_steps
            return returns.astype(np.float64)
        backend = self._eval_backends.get(num_episodes)
        if backend is None:
            backend = GymnasiumBackend(
                self._make_env,
                num_episodes,
                self.horizon,
                seed=EVAL_SEED,
                partner=np.arange(num_episodes),
                num_workers=self.config.num_workers,
            )
            self._eval_backends[num_episodes] = backend
        backend.reset(
            np.ones(num_episodes, bool), seeds=EVAL_SEED + np.arange(num_episodes)
        )
        result = backend.unroll(self._mean_actions, self.horizon)
        self.eval_env_steps += result.env_steps
        return result.returns

    def evaluate(self, num_episodes: int = 10) -> float:
        """Mean return of the mean policy over ``num_episodes`` episodes."""
        self.last_eval_return = float(self.evaluate_episodes(num_episodes).mean())
        return self.last_eval_return

    def close(self) -> None:
        """Stop environment worker processes (if any) and close the envs."""
        for backend in [self.backend, *self._eval_backends.values()]:
            backend.close()
        self._eval_backends.clear()

    # -- persistence --------------------------------------------------------

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write parameters, optimiser, normaliser and estimator state,
        counters, the random key and the config atomically (a temporary file,
        then a rename), so a crash mid-write never leaves a broken file.
        ``extra`` is kept alongside (the CLI stores its loop state there)."""
        state = {
            "format": 1,
            "algorithm": type(self).__name__,
            "config": self.config.as_kwargs(),
            "theta": np.asarray(self.theta),
            "opt_state": jax.device_get(self.opt_state),
            "obs_stats": jax.device_get(self.obs_stats),
            "env_steps": self.env_steps,
            "simulated_steps": self.simulated_steps,
            "eval_env_steps": self.eval_env_steps,
            "num_updates": self.num_updates,
            "windows": int(self.est_state.count),  # position of a sigma schedule
            "est_state": jax.device_get(self.est_state),
            "key": np.asarray(jax.random.key_data(self.key)),
            "reset_rng": self._reset_rng_state(),
            "warmed_up": self._warmed_up,
            "particles": self._particles(),
            "extra": extra or {},
        }
        try:
            data = pickle.dumps(state)
        except (TypeError, AttributeError, pickle.PicklingError):
            # An env whose state cannot be pickled: a resume restarts episodes.
            data = pickle.dumps({**state, "particles": None})
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @staticmethod
    def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
        """The saved state as a dict; raises ``ValueError`` for a file that
        is not a readable pes_rl checkpoint."""
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError) as err:
            raise ValueError(f"{path} is not a pes_rl checkpoint ({err})") from None
        if not isinstance(state, dict) or state.get("format") != 1:
            raise ValueError(f"{path} is not a pes_rl checkpoint")
        return state

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> "ESAgent":
        """Restore an agent saved with ``save``: the particles continue their
        episodes where they were (environment snapshots), so training goes on
        as if never stopped. Where an environment's state could not be saved,
        particles start new episodes with cleared accumulators instead, which
        keeps the estimates unbiased. Schedules of sigma and the learning
        rate continue where they were."""
        return cls.from_checkpoint(cls.read_checkpoint(path), **overrides)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], **overrides: Any) -> "ESAgent":
        if cls is ESAgent:
            from pes_rl.agents import ALGORITHMS

            cls = {c.__name__: c for c in ALGORITHMS.values()}[state["algorithm"]]
        agent = cls(**{**state["config"], **overrides})
        agent.theta = jnp.asarray(state["theta"])
        agent.opt_state = jax.tree.map(jnp.asarray, state["opt_state"])
        agent.obs_stats = state["obs_stats"]
        if agent.backend_name == "brax":
            agent.obs_stats = RunningStats(
                *(jnp.asarray(x, jnp.float32) for x in agent.obs_stats)
            )
        agent.env_steps = state["env_steps"]
        agent.simulated_steps = state.get("simulated_steps", agent.env_steps)
        agent.eval_env_steps = state["eval_env_steps"]
        agent.num_updates = state["num_updates"]
        agent.est_state = agent.est_state.replace(
            count=jnp.asarray(state["windows"], jnp.int32)
        )
        agent.key = jax.random.wrap_key_data(jnp.asarray(state["key"]))
        if state.get("reset_rng") is not None:
            agent._set_reset_rng_state(state["reset_rng"])
        if state.get("particles") is not None:
            agent._set_particles(state["particles"])
            agent.est_state = jax.tree.map(jnp.asarray, state["est_state"])
            agent._warmed_up = state["warmed_up"]
        return agent

    def _particles(self):
        """The particles' environments and episode bookkeeping, or None if
        an environment cannot be snapshotted."""
        if self.backend_name == "brax":
            carry = self._carry.replace(key=jax.random.key_data(self._carry.key))
            return jax.device_get(carry)
        return self.backend.particles()

    def _set_particles(self, particles) -> None:
        if self.backend_name == "brax":
            carry = jax.tree.map(jnp.asarray, particles)
            carry = carry.replace(key=jax.random.wrap_key_data(carry.key))
            self._carry = self._engine.place_carry(carry)
        else:
            self.backend.set_particles(particles)

    def _reset_rng_state(self):
        """Where the stream of reset seeds (keys on Brax) stands, so a
        resumed run does not replay its first episodes' start states."""
        if self.backend_name == "brax":
            return np.asarray(jax.random.key_data(self._carry.key))
        return self.backend.rng.bit_generator.state

    def _set_reset_rng_state(self, state) -> None:
        if self.backend_name == "brax":
            key = jax.random.wrap_key_data(jnp.asarray(state))
            self._carry = self._carry.replace(
                key=jax.device_put(key, self._carry.key.sharding)
            )
        else:
            self.backend.rng.bit_generator.state = state


def resolve_backend(backend: str) -> str:
    """ "auto" is Brax when JAX sees an accelerator, Gymnasium on a CPU."""
    if backend == "auto":
        return "gymnasium" if jax.default_backend() == "cpu" else "brax"
    return backend


_BRAX_ENVS: dict[tuple, tuple[Any, int, str]] = {}


def _cached_brax_env(env, horizon, env_kwargs, physics):
    """One env object per name and arguments, so agents share compiled steps."""
    if not isinstance(env, str):
        return brax_factory(env, horizon, env_kwargs, physics)
    key = (env, horizon, repr(sorted((env_kwargs or {}).items())), physics)
    if key not in _BRAX_ENVS:
        _BRAX_ENVS[key] = brax_factory(env, horizon, env_kwargs, physics)
    return _BRAX_ENVS[key]
