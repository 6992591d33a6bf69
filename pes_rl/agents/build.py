"""Building an agent's task and loop, once, at construction.

Three tasks, two loops: a Problem, or a Brax env with a Flax policy (one
kind of Problem), runs on the jitted engine; Gymnasium envs run on the host
loop. Compiled functions are shared by agents with the same recipe through
bounded caches with explicit keys, so building many agents (seeds of one
study, or a sweep over sigma or the learning rate, which are data of the
training state) compiles once.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pes_rl.agents.host_loop import HostFunctions, HostLoop
from pes_rl.agents.jax_loop import JaxEngine, JaxLoop
from pes_rl.agents.param_checks import (
    check_parameter_memory,
    check_reexpressible,
    initialise,
    parameter_shapes,
    state_bytes,
)
from pes_rl.agents.resources import check_fits, format_bytes
from pes_rl.agents.tasks import BoundedCache, Task, key_of, make_task
from pes_rl.core.algorithms import Algorithm
from pes_rl.core.config import AgentConfig, make_optimizer
from pes_rl.core.keys import EVAL_SEED, KeyStreams
from pes_rl.core.normalization import first_layer
from pes_rl.core.policies import PolicySpec, init_params
from pes_rl.core.schedules import compiled_in
from pes_rl.core.train_state import (
    Schedules,
    TrainState,
    init_stats,
    make_hyperparams,
    make_update,
)
from pes_rl.envs.adapters.brax_problem import EnvProblem
from pes_rl.envs.backends.gymnasium import GymnasiumBackend, pair_partners
from pes_rl.envs.backends.mujoco_batch import MujocoBackend

_HOST_FUNCTIONS = BoundedCache(32)
_ENGINES = BoundedCache(16)


@dataclass
class Built:
    loop: Any  # HostLoop or JaxLoop
    state: TrainState
    unravel: Callable
    backend_name: str  # "gymnasium", "mujoco", "brax" or "jax" (a Problem)
    name: str
    horizon: int
    truncation_length: int
    num_envs: int
    module: Any  # the policy (None for a Problem)
    problem: Any  # what the jitted engine runs (None on the host loop)
    initial_carry: np.ndarray  # [C] a recurrent policy's fresh carry, or empty
    env_bytes: float = 0.0  # estimated memory of one env (evaluation sizes)


@dataclass
class _Layout:
    """What the update is compiled for, besides the estimator's choices."""

    window: int
    mean_particle: int | None  # the particle that runs theta (truncated ES)
    obs_dim: int
    center_obs: bool  # False: observations are scaled, not centred


def build(config: AgentConfig, algorithm: Algorithm, streams: KeyStreams) -> Built:
    """The loop and state of ``algorithm`` (``pes_rl.core.algorithms``): its
    window start says whether one more particle runs theta (truncated ES)
    and whether windows are whole episodes (full-episode ES: K = T)."""
    num_envs = algorithm.num_envs(config.num_particles)
    partner = pair_partners(num_envs)
    mean_particle = config.num_particles if algorithm.extra_particle else None
    if mean_particle is not None:
        partner[mean_particle] = mean_particle
    task = make_task(config, num_envs, partner, streams, algorithm.extra_particle)
    try:
        return _assemble(config, task, algorithm, streams, partner)
    except BaseException:
        if task.host is not None:  # worker processes, if any
            task.host.close()
        raise


def _assemble(config, task: Task, algorithm: Algorithm, streams, partner) -> Built:
    """The agent's loop and state."""
    params, obs_dim, env_bytes = _initial_params(config, task, streams, len(partner))
    # Without a bias in the first layer, observations are scaled, not centred.
    layer = first_layer(params)
    layout = _Layout(
        window=algorithm.window(config.truncation_length, task.horizon),
        mean_particle=config.num_particles if algorithm.extra_particle else None,
        obs_dim=obs_dim,
        center_obs=layer is not None and "bias" in layer,
    )
    theta, unravel = ravel_pytree(params)
    theta = theta.astype(jnp.float32)
    optimizer = functools.partial(make_optimizer, config.optimizer)
    top = {} if config.top_pairs is None else {"top_pairs": config.top_pairs}
    estimator = algorithm.estimator(config.fitness_shaping, **top)
    schedules = Schedules(compiled_in(config.sigma), compiled_in(config.learning_rate))
    state = TrainState(
        theta=theta,
        opt_state=optimizer(0.0).init(theta),  # its layout has no step size
        est_state=estimator.init(config.num_particles, theta.shape[0]),
        obs_stats=init_stats(obs_dim),
        key=streams.noise,
        hyper=make_hyperparams(config.sigma, config.learning_rate),
    )
    update = functools.partial(
        make_update, estimator, optimizer, unravel, config.num_particles,
        layout.mean_particle is not None, config.obs_norm, layout.center_obs,
        schedules,
    )  # fmt: skip
    leaves, treedef = jax.tree.flatten(params)
    # The structure alone: sigma and the learning rate are in the state.
    recipe = (
        treedef,
        tuple((leaf.shape, leaf.dtype) for leaf in leaves),
        key_of(algorithm.estimator),
        config.fitness_shaping,
        config.top_pairs,
        key_of(config.optimizer),
        tuple(key_of(schedule) for schedule in schedules),
        config.num_particles,
        layout.mean_particle is not None,
        config.obs_norm,
        layout.center_obs,
    )
    if task.host is not None:
        loop = _host_loop(config, task, recipe, update, params, layout)
        carry = task.host.initial_carry
    else:  # a Problem's carry, if any, is its own business
        loop = _jax_loop(
            config, task, recipe, update, unravel, partner, layout, streams
        )
        carry = getattr(task.problem, "initial_carry", np.zeros(0, np.float32))
    return Built(
        loop, state, unravel, task.backend_name, task.name, task.horizon,
        layout.window, len(partner), task.module, task.problem, carry,
        env_bytes=env_bytes,
    )  # fmt: skip


