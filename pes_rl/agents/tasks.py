"""What an agent's particles run: a Problem, a Brax or Playground env with
the policy (a Problem too) on the jitted engine, or Gymnasium envs on the
host. Chosen once, at construction, from the config."""

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

from pes_rl.agents.resources import bytes_per_env, check_fits, format_bytes
from pes_rl.core.config import AgentConfig
from pes_rl.core.keys import numpy_rng
from pes_rl.core.policies import carry_layout, make_policy
from pes_rl.envs.adapters.brax_problem import EnvProblem
from pes_rl.envs.backends.gymnasium import GymnasiumBackend
from pes_rl.envs.backends.mujoco_batch import MujocoBackend, host_backend
from pes_rl.envs.backends.pool import UnsavableEnvError, check_copyable
from pes_rl.envs.registry import (
    brax_factory,
    gymnasium_factory,
    is_playground,
    playground_factory,
)
from pes_rl.errors import ConfigError
from pes_rl.problems import check


class BoundedCache:
    """The newest ``size`` values by key; older ones are dropped."""

    def __init__(self, size: int):
        self.size, self.items = size, OrderedDict()

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
        if key in self.items:
            self.items.move_to_end(key)
        else:
            self.items[key] = build()
            if len(self.items) > self.size:
                self.items.popitem(last=False)
        return self.items[key]


_BRAX_ENVS = BoundedCache(16)


def key_of(obj: Any) -> Any:
    """A cache key for an object: itself if hashable, else its identity (the
    cached value then keeps the object alive, so the identity stays unique)."""
    try:
        hash(obj)
        return obj
    except TypeError:
        return ("id", id(obj))


def resolve_backend(backend: str) -> str:
    """ "auto" is Brax when JAX sees an accelerator, else a host backend
    ("gymnasium" here; the host task then picks mujoco for covered ids)."""
    if backend == "auto":
        return "gymnasium" if jax.default_backend() == "cpu" else "brax"
    return backend


@dataclass
class Task:
    backend_name: str  # "gymnasium", "mujoco", "brax", "playground" or "jax"
    name: str
    horizon: int
    module: Any  # the policy (None for a Problem)
    problem: Any  # what the jitted engine runs (None on the host loop)
    host: GymnasiumBackend | None
    make_env: Callable | None
    env_bytes: float = 0.0  # measured per Gymnasium env; 0 on the jitted engine


def make_task(
    config: AgentConfig, num_envs: int, partner, streams, shared_start: bool
) -> Task:
    """The task ``config`` names; ``shared_start``: every window starts all
    particles from one env's state (truncated ES)."""
    playground = config.problem is None and is_playground(config.env)
    jitted = (
        config.problem is not None
        or playground
        or resolve_backend(config.backend) == "brax"
    )
    if jitted and config.workers == "ray":
        raise ConfigError(
            "Ray workers step Gymnasium envs; the jitted engine (Brax, "
            "Playground, a Problem) scales over devices and jax.distributed "
            "instead"
        )
    if config.problem is not None:
        return _problem_task(config)
    if playground:
        return _playground_task(config)
    if resolve_backend(config.backend) == "brax":
        return _brax_task(config)
    return _gymnasium_task(config, num_envs, partner, streams, shared_start)


def _problem_task(config: AgentConfig) -> Task:
    problem = config.problem
    check(problem)
    name, horizon = type(problem).__name__, problem.horizon
    if config.horizon not in (None, horizon):
        raise ConfigError(f"{name} sets its own horizon ({horizon})")
    return Task("jax", name, horizon, None, problem, None, None)


def _playground_task(config: AgentConfig) -> Task:
    if config.brax_physics is not None:
        raise ConfigError("brax_physics does not apply to Playground envs")
    env, horizon, name = _BRAX_ENVS.get(
        ("playground", key_of(config.env), config.horizon) + (repr(config.env_kwargs),),
        lambda: playground_factory(config.env, config.horizon, config.env_kwargs),
    )
    module = policy_module(config, env.action_size)
    problem = EnvProblem(env, module, horizon)
    return Task("playground", name, horizon, module, problem, None, None)


def _brax_task(config: AgentConfig) -> Task:
    env, horizon, name = _BRAX_ENVS.get(
        (key_of(config.env), config.horizon, repr(config.env_kwargs))
        + (config.brax_physics,),
        lambda: brax_factory(
            config.env, config.horizon, config.env_kwargs, config.brax_physics
        ),
    )
    module = policy_module(config, int(env.action_size))
    problem = EnvProblem(env, module, horizon)
    return Task("brax", name, horizon, module, problem, None, None)


def _gymnasium_task(
    config: AgentConfig, num_envs: int, partner, streams, shared_start: bool
) -> Task:
    make_env, horizon, name = gymnasium_factory(
        config.env, config.horizon, config.env_kwargs
    )
    if shared_start:
        _check_shared_start(make_env, config)
    seed = numpy_rng(streams.resets)
    env_bytes = bytes_per_env(make_env)
    if config.ray_address is None:  # the envs live on this machine
        check_fits(
            f"{num_envs} environments of about {format_bytes(env_bytes)} each",
            num_envs * env_bytes,
        )
    backend_name = host_backend(config, make_env)  # gymnasium or mujoco
    if config.workers == "ray":
        from pes_rl.envs.backends.ray_workers import RayBackend

        host = RayBackend(
            make_env, num_envs, horizon, seed, partner, config.num_workers,
            config.ray_address, config.reward_shift, backend_name == "mujoco",
        )  # fmt: skip
    else:
        backend = MujocoBackend if backend_name == "mujoco" else GymnasiumBackend
        host = backend(
            make_env, num_envs, horizon, seed, partner, config.num_workers,
            config.reward_shift,
        )  # fmt: skip
    try:
        module = policy_module(config, host.action_dim)
        carry = carry_layout(module, host.obs_dim).initial
        if carry.size:
            host.set_initial_carry(carry)
    except BaseException:
        host.close()
        raise
    return Task(backend_name, name, horizon, module, None, host, make_env, env_bytes)


def _check_shared_start(make_env: Callable, config: AgentConfig) -> None:
    """Truncated ES copies one env's state into every particle at each
    window: refuse an env whose state cannot be copied (Box2D)."""
    processes = config.workers == "processes" and config.num_workers > 0
    try:
        check_copyable(make_env, pickled=processes)
    except UnsavableEnvError as err:
        raise ConfigError(
            f"truncated ES starts every window from one env's state copied into "
            f"all particles, and {err}: use PES, NRES or FullES (--algo pes, "
            "nres or es)"
        ) from None


def policy_module(config: AgentConfig, action_dim: int):
    use_bias = config.obs_norm if config.policy_bias is None else config.policy_bias
    return make_policy(
        config.policy,
        action_dim,
        hidden_sizes=config.hidden_sizes,
        use_bias=use_bias,
        recurrent_size=config.recurrent_size,
    )
