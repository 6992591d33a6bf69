"""Building an agent's task and loop, once, at construction.

Three tasks, two loops: a Problem, or a Brax env with a Flax policy (one
kind of Problem), runs on the jitted engine; Gymnasium envs run on the host
loop. Compiled functions are shared by agents with the same recipe through
bounded caches with explicit keys, so building many agents (seeds of one
study, or a sweep over sigma or the learning rate, which are data of the
training state) compiles once.
"""

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pes_rl.agents.host_loop import HostFunctions, HostLoop
from pes_rl.agents.jax_loop import JaxEngine, JaxLoop
from pes_rl.agents.resources import (
    bytes_per_env,
    check_fits,
    check_parameters,
    format_bytes,
    tree_bytes,
)
from pes_rl.core.algorithms import Algorithm
from pes_rl.core.config import AgentConfig, make_optimizer
from pes_rl.core.keys import EVAL_SEED, KeyStreams, numpy_rng
from pes_rl.core.normalization import first_layer, reexpress_params
from pes_rl.core.policies import (
    PolicySpec,
    carry_layout,
    init_params,
    make_policy,
)
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


_HOST_FUNCTIONS = BoundedCache(32)
_ENGINES = BoundedCache(16)
_BRAX_ENVS = BoundedCache(16)


def resolve_backend(backend: str) -> str:
    """ "auto" is Brax when JAX sees an accelerator, Gymnasium on a CPU."""
    if backend == "auto":
        return "gymnasium" if jax.default_backend() == "cpu" else "brax"
    return backend


def _key_of(obj: Any) -> Any:
    """A cache key for an object: itself if hashable, else its identity (the
    cached value then keeps the object alive, so the identity stays unique)."""
    try:
        hash(obj)
        return obj
    except TypeError:
        return ("id", id(obj))


@dataclass
class Built:
    loop: Any  # HostLoop or JaxLoop
    state: TrainState
    unravel: Callable
    backend_name: str  # "gymnasium", "brax" or "jax" (a Problem)
    name: str
    horizon: int
    truncation_length: int
    num_envs: int
    module: Any  # the policy (None for a Problem)
    problem: Any  # what the jitted engine runs (None on the host loop)
    initial_carry: np.ndarray  # [C] a recurrent policy's fresh carry, or empty
    env_bytes: float = 0.0  # estimated memory of one env (evaluation sizes)


@dataclass
class _Task:
    backend_name: str
    name: str
    horizon: int
    module: Any
    problem: Any
    host: GymnasiumBackend | None
    make_env: Callable | None
    env_bytes: float = 0.0  # measured per Gymnasium env; 0 on the jitted engine


def build(config: AgentConfig, algorithm: Algorithm, streams: KeyStreams) -> Built:
    """The loop and state of ``algorithm`` (``pes_rl.core.algorithms``): its
    window start says whether one more particle runs theta (truncated ES)
    and whether windows are whole episodes (full-episode ES: K = T)."""
    num_envs = algorithm.num_envs(config.num_particles)
    partner = pair_partners(num_envs)
    mean_particle = config.num_particles if algorithm.extra_particle else None
    if mean_particle is not None:
        partner[mean_particle] = mean_particle
    task = _task(config, num_envs, partner, streams, algorithm.extra_particle)
    try:
        return _assemble(config, task, algorithm, streams, partner)
    except BaseException:
        if task.host is not None:  # worker processes, if any
            task.host.close()
        raise