@dataclass
class _PolicyChecks:
    """What building learns about a policy at one observation size from its
    structure alone, shared by the agents of one policy (the seeds of a
    study, a sweep). Holds the module, so an id-keyed entry stays unique."""

    module: Any
    shapes: Any  # theta's shapes; None if its init cannot be traced
    init: Callable  # key -> params: compiled once if traceable (the same
    # numbers as op by op, without compiling each op per shape)
    reexpressible: bool = False  # passed check_reexpressible


def _policy_checks(module, init: Callable, key) -> _PolicyChecks:
    shapes = parameter_shapes(init, key)
    return _PolicyChecks(module, shapes, init if shapes is None else jax.jit(init))


_POLICY_CHECKS = BoundedCache(32)


def _initial_params(config, task: Task, streams, num_envs: int):
    """theta's pytree, the observation size, and one env's (or inner run's)
    bytes, after checking that the particles fit in memory."""
    module, problem, host = task.module, task.problem, task.host
    checks = None
    if module is not None:
        obs_dim = host.obs_dim if host is not None else problem.obs_dim
        init = functools.partial(init_params, module, obs_dim=obs_dim)
        checks = _POLICY_CHECKS.get(
            (key_of(module), obs_dim),
            lambda: _policy_checks(module, init, streams.init),
        )
        shapes, init = checks.shapes, checks.init
    else:
        init = problem.init_params
        shapes = parameter_shapes(init, streams.init)
    check_parameter_memory(shapes, config.num_particles)
    env_bytes = task.env_bytes if host is not None else state_bytes(problem, streams)
    if host is None:  # the Gymnasium envs were sized as they were built
        check_fits(
            f"{num_envs} inner runs of about {format_bytes(env_bytes)} of state each",
            num_envs * env_bytes,
        )
    params = initialise(init, streams.init)
    if module is None:
        obs_dim = 0
        if hasattr(problem, "observation"):
            first = jax.eval_shape(problem.init, streams.init)
            obs_dim = int(jax.eval_shape(problem.observation, first).shape[0])
    params = jax.tree.map(jnp.asarray, params)
    if config.obs_norm and not (checks and checks.reexpressible):
        check_reexpressible(module, problem, params, obs_dim)
        if checks is not None:
            checks.reexpressible = True
    return params, obs_dim, env_bytes


def _host_loop(config, task: Task, recipe, update, params, layout: _Layout):
    host, module = task.host, task.module
    fns = _HOST_FUNCTIONS.get(
        (recipe, key_of(module)),
        lambda: HostFunctions(
            update(), PolicySpec(module, jax.device_get(params), layout.obs_dim)
        ),
    )

    def make_eval_backend(count: int) -> GymnasiumBackend:
        alone = np.arange(count)  # no pairs: each env its own partner
        processes = config.num_workers if config.workers == "processes" else 0
        batched = task.backend_name == "mujoco"
        backend = (MujocoBackend if batched else GymnasiumBackend)(
            task.make_env, count, task.horizon, EVAL_SEED, alone, processes
        )
        backend.set_initial_carry(host.initial_carry)
        return backend

    return HostLoop(
        fns, host, task.make_env, make_eval_backend, layout.window,
        layout.mean_particle, config.obs_norm,
    )  # fmt: skip


def _jax_loop(config, task: Task, recipe, update, unravel, partner, layout, streams):
    problem = task.problem
    problem_key = (
        (id(problem.env), key_of(task.module), task.horizon)
        if isinstance(problem, EnvProblem)
        else key_of(problem)
    )
    engine = _ENGINES.get(
        (
            recipe, problem_key, len(partner), layout.window, config.num_devices,
            config.reward_shift,
        ),
        lambda: JaxEngine(
            problem, update(), unravel, len(partner), layout.window, partner,
            layout.mean_particle, config.obs_norm, config.num_devices,
            config.reward_shift,
        ),
    )  # fmt: skip
    return JaxLoop(engine, streams.resets, config.updates_per_call)
