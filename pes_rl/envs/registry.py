"""Environment names: aliases per backend, custom registration, resolution."""

import contextlib
import copy
import difflib
import functools
import importlib
import importlib.util
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from pes_rl.envs.adapters.spaces import needs_flattening, space_problems
from pes_rl.errors import ConfigError, MissingDependencyError

ALIASES: dict[str, dict[str, str]] = {
    "swimmer": {"gymnasium": "Swimmer-v5", "brax": "swimmer"},
    "halfcheetah": {"gymnasium": "HalfCheetah-v5", "brax": "halfcheetah"},
    "hopper": {"gymnasium": "Hopper-v5", "brax": "hopper"},
    "walker2d": {"gymnasium": "Walker2d-v5", "brax": "walker2d"},
    "ant": {"gymnasium": "Ant-v5", "brax": "ant"},
}


@dataclass
class CustomEnv:
    gymnasium: Any = None  # entry point: a class, a factory or "module:attr"
    brax: Any = None  # a brax.envs.Env class or factory (Brax backend)
    playground: Any = None  # a Playground env name or factory (jitted engine)
    max_episode_steps: int | None = None
    kwargs: dict = field(default_factory=dict)


_CUSTOM: dict[str, CustomEnv] = {}


def register(
    name: str,
    *,
    gymnasium: Any = None,
    brax: Any = None,
    playground: Any = None,
    max_episode_steps: int | None = None,
    **kwargs: Any,
) -> None:
    """Register a custom environment under one name for either backend.

    ``gymnasium`` is an entry point as ``gymnasium.register`` takes it (a
    ``gym.Env`` class, a factory, or a ``"module:attr"`` string); it is
    registered with Gymnasium under ``name`` too, so ``gymnasium.make(name)``
    works. ``brax`` is a Brax ``Env`` class, factory or ``"module:attr"``
    string for the Brax backend. ``playground`` is a MuJoCo Playground env
    name or a factory of one (an ``MjxEnv``); the name then always runs on
    the jitted engine. ``kwargs`` are passed to the constructor (for
    Playground, its config overrides).
    """
    if gymnasium is None and brax is None and playground is None:
        raise ValueError("register needs a gymnasium, brax or playground entry point")
    _CUSTOM[name] = CustomEnv(gymnasium, brax, playground, max_episode_steps, kwargs)
    if gymnasium is not None:
        gym.register(
            id=name,
            entry_point=gymnasium,
            max_episode_steps=max_episode_steps,
            kwargs=kwargs,
        )


def known_names(backend: str = "gymnasium") -> list[str]:
    names = list(ALIASES) + [n for n, c in _CUSTOM.items() if getattr(c, backend)]
    if backend == "gymnasium":
        names += list(gym.registry)
    return names


# Packages that register Gymnasium ids when imported (so an id needs the
# ``module:`` prefix): the module, its pip name, how its ids begin.
PLUGINS = (
    (
        "gymnasium_robotics",
        "gymnasium-robotics",
        re.compile(r"Fetch|Hand|AdroitHand|PointMaze_|AntMaze_|FrankaKitchen"),
    ),
    ("shimmy", "shimmy[dm-control]", re.compile(r"dm_control/")),
    ("ale_py", "ale-py", re.compile(r"ALE/")),
    ("minigrid", "minigrid", re.compile(r"MiniGrid-|BabyAI-")),
)


def _plugin_hint(name: str) -> str | None:
    """Where a known plugin registers ``name``: the id to use instead."""
    for module, pip_name, ids in PLUGINS:
        if ids.match(name):
            install = importlib.util.find_spec(module) is None
            return f"{module} registers it: use {module}:{name}" + (
                f" (pip install {pip_name})" if install else ""
            )
    return None


def _pip_name(module: str) -> str | None:
    return next((pip for m, pip, _ in PLUGINS if m == module), None)


def _unknown(name: str, backend: str) -> ConfigError:
    plugin = _plugin_hint(name) if backend == "gymnasium" else None
    if plugin is not None:
        return ConfigError(f"unknown {backend} environment {name!r}; {plugin}")
    names = list(dict.fromkeys(known_names(backend)))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown {backend} environment {name!r}{hint}")


def gymnasium_id(name: str) -> str:
    """Resolve an alias, a registered id or a ``module:EnvId`` string."""
    if name in ALIASES:
        return ALIASES[name]["gymnasium"]
    if ":" in name:
        module, _, env_id = name.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as err:
            pip_name = _pip_name(module)
            install = f" (pip install {pip_name})" if pip_name else ""
            raise ConfigError(
                f"cannot import module {module!r} for {name!r}: {err}{install}"
            ) from None
        name = env_id
    if name not in gym.registry:
        raise _unknown(name, "gymnasium")
    return name


