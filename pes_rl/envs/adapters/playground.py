"""MuJoCo Playground environments on the jitted engine (the ``playground``
extra): ``--env playground:CheetahRun`` or ``register(name, playground=...)``.

``PlaygroundEnv`` gives a Playground env the interface the engine's
``EnvProblem`` reads from Brax envs (``reset(key data)``, ``step(state,
action)``, a state with ``obs``, ``reward`` and ``done``), with a flat
observation: a dict observation contributes its ``"state"`` entry when it
has one (Playground's convention for what the policy sees), else all its
entries, flattened and concatenated in key order. The env is used bare: the
engine keeps the clock and resets (no auto-reset), and the horizon defaults
to the env's ``episode_length``. On a CPU the physics runs on MJX's JAX
implementation (``impl="jax"``): MuJoCo Warp needs an NVIDIA GPU.

Only the DM Control Suite tasks ship their models inside the package; the
locomotion and manipulation tasks fetch mujoco_menagerie from GitHub on
first use, which needs a network.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from pes_rl.errors import ConfigError, MissingDependencyError

PREFIX = "playground:"


def import_registry():
    try:
        from mujoco_playground import registry
    except ImportError as err:
        raise MissingDependencyError(
            f"Playground environments need MuJoCo Playground: pip install "
            f"'pes_rl[playground]' ({err})"
        ) from None
    return registry


@struct.dataclass
class FlatState:
    inner: Any  # the Playground state
    obs: jax.Array  # [O] flat
    reward: jax.Array
    done: jax.Array


def flatten_obs(obs: Any) -> jax.Array:
    if not isinstance(obs, dict):
        return jnp.ravel(obs)
    if "state" in obs:
        return jnp.ravel(obs["state"])
    return jnp.concatenate([jnp.ravel(obs[key]) for key in sorted(obs)])


class PlaygroundEnv:
    def __init__(self, env: Any, name: str):
        self.env, self.name = env, name
        config = getattr(env, "_config", None)
        if config is None or "episode_length" not in config:
            raise ConfigError(
                f"{name} is not a Playground env (an MjxEnv with a config "
                "holding episode_length)"
            )
        self.episode_length = int(config.episode_length)

    def _wrap(self, state) -> FlatState:
        return FlatState(state, flatten_obs(state.obs), state.reward, state.done)

    def reset(self, rng: jax.Array) -> FlatState:
        return self._wrap(self.env.reset(rng))

    def step(self, state: FlatState, action: jax.Array) -> FlatState:
        return self._wrap(self.env.step(state.inner, action))

    @property
    def action_size(self) -> int:
        return int(self.env.action_size)

    def render(self, states: list[FlatState], **kwargs) -> list:
        return self.env.render([s.inner for s in states], **kwargs)


def load(entry: Any, env_kwargs: dict | None = None) -> PlaygroundEnv:
    """A Playground env by name, or from a factory (or instance) of an
    ``MjxEnv``; ``env_kwargs`` override its config (``config_overrides``)."""
    overrides = dict(env_kwargs or {})
    if isinstance(entry, str):
        registry = _registry_with(entry)
        if jax.default_backend() == "cpu":
            overrides.setdefault("impl", "jax")
        try:
            env = registry.load(entry, config_overrides=overrides)
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise ConfigError(f"cannot build Playground env {entry!r}: {err}") from None
        return PlaygroundEnv(env, entry)
    env = entry(**overrides) if callable(entry) else entry
    return PlaygroundEnv(env, type(env).__name__)


def _registry_with(name: str):
    registry = import_registry()
    if name not in registry.ALL_ENVS:
        import difflib

        close = difflib.get_close_matches(name, registry.ALL_ENVS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown Playground environment {name!r}{hint}")
    return registry


def default_horizon(name: str) -> int:
    registry = _registry_with(name)
    return int(registry.get_default_config(name).episode_length)
