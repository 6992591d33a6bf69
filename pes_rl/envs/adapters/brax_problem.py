"""A Brax environment and a Flax policy as a Problem for the jitted engine.

The policy sees the normalised observation ``(obs - mean) * inv_std`` and
its action is clipped to [-1, 1], Brax's convention, or to the env's
``action_bounds`` (low, high) if it has that attribute. The env must come
without episode or auto-reset wrappers: the engine keeps the clock and
resets with fresh keys (Brax's ``AutoResetWrapper`` replays the first state).
Typed keys become raw key data at the Brax boundary. A recurrent policy's
flat carry is part of each particle's state: fresh at every reset.
"""

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from pes_rl.core.policies import carry_layout, init_params, step_recurrent


class RecurrentState(NamedTuple):
    env: Any  # the env's state
    carry: jax.Array  # [C] the policy's flat carry


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
        layout = carry_layout(module, self.obs_dim)
        self.initial_carry, self._unravel_carry = layout
        self.recurrent = layout.unravel is not None

    def init_params(self, key: jax.Array) -> Any:
        return init_params(self.module, key, self.obs_dim)

    def init(self, key: jax.Array) -> Any:
        state = self.env.reset(jax.random.key_data(key))
        if self.recurrent:
            return RecurrentState(state, jnp.asarray(self.initial_carry))
        return state

    def observation(self, state: Any) -> jax.Array:
        return state.env.obs if self.recurrent else state.obs

    def act(self, params: Any, obs: jax.Array, normalizer, carry=None):
        """The clipped action, and the new carry when ``carry`` is given."""
        mean, inv_std = normalizer
        normed = (obs - mean) * inv_std
        if carry is None:
            action = self.module.apply(params, normed)
        else:
            carry, action = step_recurrent(
                self.module, self._unravel_carry, params, carry, normed
            )
        action = jnp.clip(action, self.action_low, self.action_high)
        return action if carry is None else (action, carry)

    def step(self, params: Any, state: Any, key: jax.Array, normalizer):
        if self.recurrent:
            action, carry = self.act(params, state.env.obs, normalizer, state.carry)
            stepped = self.env.step(state.env, action)
            new_state = RecurrentState(stepped, carry)
        else:
            stepped = self.env.step(state, self.act(params, state.obs, normalizer))
            new_state = stepped
        return new_state, stepped.reward, stepped.done > 0