class FlatObservations:
    """``make``'s envs with their observations flattened into one Box
    (Gymnasium's ``FlattenObservation``); ``space`` is the env's own."""

    def __init__(self, make: Callable[..., gym.Env], space: gym.Space):
        self.make, self.space = make, space

    def __call__(self, **kwargs: Any) -> gym.Env:
        return gym.wrappers.FlattenObservation(self.make(**kwargs))


def gymnasium_factory(
    env: str | gym.Env, horizon: int | None, env_kwargs: dict | None = None
) -> tuple[Callable[[], gym.Env], int, str]:
    """Return (make_env, horizon, name) for the Gymnasium backend.

    The env's own time limit is replaced by ``horizon`` (the env's episode
    limit when not given), so truncation and the pair clock agree.
    Observations that are not a Box but flatten into one (Dict, Tuple) are
    flattened (``make_env`` is then a ``FlatObservations``). A missing
    horizon and unusable spaces are reported together, in one line.
    """
    if isinstance(env, gym.Env):
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        limit = _episode_limit(env)
        horizon = horizon or limit
        if horizon is not None and limit is not None and horizon > limit:
            # Its own TimeLimit would end episodes before the pairs' clock does.
            raise ConfigError(
                f"horizon {horizon} exceeds the {limit}-step time limit of the "
                f"{name} instance: pass horizon <= {limit}, or the env unwrapped"
            )
        make_env = functools.partial(copy.deepcopy, env)
        spaces = env.observation_space, env.action_space
    else:
        name = gymnasium_id(env)
        horizon = horizon or gym.spec(name).max_episode_steps
        # The spec, not the id: worker processes need not have run the
        # registration (a user script, or the module of "module:EnvId").
        make_env = functools.partial(
            gym.make, gym.spec(name), max_episode_steps=horizon, **(env_kwargs or {})
        )
        spaces = _spaces(make_env, name)
    problems = [] if horizon else [f"{name} has no episode limit: pass horizon"]
    problems += space_problems(*spaces)
    if problems:
        raise ConfigError("; ".join(problems))
    if needs_flattening(spaces[0]):
        make_env = FlatObservations(make_env, spaces[0])
    return make_env, horizon, name


def _spaces(make_env: Callable[[], gym.Env], env_id: str) -> tuple:
    """(observation space, action space) of a freshly built env."""
    try:
        env = make_env()
    except gym.error.DependencyNotInstalled as err:
        raise MissingDependencyError(
            f"{env_id} needs a missing dependency: {err}"
        ) from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def _episode_limit(env: gym.Env) -> int | None:
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return env.spec.max_episode_steps
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env._max_episode_steps
        env = env.env
    return None


BRAX_DEFAULT_HORIZON = 1000  # Brax's own training episode length


def _playground_entry(env: Any) -> tuple[Any, dict, int | None] | None:
    """(entry, kwargs, episode limit) of a Playground name, else None."""
    from pes_rl.envs.adapters.playground import PREFIX

    if not isinstance(env, str):
        return None
    if env.startswith(PREFIX):
        return env[len(PREFIX) :], {}, None
    custom = _CUSTOM.get(env)
    if custom is not None and custom.playground is not None:
        return custom.playground, custom.kwargs, custom.max_episode_steps
    return None


def is_playground(env: Any) -> bool:
    """``playground:NAME`` or a name registered with ``playground=...``."""
    return _playground_entry(env) is not None


def playground_factory(
    env: str, horizon: int | None, env_kwargs: dict | None = None
) -> tuple[Any, int, str]:
    """Return (env, horizon, name) of a Playground name for the jitted engine."""
    from pes_rl.envs.adapters import playground

    entry, kwargs, limit = _playground_entry(env)
    loaded = playground.load(entry, {**kwargs, **(env_kwargs or {})})
    return loaded, horizon or limit or loaded.episode_length, env


def default_horizon(name: str) -> int | None:
    """The episode limit an env name resolves to without building it: the
    Gymnasium registry's, Playground's, or Brax's default length for a
    Brax-only name."""
    entry = _playground_entry(name)
    if entry is not None:
        from pes_rl.envs.adapters import playground

        if entry[2] is not None:
            return entry[2]
        if not isinstance(entry[0], str):  # a factory: build it to know
            return playground_factory(name, None)[1]
        return playground.default_horizon(entry[0])
    try:
        return gym.spec(gymnasium_id(name)).max_episode_steps
    except ConfigError:
        return BRAX_DEFAULT_HORIZON