def _task(
    config: AgentConfig, num_envs: int, partner, streams, shared_start: bool
) -> _Task:
    """What the particles run: a Problem, a Brax env with the policy (a
    Problem too), or Gymnasium envs on the host."""
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
        problem = config.problem
        check(problem)
        name, horizon = type(problem).__name__, problem.horizon
        if config.horizon not in (None, horizon):
            raise ConfigError(f"{name} sets its own horizon ({horizon})")
        return _Task("jax", name, horizon, None, problem, None, None)
    if playground:
        if config.brax_physics is not None:
            raise ConfigError("brax_physics does not apply to Playground envs")
        env, horizon, name = _BRAX_ENVS.get(
            ("playground", _key_of(config.env), config.horizon)
            + (repr(config.env_kwargs),),
            lambda: playground_factory(config.env, config.horizon, config.env_kwargs),
        )
        module = _policy(config, env.action_size)
        problem = EnvProblem(env, module, horizon)
        return _Task("playground", name, horizon, module, problem, None, None)
    if resolve_backend(config.backend) == "brax":
        env, horizon, name = _BRAX_ENVS.get(
            (_key_of(config.env), config.horizon, repr(config.env_kwargs))
            + (config.brax_physics,),
            lambda: brax_factory(
                config.env, config.horizon, config.env_kwargs, config.brax_physics
            ),
        )
        module = _policy(config, int(env.action_size))
        return _Task(
            "brax", name, horizon, module, EnvProblem(env, module, horizon), None, None
        )
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
    if config.workers == "ray":
        from pes_rl.envs.backends.ray_workers import RayBackend

        host = RayBackend(
            make_env, num_envs, horizon, seed, partner, config.num_workers,
            config.ray_address, config.reward_shift,
        )  # fmt: skip
    else:
        host = GymnasiumBackend(
            make_env, num_envs, horizon, seed, partner, config.num_workers,
            config.reward_shift,
        )  # fmt: skip
    try:
        module = _policy(config, host.action_dim)
        carry = carry_layout(module, host.obs_dim).initial
        if carry.size:
            host.set_initial_carry(carry)
    except BaseException:
        host.close()
        raise
    return _Task("gymnasium", name, horizon, module, None, host, make_env, env_bytes)


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


def _assemble(config, task: _Task, algorithm: Algorithm, streams, partner):
    """The agent's loop and state."""
    num_envs = len(partner)
    mean_particle = config.num_particles if algorithm.extra_particle else None
    window = algorithm.window(config.truncation_length, task.horizon)
    estimator_factory = algorithm.estimator
    module, problem, host = task.module, task.problem, task.host
    if module is not None:
        obs_dim = host.obs_dim if host is not None else problem.obs_dim
        init = functools.partial(init_params, module, obs_dim=obs_dim)
    else:
        init = problem.init_params
    _check_parameter_memory(init, streams.init, config.num_particles)
    env_bytes = task.env_bytes if host is not None else _state_bytes(problem, streams)
    if host is None:  # the Gymnasium envs were sized as they were built
        check_fits(
            f"{num_envs} inner runs of about {format_bytes(env_bytes)} of state each",
            num_envs * env_bytes,
        )
    params = _init(init, streams.init)
    if module is None:
        obs_dim = 0
        if hasattr(problem, "observation"):
            first = jax.eval_shape(problem.init, streams.init)
            obs_dim = int(jax.eval_shape(problem.observation, first).shape[0])
    params = jax.tree.map(jnp.asarray, params)
    if config.obs_norm:
        _check_reexpressible(module, problem, params, obs_dim)
    # Without a bias in the first layer, observations are scaled, not centred.
    layer = first_layer(params)
    center_obs = layer is not None and "bias" in layer
    theta, unravel = ravel_pytree(params)
    theta = theta.astype(jnp.float32)
    optimizer = functools.partial(make_optimizer, config.optimizer)
    estimator = estimator_factory(config.fitness_shaping)
    schedules = Schedules(compiled_in(config.sigma), compiled_in(config.learning_rate))
    leaves, treedef = jax.tree.flatten(params)
    # The structure alone: sigma and the learning rate are in the state.
    recipe = (
        treedef,
        tuple((leaf.shape, leaf.dtype) for leaf in leaves),
        _key_of(estimator_factory),
        config.fitness_shaping,
        _key_of(config.optimizer),
        tuple(_key_of(schedule) for schedule in schedules),
        config.num_particles,
        mean_particle is not None,
        config.obs_norm,
        center_obs,
    )
    state = TrainState(
        theta=theta,
        opt_state=optimizer(0.0).init(theta),  # its layout has no step size
        est_state=estimator.init(config.num_particles, theta.shape[0]),
        obs_stats=init_stats(obs_dim),
        key=streams.noise,
        hyper=make_hyperparams(config.sigma, config.learning_rate),
    )

    def update():
        return make_update(
            estimator,
            optimizer,
            unravel,
            config.num_particles,
            mean_particle is not None,
            config.obs_norm,
            center_obs,
            schedules,
        )

    if host is not None:
        fns = _HOST_FUNCTIONS.get(
            (recipe, _key_of(module)),
            lambda: HostFunctions(
                update(), PolicySpec(module, jax.device_get(params), obs_dim)
            ),
        )

        def make_eval_backend(count: int) -> GymnasiumBackend:
            alone = np.arange(count)  # no pairs: each env its own partner
            processes = config.num_workers if config.workers == "processes" else 0
            backend = GymnasiumBackend(
                task.make_env, count, task.horizon, EVAL_SEED, alone, processes
            )
            backend.set_initial_carry(host.initial_carry)
            return backend

        loop = HostLoop(
            fns,
            host,
            task.make_env,
            make_eval_backend,
            window,
            mean_particle,
            config.obs_norm,
        )
    else:
        problem_key = (
            (id(problem.env), _key_of(module), task.horizon)
            if isinstance(problem, EnvProblem)
            else _key_of(problem)
        )
        engine = _ENGINES.get(
            (
                recipe,
                problem_key,
                num_envs,
                window,
                config.num_devices,
                config.reward_shift,
            ),
            lambda: JaxEngine(
                problem,
                update(),
                unravel,
                num_envs,
                window,
                partner,
                mean_particle,
                config.obs_norm,
                config.num_devices,
                config.reward_shift,
            ),
        )
        loop = JaxLoop(engine, streams.resets, config.updates_per_call)
    if host is not None:
        carry = host.initial_carry
    else:  # a Problem's carry, if any, is its own business
        carry = getattr(problem, "initial_carry", np.zeros(0, np.float32))
    return Built(
        loop, state, unravel, task.backend_name, task.name, task.horizon, window,
        num_envs, module, problem, carry, env_bytes=env_bytes,
    )  # fmt: skip


