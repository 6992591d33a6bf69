"""The agent's settings, declared once, and their validation.

``AgentConfig`` holds every setting of an agent: the agents' keyword
arguments (``PES(sigma=...)``) are its fields, and the command line's
``TrainConfig`` extends it with the run's own settings; its flags and
``--help`` come from the fields, their docstrings and ``metadata``:

- ``preset``: a preset sets it (an agent's None takes the preset's value);
- ``flag``: the flag's name where it is not the field's, or False for none;
- ``type`` / ``choices``: how the command line parses it (``choices`` may be
  a function, read when the parser is built).
"""

import ast
import inspect
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import flax.linen as nn
import optax

from pes_rl.core.estimators import FITNESS_SHAPINGS
from pes_rl.core.policies import POLICIES
from pes_rl.core.schedules import LinearDecay
from pes_rl.errors import ConfigError

BACKENDS = ("gymnasium", "mujoco", "brax", "auto")
OPTIMIZERS = ("sgd", "adam")
BRAX_PHYSICS = ("generalized", "positional", "spring", "mjx")


def setting(default: Any = MISSING, *, factory: Any = MISSING, **metadata: Any):
    """A field with the metadata the module docstring describes."""
    return field(default=default, default_factory=factory, metadata=metadata)


@dataclass(frozen=True)
class AgentConfig:
    env: Any = "swimmer"
    """Alias (swimmer, halfcheetah, hopper, walker2d, ant, linear_quadratic),
    Gymnasium id, module:EnvId, or (in Python) a gym.Env."""
    backend: str = setting("gymnasium", choices=BACKENDS)
    """gymnasium, mujoco (the Gymnasium MuJoCo v5 tasks in one
    ``mujoco.batch``, equal to gymnasium bit for bit), brax, or auto (brax
    when JAX sees an accelerator, else mujoco for the tasks it covers, else
    gymnasium)."""
    policy: Any = setting("linear", preset=True, choices=POLICIES)
    """linear, mlp, gru or lstm (recurrent: the carry persists across windows
    and starts fresh with every episode), or (in Python) a flax.linen.Module:
    one mapping observation to action, a recurrent one
    (``initialize_carry`` and ``(carry, obs) -> (carry, action)``), or a bare
    recurrent cell (``flax.linen.RNNCellBase``), which gets an input and an
    output layer."""
    num_particles: int = setting(20, preset=True)
    """N, the number of perturbed particles: even, N/2 antithetic pairs."""
    truncation_length: int = setting(100, preset=True)
    """K, environment steps per window (one optimiser step per window)."""
    horizon: int | None = None
    """T, episode length; defaults to the environment's episode limit."""
    sigma: Any = setting(0.3, preset=True, type=float)
    """Standard deviation of the parameter perturbations (in Python also a
    schedule over optimiser updates, e.g. ``pes_rl.core.schedules.LinearDecay``)."""
    learning_rate: Any = setting(0.1, preset=True, type=float)
    """Optimiser step size (in Python also a schedule over updates)."""
    optimizer: Any = setting("sgd", preset=True, choices=OPTIMIZERS)
    """sgd, adam, or (in Python) an optax.GradientTransformation."""
    fitness_shaping: str = setting("none", preset=True, choices=FITNESS_SHAPINGS)
    """none (unbiased), std (divide by the std of window returns), or
    centered_ranks (biased)."""
    top_pairs: int | None = setting(None, preset=True)
    """b: each update weighs only the b antithetic pairs with the best
    max(R+, R-) (ARS's top-b directions; biased); all pairs when not given."""
    obs_norm: bool = setting(False, preset=True)
    """Normalise observations with running mean and std."""
    reward_shift: float = setting(0.0, preset=True)
    """Subtracted from the reward of every training step (the ARS paper's
    removal of the survival bonus); evaluations and reported episode returns
    keep the env's own reward."""
    stagger: bool = setting(True, preset=True)
    """Start pairs at offsets spread over the horizon (after an exact warm-up)."""
    seed: int = 0
    """Seed of every random choice: initial parameters, noise, reset seeds."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layer sizes of the mlp policy."""
    recurrent_size: int = setting(32, preset=True)
    """Hidden units of the gru and lstm policies."""
    policy_bias: bool | None = setting(None, flag=False)
    """Give the linear policy a bias term; None: exactly when ``obs_norm``."""
    env_kwargs: dict | None = setting(None, preset=True, flag=False)
    """Keyword arguments for the environment's constructor."""
    num_workers: int = 0
    """0 steps the environments in this process; n > 0 splits them into n + 1
    blocks stepped in parallel, one here and one in each of n worker
    processes (spawn context), or, with ``workers="ray"``, into n blocks of
    whole pairs on n Ray workers. Gymnasium backend only."""
    workers: str = "processes"
    """processes (this machine) or ray (Ray actors, any number of machines)."""
    ray_address: str | None = None
    """With workers ray: HOST:PORT of a running Ray cluster's head, or auto
    (the cluster this machine joined); a local Ray instance when not given."""
    updates_per_call: int = 1
    """Brax backend: updates run per jitted device call (an outer loop on the
    device); callbacks and evaluations happen between calls."""
    num_devices: int | None = setting(None, flag="devices")
    """Brax backend: shard particles over the first this many devices of
    ``jax.devices()`` (all when not given; every host's after
    ``jax.distributed.initialize``)."""
    brax_physics: str | None = setting(None, choices=BRAX_PHYSICS)
    """Brax backend: physics pipeline (generalized, positional, spring, mjx);
    the environment's own default when not given."""
    problem: Any = None
    """A Problem to train instead of an environment, on the jitted engine:
    in Python a Problem (``pes_rl.problems``), on the command line a
    registered name (linear_quadratic, influence_balancing, lr_schedule_toy)
    or module:factory. ``env`` is then unused (None in Python), and so are
    ``backend`` and the policy settings."""
    preset: str | None = None
    """The preset whose settings filled the ones not given (a record:
    ``pes_rl.agents.defaults`` applies it); None for none."""

    def as_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def validate(self) -> None:
        """ConfigError for the first setting no agent can use."""
        if self.problem is not None and self.env is not None:
            raise ConfigError("pass env or problem, not both")
        if self.problem is None and not _env_like(self.env):
            raise ConfigError(
                f"env must be a name (alias, Gymnasium id, module:EnvId) or an "
                f"env instance, got {self.env!r}"
            )
        self.check_settings()
        self.check_placement()

    def check_settings(self) -> None:
        """The values of the learning settings, each valid on its own."""
        _positive_int("num_particles", self.num_particles)
        if self.num_particles % 2:
            raise ConfigError(
                "num_particles must be even (antithetic pairs), "
                f"got {self.num_particles}"
            )
        _positive_int("truncation_length", self.truncation_length)
        if self.horizon is not None:
            _positive_int("horizon", self.horizon)
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
        if self.top_pairs is not None:
            _positive_int("top_pairs", self.top_pairs)
            if self.top_pairs > self.num_particles // 2:
                raise ConfigError(
                    f"top_pairs is {self.top_pairs} but there are only "
                    f"{self.num_particles // 2} pairs (num_particles / 2)"
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
        for size in self.hidden_sizes:
            _positive_int("hidden layer size", size)
        _positive_int("recurrent_size", self.recurrent_size)

    def check_placement(self) -> None:
        """Where the work runs: worker processes, Ray, devices."""
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int):
            raise ConfigError(
                f"num_workers must be an integer, got {self.num_workers!r}"
            )
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.workers not in ("processes", "ray"):
            raise ConfigError(f"unknown workers {self.workers!r}: use processes or ray")
        if self.workers == "ray":
            _positive_int("num_workers (Ray workers)", self.num_workers)
        elif self.ray_address is not None:
            raise ConfigError("ray_address needs workers='ray'")
        _positive_int("updates_per_call", self.updates_per_call)
        if self.num_devices is not None:
            _positive_int("num_devices", self.num_devices)
            import jax

            available = jax.device_count()
            if self.num_devices > available:
                raise ConfigError(
                    f"num_devices is {self.num_devices} but JAX sees {available} "
                    "device(s)"
                )


# The settings a preset sets; None in an agent's call takes the preset's.
PRESET_KEYS = tuple(f.name for f in fields(AgentConfig) if f.metadata.get("preset"))


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def flag_name(name: str) -> str:
    """The command-line flag of the setting ``name`` (``--num-devices`` is
    ``--devices``)."""
    found = AgentConfig.__dataclass_fields__.get(name)
    flag = found.metadata.get("flag") if found is not None else None
    return "--" + (flag if isinstance(flag, str) else name).replace("_", "-")


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings of a dataclass's fields, read from its source and its
    bases' (a subclass's docstring replaces its base's)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if "__dataclass_fields__" not in vars(klass):
            continue
        body = ast.parse(inspect.getsource(klass)).body[0].body
        for node, nxt in zip(body, body[1:], strict=False):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


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
