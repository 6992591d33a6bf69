"""Agent configuration and its validation."""

import math
from dataclasses import dataclass, fields
from typing import Any

import flax.linen as nn
import optax

from pes_rl.errors import ConfigError
from pes_rl.estimators import FITNESS_SHAPINGS
from pes_rl.policies import POLICIES
from pes_rl.schedules import LinearDecay

BACKENDS = ("gymnasium", "brax", "auto")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class AgentConfig:
    env: Any = "swimmer"
    """Alias (swimmer, halfcheetah, ...), Gymnasium id, module:EnvId, or a gym.Env."""
    problem: Any = None
    """A Problem (``pes_rl.problems``) to train instead of an environment, on
    the jitted engine; ``env`` must then be None, and ``backend`` and the
    policy fields are unused."""
    backend: str = "gymnasium"
    """gymnasium, brax, or auto (brax when JAX sees an accelerator)."""
    policy: Any = "linear"
    """linear, mlp, gru, lstm, or a flax.linen.Module: one mapping observation
    to action, a recurrent one (``initialize_carry`` and ``(carry, obs) ->
    (carry, action)``), or a bare recurrent cell (``flax.linen.RNNCellBase``),
    which gets an input and an output layer."""
    num_particles: int = 20
    """N, the number of perturbed particles: even, N/2 antithetic pairs."""
    truncation_length: int = 100
    """K, environment steps per window (one optimiser step per window)."""
    horizon: int | None = None
    """T, episode length; defaults to the environment's episode limit."""
    sigma: Any = 0.3
    """Standard deviation of the parameter perturbations, or a schedule over
    windows (e.g. ``pes_rl.schedules.LinearDecay``)."""
    learning_rate: Any = 0.1
    """Optimiser step size, or a schedule over updates."""
    optimizer: Any = "sgd"
    """sgd, adam, or an optax.GradientTransformation."""
    fitness_shaping: str = "none"
    """none (unbiased), std (divide by the std of window returns), or
    centered_ranks (biased)."""
    obs_norm: bool = False
    """Normalise observations with running mean and std."""
    reward_shift: float = 0.0
    """Subtracted from the reward of every training step (the ARS paper's
    removal of the survival bonus); evaluations and reported episode returns
    keep the env's own reward."""
    stagger: bool = True
    """Start pairs at offsets spread over the horizon (after an exact warm-up)."""
    seed: int = 0
    """Seed of every random choice: initial parameters, noise, reset seeds."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layer sizes of the mlp policy."""
    recurrent_size: int = 32
    """Hidden units of the gru and lstm policies."""
    policy_bias: bool = False
    """Give the linear policy a bias term."""
    env_kwargs: dict | None = None
    """Keyword arguments for the environment's constructor."""
    num_workers: int = 0
    """0 steps the environments in this process; n > 0 splits them into n + 1
    blocks stepped in parallel, one here and one in each of n worker
    processes (spawn context), or, with ``workers="ray"``, into n blocks of
    whole pairs on n Ray workers. Gymnasium backend only."""
    workers: str = "processes"
    """processes (this machine) or ray (Ray actors, any number of machines)."""
    ray_address: str | None = None
    """Ray cluster to join (HOST:PORT or auto); a local Ray when not given."""
    updates_per_call: int = 1
    """Brax backend: updates run per jitted device call (an outer loop on the
    device); callbacks and evaluations happen between calls."""
    num_devices: int | None = None
    """Brax backend: shard particles over the first this many devices of
    ``jax.devices()`` (all when not given; every host's after
    ``jax.distributed.initialize``)."""
    brax_physics: str | None = None
    """Brax backend: physics pipeline (generalized, positional, spring, mjx);
    the environment's default when not given."""
    preset: str | None = None
    """The preset whose settings filled the arguments not given (a record:
    ``pes_rl.agent_defaults`` applies it); None for none."""

    def as_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def validate(self) -> None:
        def positive_int(name: str, value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")

        if self.problem is not None and self.env is not None:
            raise ConfigError("pass env or problem, not both")
        if self.problem is None and not _env_like(self.env):
            raise ConfigError(
                f"env must be a name (alias, Gymnasium id, module:EnvId) or an "
                f"env instance, got {self.env!r}"
            )

        positive_int("num_particles", self.num_particles)
        if self.num_particles % 2:
            raise ConfigError(
                "num_particles must be even (antithetic pairs), "
                f"got {self.num_particles}"
            )
        positive_int("truncation_length", self.truncation_length)
        if self.horizon is not None:
            positive_int("horizon", self.horizon)
        shift = self.reward_shift
        if isinstance(shift, bool) or not isinstance(shift, int | float):
            raise ConfigError(f"reward_shift must be a number, got {shift!r}")
        if not math.isfinite(shift):
            raise ConfigError(f"reward_shift must be finite, got {shift}")
        for name in ("sigma", "learning_rate"):
            check_rate(name, getattr(self, name))
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"unknown backend {self.backend!r}: use one of {', '.join(BACKENDS)}"
            )
        if not isinstance(self.policy, nn.Module) and self.policy not in POLICIES:
            raise ConfigError(
                f"unknown policy {self.policy!r}: use one of {', '.join(POLICIES)} "
                "or pass a flax.linen.Module"
            )
        if (
            not isinstance(self.optimizer, optax.GradientTransformation)
            and self.optimizer not in OPTIMIZERS
        ):
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}: use one of "
                f"{', '.join(OPTIMIZERS)} or pass an optax.GradientTransformation"
            )
        if self.fitness_shaping not in FITNESS_SHAPINGS:
            raise ConfigError(
                f"unknown fitness shaping {self.fitness_shaping!r}: use one of "
                f"{', '.join(FITNESS_SHAPINGS)}"
            )
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not 0 <= self.seed < 2**63
        ):
            raise ConfigError(
                f"seed must be a non-negative integer below 2**63 (64 bits), got "
                f"{self.seed!r}"
            )
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int):
            raise ConfigError(
                f"num_workers must be an integer, got {self.num_workers!r}"
            )
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.workers not in ("processes", "ray"):
            raise ConfigError(f"unknown workers {self.workers!r}: use processes or ray")
        if self.workers == "ray":
            positive_int("num_workers (Ray workers)", self.num_workers)
        elif self.ray_address is not None:
            raise ConfigError("ray_address needs workers='ray'")
        positive_int("updates_per_call", self.updates_per_call)
        if self.num_devices is not None:
            positive_int("num_devices", self.num_devices)
            import jax

            available = jax.device_count()
            if self.num_devices > available:
                raise ConfigError(
                    f"num_devices is {self.num_devices} but JAX sees {available} "
                    "device(s)"
                )
        for size in self.hidden_sizes:
            positive_int("hidden layer size", size)
        positive_int("recurrent_size", self.recurrent_size)