def _check_parameter_memory(init: Callable, key, num_particles: int) -> None:
    """Refuse parameters too many to hold, from their shapes alone."""
    try:
        shapes = jax.eval_shape(init, key)
    except Exception:  # not traceable: _init reports what is wrong, if anything
        return
    check_parameters(tree_bytes(shapes) // 4, num_particles)


def _state_bytes(problem, streams) -> float:
    """One inner run's state (an env's, for Brax): what each evaluation
    episode holds on the jitted engine."""
    try:
        return float(tree_bytes(jax.eval_shape(problem.init, streams.init)))
    except Exception:
        return 0.0


def _check_reexpressible(module, problem, params, obs_dim: int) -> None:
    """obs_norm moves the statistics by re-expressing the first layer
    (``Dense_0``); refuse a policy whose outputs that would change, such as
    one reading the observation elsewhere too."""
    message = (
        "obs_norm needs a policy whose only reader of the observation is a "
        "first Dense layer named Dense_0 (as the linear and mlp policies): the "
        "agent re-expresses it when the statistics change"
    )
    layer = first_layer(params)
    if layer is None or layer["kernel"].shape[0] != obs_dim:
        raise ConfigError(message)
    if module is None:  # a Problem: its step reads the observation
        return
    keys = jax.random.split(jax.random.key(0), 5)
    obs = jax.random.normal(keys[0], (8, obs_dim))
    old = (
        jax.random.normal(keys[1], (obs_dim,)),
        jnp.exp(jax.random.normal(keys[2], (obs_dim,))),
    )
    new = (
        jax.random.normal(keys[3], (obs_dim,)),
        jnp.exp(jax.random.normal(keys[4], (obs_dim,))),
    )
    if "bias" not in layer:  # scaled, not centred
        old, new = (old[0] * 0, old[1]), (new[0] * 0, new[1])
    params = jax.tree.map(lambda x: x + 0.1, params)  # not all zero
    layout = carry_layout(module, obs_dim)
    if layout.unravel is None:
        apply = jax.vmap(module.apply, in_axes=(None, 0))  # one observation at a time
    else:
        carry = layout.unravel(layout.initial)
        apply = jax.vmap(lambda p, o: module.apply(p, carry, o), in_axes=(None, 0))
    before = apply(params, (obs - old[0]) * old[1])
    after = apply(reexpress_params(params, old, new), (obs - new[0]) * new[1])
    close = jax.tree.map(
        lambda a, b: np.allclose(a, b, rtol=1e-3, atol=1e-3), before, after
    )
    if not all(jax.tree.leaves(close)):
        raise ConfigError(message)


def _policy(config: AgentConfig, action_dim: int):
    use_bias = config.obs_norm if config.policy_bias is None else config.policy_bias
    return make_policy(
        config.policy,
        action_dim,
        hidden_sizes=config.hidden_sizes,
        use_bias=use_bias,
        recurrent_size=config.recurrent_size,
    )


def _init(init: Callable, *args):
    try:
        return init(*args)
    except Exception as err:
        raise ConfigError(f"the parameters cannot be initialised: {err}") from err
