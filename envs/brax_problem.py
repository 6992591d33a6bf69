"""A Brax environment and a Flax policy as a Problem for the jitted engine.

The policy sees the normalised observation ``(obs - mean) * inv_std`` and
its action is clipped to [-1, 1], Brax's convention, or to the env's
``action_bounds`` (low, high) if it has that attribute. The env must come
without episode or auto-reset wrappers: the engine keeps the clock and
resets with fresh keys (Brax's ``AutoResetWrapper`` replays the first state).
Typed keys become raw key data at the Brax boundary.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class EnvProblem:
    def __init__(self, env: Any, module: nn.Module, horizon: int):
        self.env, self.module, self.horizon = env, module, horizon
        # From the shapes of a traced reset: Brax's ``observation_size`` runs
        # one eagerly, and MJX then places data on ``jax.devices()[0]``,
        # another process's device in a multi-process run.
        first = jax.eval_shape(env.reset, jax.random.key_data(jax.random.key(0)))
        self.obs_dim = int(first.obs.shape[-1])
        self.action_dim = int(env.action_size)
        self.action_low, self.action_high = getattr(env, "action_bounds", (-1.0, 1.0))

    def init_params(self, key: jax.Array) -> Any:
        return self.module.init(key, jnp.zeros((self.obs_dim,), jnp.float32))

    def init(self, key: jax.Array) -> Any:
        return self.env.reset(jax.random.key_data(key))

    def observation(self, state: Any) -> jax.Array:
        return state.obs

    def act(self, params: Any, obs: jax.Array, normalizer) -> jax.Array:
        mean, inv_std = normalizer
        action = self.module.apply(params, (obs - mean) * inv_std)
        return jnp.clip(action, self.action_low, self.action_high)

    def step(self, params: Any, state: Any, key: jax.Array, normalizer):
        stepped = self.env.step(state, self.act(params, state.obs, normalizer))
        return stepped, stepped.reward, stepped.done > 0