# The parameters are float32: a larger step is inf, and sigma is squared.
FLOAT32_MAX = 3.4028234663852886e38
RATE_LIMITS = {"sigma": math.sqrt(FLOAT32_MAX), "learning_rate": FLOAT32_MAX}
MAX_COUNT = 2**31 - 1  # JAX's int32 update and window counters


def check_rate(name: str, value: Any) -> None:
    """sigma or the learning rate: a positive number the float32 parameters
    can take, a ``LinearDecay`` between two such over at most ``MAX_COUNT``
    counts, or another schedule (a callable, unchecked)."""
    if isinstance(value, LinearDecay):
        check_rate(f"{name}'s decay start", value.start)
        check_rate(f"{name}'s decay end", value.end)
        steps = value.steps
        if steps is not None and (
            isinstance(steps, bool)
            or not isinstance(steps, int)
            or not 0 < steps <= MAX_COUNT
        ):
            raise ConfigError(
                f"{name}'s decay must last 1 to {MAX_COUNT} counts (JAX's int32 "
                f"counters), got {steps!r}"
            )
        return
    if callable(value):
        return
    limit = RATE_LIMITS[name.split("'")[0]]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= limit
    ):
        raise ConfigError(
            f"{name} must be a positive number up to {limit:.3g} (float32 "
            f"parameters), got {value!r}"
        )


def _env_like(env: Any) -> bool:
    """A name, or an object with an env's ``reset`` and ``step`` (a
    gymnasium.Env, or a Brax env on the brax backend)."""
    return isinstance(env, str) or (hasattr(env, "reset") and hasattr(env, "step"))


def window_length(truncation_length: int, horizon: int, full_episodes: bool) -> int:
    """K as the agents run it: the horizon for full-episode ES, else at most
    the horizon."""
    return horizon if full_episodes else min(truncation_length, horizon)


def expected_windows(total_steps: int, num_envs: int, window: int) -> int:
    """Windows (and so updates) a budget of env steps buys when every
    particle is stepped for the whole window; decays of sigma and the
    learning rate run over this many."""
    return max(1, total_steps // max(1, num_envs * window))


def make_optimizer(
    optimizer: Any, learning_rate: float
) -> optax.GradientTransformation:
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    return {"sgd": optax.sgd, "adam": optax.adam}[optimizer](learning_rate)