def import_brax_envs():
    """``brax.envs``, without the lines its import prints about the optional
    MuJoCo Warp backend (a GPU-only dependency)."""
    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs

    return envs


def _refuse_resetting_wrappers(env: Any) -> None:
    """Episode, auto-reset and vmap wrappers would end and restart episodes
    inside a window (corrupting PES's accumulators) or batch the env twice:
    pes_rl keeps the clock and resets itself."""
    from brax.envs.base import Wrapper
    from brax.envs.wrappers import training

    refused = (training.EpisodeWrapper, training.AutoResetWrapper)
    refused += (training.VmapWrapper,)
    while isinstance(env, Wrapper):
        if isinstance(env, refused):
            raise ConfigError(
                f"the Brax env is wrapped in {type(env).__name__}: pass the bare "
                "env; pes_rl keeps its own episode clock and resets"
            )
        env = env.env


def _load_entry_point(entry: Any) -> Any:
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        return getattr(importlib.import_module(module), attr)
    return entry


@contextlib.contextmanager
def _mjx_models_on_a_local_device():
    """Brax builds its system with ``mjx.put_model(mj)``, which places the
    arrays on ``jax.devices()[0]``: in a multi-process run (after
    ``jax.distributed.initialize``) another process's device, whose arrays
    this process cannot use. There, while an env is built, the model goes to
    this process's first device instead (the values are the same)."""
    import jax

    if jax.process_count() == 1:
        yield
        return
    from mujoco import mjx

    put_model = mjx.put_model

    def put_model_here(m, device=None, *args, **kwargs):
        return put_model(m, device or jax.local_devices()[0], *args, **kwargs)

    mjx.put_model = put_model_here
    try:
        yield
    finally:
        mjx.put_model = put_model


def brax_factory(
    env: Any,
    horizon: int | None,
    env_kwargs: dict | None = None,
    physics_backend: str | None = None,
) -> tuple[Any, int, str]:
    """Return (brax env, horizon, name) for the Brax backend.

    ``env`` is an alias, a name registered here with ``brax=...``, a name in
    Brax's registry (``brax.envs.register_environment``) or a ``brax.envs.Env``
    instance. ``physics_backend`` overrides the env's Brax physics pipeline
    (each shipped env defaults to the one it supports: Swimmer exists only
    on ``generalized``).
    """
    try:
        brax_envs = import_brax_envs()
    except ImportError as err:
        raise MissingDependencyError(
            f"the brax backend needs brax: pip install brax ({err})"
        ) from None
    kwargs = dict(env_kwargs or {})
    if physics_backend is not None:
        kwargs["backend"] = physics_backend
    if isinstance(env, brax_envs.Env):
        _refuse_resetting_wrappers(env)
        if horizon is None:
            raise ConfigError("pass horizon for a Brax environment instance")
        return env, horizon, type(env.unwrapped).__name__
    if not isinstance(env, str):
        raise ConfigError(f"not a Brax environment: {env!r}")
    name = ALIASES[env]["brax"] if env in ALIASES else env
    custom = _CUSTOM.get(name)
    if custom is not None and custom.brax is not None:
        make = _load_entry_point(custom.brax)
        kwargs = {**custom.kwargs, **kwargs}
        horizon = horizon or custom.max_episode_steps
    elif name in brax_envs._envs:
        make = functools.partial(brax_envs.get_environment, name)
    else:
        names = [*ALIASES, *brax_envs._envs, *(n for n, c in _CUSTOM.items() if c.brax)]
        close = difflib.get_close_matches(
            name, list(dict.fromkeys(names)), n=3, cutoff=0.6
        )
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown brax environment {name!r}{hint}")
    try:
        with warnings.catch_warnings(), _mjx_models_on_a_local_device():
            # Brax's notice that it is unmaintained: see MuJoCo Playground.
            warnings.filterwarnings("ignore", message="Brax System, piplines")
            brax_env = make(**kwargs)
    except (TypeError, ValueError, NotImplementedError, KeyError) as err:
        raise ConfigError(f"cannot build brax environment {name!r}: {err}") from None
    _refuse_resetting_wrappers(brax_env)
    return brax_env, horizon or BRAX_DEFAULT_HORIZON, name
