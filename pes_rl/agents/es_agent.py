"""The agent: one training state, one pure update, and a loop chosen once.

Per update: ``ask`` draws the window's perturbations, the loop runs K steps
with parameters theta + eps per particle (the jitted engine for a Problem or
a Brax env, the host loop for Gymnasium envs), and ``finish`` turns the
window's returns into the ascent direction, takes one optimiser step and
updates the normaliser (``pes_rl.core.train_state``). Nothing after construction
depends on which loop runs.
"""

import math
import numbers
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from pes_rl.agents.build import build
from pes_rl.agents.defaults import agent_settings, agent_signature, size_decays
from pes_rl.agents.loop import Loop
from pes_rl.agents.predict import predict_actions
from pes_rl.agents.resources import check_evaluation_size
from pes_rl.agents.saving import checkpoint_payload, restore_agent
from pes_rl.core import algorithms
from pes_rl.core.config import AgentConfig, expected_windows
from pes_rl.core.keys import key_streams
from pes_rl.core.multihost import is_main_process, to_host
from pes_rl.core.train_state import with_hyperparams
from pes_rl.envs.registry import FlatObservations
from pes_rl.errors import ConfigError, NonFiniteError
from pes_rl.runs import checkpoints
from pes_rl.runs.callbacks import as_callback, stops

# The class declared for each algorithm, by its name (agent_class fills in
# the others): a cache of classes, the algorithms live in pes_rl.core.algorithms.
_CLASSES: dict[str, type["ESAgent"]] = {}


class ESAgent:
    """Base class of PES, NRES, TruncatedES and FullES: a subclass names its
    ``algorithm`` (``pes_rl.core.algorithms``)."""

    algorithm: algorithms.Algorithm | None = None
    loop: Loop  # HostLoop or JaxLoop, chosen once by pes_rl.agents.build

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("algorithm") is not None:
            _CLASSES.setdefault(cls.algorithm.name, cls)

    def __init__(self, *args: Any, **kwargs: Any):
        """The keyword arguments are ``pes_rl.core.config.AgentConfig``'s fields
        (``help(PES)`` lists them). Those a preset sets, left None, take the
        preset's value, else AgentConfig's: ``preset`` "auto" is the env's
        (or Problem's) own, else "generic" (as on the command line); a
        preset's name picks one, None none."""
        if self.algorithm is None:
            raise TypeError(
                "ESAgent runs no algorithm itself: use PES, NRES, TruncatedES, "
                "FullES or pes_rl.agents.agent_class(name)"
            )
        bound = ESAgent.__init__.__signature__.bind(self, *args, **kwargs)
        bound.apply_defaults()
        kwargs = {k: v for k, v in bound.arguments.items() if k != "self"}
        env, problem, preset = kwargs["env"], kwargs["problem"], kwargs["preset"]
        if env is None and problem is None:
            kwargs["env"] = env = "swimmer"
        algo = self.algorithm.name
        name, settings = agent_settings(preset, algo, env, problem, kwargs)
        hidden_sizes = tuple(kwargs["hidden_sizes"])
        kwargs.update(settings, preset=name, hidden_sizes=hidden_sizes)
        config = AgentConfig(**kwargs)
        config.validate()
        self.config = config
        streams = key_streams(config.seed)
        built = build(config, self.algorithm, streams)
        self.loop, self.state, self._unravel = built.loop, built.state, built.unravel
        self.backend_name, self.env_name = built.backend_name, built.name
        self.horizon, self.truncation_length = built.horizon, built.truncation_length
        self.num_particles, self.num_envs = config.num_particles, built.num_envs
        self.module, self.problem = built.module, built.problem
        self.initial_carry = built.initial_carry  # [C], empty unless recurrent
        self._env_bytes = built.env_bytes  # estimated memory of one env
        self._eval_key = streams.evaluation
        self.env_steps = 0  # live training transitions
        self.simulated_steps = 0  # computed: on the jitted engine, absorbed too
        self.eval_env_steps = 0
        self.num_updates = 0
        self.last_eval_return = math.nan
        self._warmed_up = False
        self._said_unsavable = False  # warned that particles cannot be saved

    __init__.__signature__ = agent_signature()

    # -- the training state -------------------------------------------------

    def _field(name: str):  # a property reading and replacing one state field
        return property(
            lambda self: getattr(self.state, name),
            lambda self, value: setattr(
                self, "state", self.state.replace(**{name: value})
            ),
        )

    theta = _field("theta")  # [D] mean parameters, flat
    opt_state = _field("opt_state")
    est_state = _field("est_state")
    obs_stats = _field("obs_stats")
    key = _field("key")
    del _field

    @property
    def params(self):
        """Parameters (a pytree) of the mean policy or problem."""
        return self._unravel(self.theta)

    @property
    def sigma(self) -> float:
        """The perturbation scale of the next window."""
        return self._rate_now(self.config.sigma)

    @property
    def learning_rate(self) -> float:
        """The step size of the next update (nan for a custom optimizer)."""
        if isinstance(self.config.optimizer, optax.GradientTransformation):
            return math.nan
        return self._rate_now(self.config.learning_rate)

    def _rate_now(self, rate) -> float:
        """A schedule at the state's update count, its one clock."""
        if not callable(rate):
            return float(rate)
        # A replicated scalar, read here (no collective: any process may ask).
        return float(rate(jnp.asarray(jax.device_get(self.state.hyper.updates))))

    @property
    def compile_seconds(self) -> float | None:
        """Jitted engine: wall-clock spent compiling (or waiting for it)."""
        return self.loop.compile_seconds

    @property
    def device_description(self) -> str:
        """Where training runs, e.g. "cpu" or "2 x gpu"."""
        return self.loop.device_description

    @property
    def last_call_seconds(self) -> float | None:
        return self.loop.last_call_seconds

    @property
    def windows_per_episode(self) -> int:
        return math.ceil(self.horizon / self.truncation_length)

    def obs_normalizer(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean, inv_std)`` that ``predict`` applies as ``(obs - mean) *
        inv_std``, or None without ``obs_norm``. Read-only: a copy."""
        if not self.config.obs_norm:
            return None
        normalizer = to_host(self.loop.normalizer(self.obs_stats))
        return tuple(np.array(x) for x in normalizer)

    # -- training -----------------------------------------------------------

    def _stagger_offsets(self) -> np.ndarray:
        """Per pair, the windows it runs before the first update (none for
        truncated ES, full episodes or ``stagger=False``)."""
        windows = self.windows_per_episode
        num_pairs = self.num_particles // 2
        if not self.config.stagger or windows == 1 or not self.algorithm.persistent:
            return np.zeros(num_pairs, int)
        return (np.arange(num_pairs) * windows) // num_pairs

    @property
    def warm_up_steps(self) -> int:
        """Env steps of the staggered warm-up when no episode ends early."""
        return int(self._stagger_offsets().sum()) * 2 * self.truncation_length

    def _run(self, active: np.ndarray, learn: np.ndarray) -> list[dict[str, Any]]:
        """Windows with ``active`` [W, M] masks and ``learn`` [W] flags; the
        info of each learning window."""
        self.state, metrics = self.loop.run(self.state, active, learn)
        infos = []
        for i in range(len(metrics.finite)):
            self.env_steps += int(metrics.env_steps[i])
            self.simulated_steps += int(metrics.simulated_steps[i])
            if not metrics.finite[i]:
                failure = (
                    self.loop.failure or "non-finite reward, observation or gradient"
                )
                raise NonFiniteError(f"{failure} in update {self.num_updates + 1}")
            if not learn[i]:
                continue
            self.num_updates += 1
            completed = int(metrics.episodes_completed[i])
            infos.append(
                {
                    "update": self.num_updates,
                    "env_steps": self.env_steps,
                    "simulated_steps": self.simulated_steps,
                    "window_return": float(metrics.window_return[i]),
                    "grad": np.asarray(metrics.grad[i]),
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

    def _warm_up(self) -> None:
        """Stagger pairs over the horizon: pair j runs ``offset_j`` perturbed
        windows before the first update, exactly as training would, and their
        estimates are discarded. Idle pairs are reported as ended, so their
        accumulators start clean when they join."""
        self._warmed_up = True
        offsets = self._stagger_offsets()
        if offsets.any():
            start = offsets.max() - offsets
            active = [np.repeat(start <= w, 2) for w in range(offsets.max())]
            self._run(np.array(active), np.zeros(len(active), bool))

    def _updates(self, total_env_steps: int) -> list[dict[str, Any]]:
        """One device call's worth of updates (one on the host loop), without
        passing ``total_env_steps`` by more than one update."""
        if not self._warmed_up:
            self._warm_up()
        per_update = self.num_envs * self.truncation_length
        remaining = max(1, -(-(total_env_steps - self.env_steps) // per_update))
        num = min(self.loop.per_call, remaining)
        return self._run(np.ones((num, self.num_envs), bool), np.ones(num, bool))

    def update(self) -> dict[str, Any]:
        """One window of K steps for all particles, then one optimiser step."""
        if not self._warmed_up:
            self._warm_up()
        return self._run(np.ones((1, self.num_envs), bool), np.ones(1, bool))[0]

    def learn(
        self,
        total_env_steps: int,
        callback: Any = None,
        progress_bar: bool = True,
        reset_num_timesteps: bool = True,
    ) -> "ESAgent":
        """Train ``total_env_steps`` more env steps (Stable-Baselines3's
        ``learn``); ``reset_num_timesteps`` first restarts the ``env_steps``
        counter at 0. ``callback``: a function ``f(info)``, a
        ``pes_rl.runs.callbacks.Callback`` or a list of them, run after every update
        (on the jitted engine, every device call, with its last update's info);
        a falsy answer other than None (False, numpy's False, 0) stops."""
        steps = total_env_steps
        if isinstance(steps, bool) or not (
            isinstance(steps, numbers.Real) and 0 <= steps < math.inf
        ):
            raise ConfigError(
                f"total_env_steps must be a non-negative number, got {steps!r}"
            )
        callback = as_callback(callback)
        if reset_num_timesteps:
            self.env_steps = self.simulated_steps = 0
        target = self.env_steps + total_env_steps
        windows = expected_windows(target, self.num_envs, self.truncation_length)
        if total_env_steps > 0 and (sized := size_decays(self.config, windows)):
            self.config = sized  # decays sized by the first learn's budget
            self.state = with_hyperparams(self.state, sized)  # data: no compile
        self.loop.prepare(self.state)
        callback.on_training_start(self)
        start_steps, start_time = self.env_steps, time.perf_counter()
        bar = tqdm(
            total=target,
            initial=self.env_steps,
            unit="step",
            disable=not progress_bar,
            dynamic_ncols=True,
        )
        try:
            while self.env_steps < target:
                before = self.env_steps
                info = self._updates(target)[-1]
                bar.update(self.env_steps - before)
                elapsed = time.perf_counter() - start_time
                postfix = {
                    "steps_per_s": f"{(self.env_steps - start_steps) / elapsed:.0f}",
                    "window_return": f"{info['window_return']:.2f}",
                }
                if not math.isnan(self.last_eval_return):  # once there is one
                    postfix["eval_return"] = f"{self.last_eval_return:.1f}"
                bar.set_postfix(postfix, refresh=False)
                if stops(callback.on_update(self, info)):
                    break
        finally:
            bar.close()
        callback.on_training_end(self)
        return self

    # -- using the result ---------------------------------------------------

    @property
    def flattened_observations(self) -> Any:
        """The env's own observation space where the agent flattens it into
        a vector (Dict, Tuple, ...), else None."""
        make_env = getattr(self.loop, "make_env", None)
        return make_env.space if isinstance(make_env, FlatObservations) else None

    @property
    def recurrent(self) -> bool:
        """The policy keeps a carry (gru, lstm or a recurrent module)."""
        return self.initial_carry.size > 0

    def predict(self, obs, state=None, episode_start=None):
        """Deterministic action of the mean policy for one observation or a
        batch: clipped to a Box, an argmax for discrete spaces.

        A recurrent policy returns ``(action, state)`` in the style of
        Stable-Baselines3: ``state`` is the flat carry ([C], or [B, C] for a
        batch) to pass back at the next step; None starts fresh, and rows
        where ``episode_start`` is True start fresh too. A stateless policy
        returns the action alone, or ``(action, None)`` when given a
        ``state`` or ``episode_start``."""
        return predict_actions(self, obs, state, episode_start)

    def evaluate_episodes(self, num_episodes: int = 10) -> np.ndarray:
        """Returns of ``num_episodes`` whole episodes (inner runs) of the mean
        parameters, from fixed seeds whatever the training seed."""
        self.check_evaluation(num_episodes)
        returns, env_steps, finite = self.loop.evaluate(
            self.state, num_episodes, self._eval_key, self._unravel
        )
        if not finite:
            raise NonFiniteError("non-finite reward or observation in evaluation")
        self.eval_env_steps += env_steps
        return np.asarray(returns, np.float64)

    def check_evaluation(self, num_episodes: Any) -> None:
        """ConfigError unless ``num_episodes`` is a positive integer whose
        evaluation envs (one per episode) fit in memory."""
        check_evaluation_size(num_episodes, self._env_bytes)

    def evaluate(self, num_episodes: int = 10) -> float:
        """Mean return of the mean parameters over ``num_episodes`` episodes."""
        self.last_eval_return = float(self.evaluate_episodes(num_episodes).mean())
        return self.last_eval_return

    def close(self) -> None:
        """Stop environment worker processes (if any) and close the envs."""
        self.loop.close()

    # -- persistence --------------------------------------------------------

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write the training state, the particles, the counters and the
        config atomically (``pes_rl.runs.checkpoints``). ``extra`` is kept
        alongside (the CLI stores its loop state there). With several
        processes (``jax.distributed``) every process calls it: the state is
        gathered from all, and process 0 alone writes."""
        payload = checkpoint_payload(self, extra)
        if is_main_process():
            checkpoints.write(path, payload)

    read_checkpoint = staticmethod(checkpoints.read)

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> "ESAgent":
        """Restore an agent saved with ``save``: the particles continue their
        episodes where they were, so training goes on as if never stopped.
        An agent built from an env instance needs it again: ``env=...``.
        Where the particles could not be saved, they start new episodes with
        cleared accumulators instead, which keeps the estimates unbiased.
        Schedules of sigma and the learning rate continue where they were."""
        return cls.from_checkpoint(cls.read_checkpoint(path), **overrides)

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any], **overrides: Any) -> "ESAgent":
        if cls is ESAgent:  # the saved agent's class: PES, NRES, ...
            cls = agent_class(saved["algorithm"])
        return restore_agent(cls, saved, overrides)


def agent_class(name: str) -> type[ESAgent]:
    """The agent class of the registered algorithm ``name`` (``pes`` or
    ``PES``): the one declared for it (``pes_rl.agents.PES``), else one made
    here, named after the algorithm's agent name."""
    algorithm = algorithms.get(name)
    if algorithm.name not in _CLASSES:  # __init_subclass__ records it
        type(
            algorithm.agent_name,
            (ESAgent,),
            {"algorithm": algorithm, "__doc__": f"{algorithm.summary}."},
        )
    return _CLASSES[algorithm.name]
