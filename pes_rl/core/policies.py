"""Policies: Flax modules mapping a (normalised) observation to an action.

A recurrent policy also has ``initialize_carry(rng, input_shape)`` and maps
``(carry, obs) -> (carry, action)``. Outside the module its carry travels
flat (one float vector per particle), so the backends store it as one more
array of their particles' state.
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pes_rl.errors import ConfigError

POLICIES = ("linear", "mlp", "gru", "lstm")


class LinearPolicy(nn.Module):
    """a = W obs (+ b): zero-initialised, no squashing; the backend clips
    actions to the action space."""

    action_dim: int
    use_bias: bool = False

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        return nn.Dense(
            self.action_dim,
            use_bias=self.use_bias,
            kernel_init=nn.initializers.zeros,
            bias_init=nn.initializers.zeros,
        )(obs)


class MLPPolicy(nn.Module):
    """tanh hidden layers and a linear output layer initialised to zero, so
    the initial policy outputs the zero action like the linear one."""

    action_dim: int
    hidden_sizes: Sequence[int] = (32, 32)

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs
        for size in self.hidden_sizes:
            x = nn.tanh(nn.Dense(size)(x))
        return nn.Dense(self.action_dim, kernel_init=nn.initializers.zeros)(x)


class RecurrentPolicy(nn.Module):
    """obs -> tanh(Dense_0) -> a recurrent cell -> a linear output layer
    initialised to zero. ``Dense_0`` is the only reader of the observation,
    so obs_norm can re-express it. ``cell`` is "gru", "lstm" or any
    ``flax.linen.RNNCellBase``."""

    action_dim: int
    cell: Any = "gru"
    hidden_size: int = 32

    @nn.nowrap
    def _cell(self, **kwargs) -> nn.RNNCellBase:
        if isinstance(self.cell, nn.RNNCellBase):
            return self.cell
        cells = {"gru": nn.GRUCell, "lstm": nn.LSTMCell}
        return cells[self.cell](features=self.hidden_size, **kwargs)

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]):
        batch = tuple(input_shape[:-1])
        cell = self._cell(parent=None)
        return cell.initialize_carry(rng, batch + (self.hidden_size,))

    @nn.compact
    def __call__(self, carry, obs: jnp.ndarray):
        x = nn.tanh(nn.Dense(self.hidden_size)(obs))
        carry, h = self._cell(name="cell")(carry, x)
        action = nn.Dense(self.action_dim, kernel_init=nn.initializers.zeros)(h)
        return carry, action


def is_recurrent(module: nn.Module) -> bool:
    return hasattr(module, "initialize_carry")


def make_policy(
    policy: str | nn.Module,
    action_dim: int,
    *,
    hidden_sizes: Sequence[int] = (32, 32),
    use_bias: bool = False,
    recurrent_size: int = 32,
) -> nn.Module:
    """A bare recurrent cell gets the input and output layers of
    ``RecurrentPolicy``; any other module is used as it is."""
    if isinstance(policy, nn.RNNCellBase):
        size = getattr(policy, "features", recurrent_size)
        return RecurrentPolicy(action_dim=action_dim, cell=policy, hidden_size=size)
    if isinstance(policy, nn.Module):
        return policy
    if policy == "linear":
        return LinearPolicy(action_dim=action_dim, use_bias=use_bias)
    if policy == "mlp":
        return MLPPolicy(action_dim=action_dim, hidden_sizes=tuple(hidden_sizes))
    if policy in ("gru", "lstm"):
        return RecurrentPolicy(
            action_dim=action_dim, cell=policy, hidden_size=recurrent_size
        )
    raise ConfigError(
        f"unknown policy {policy!r}: use one of {', '.join(POLICIES)} "
        "or pass a flax.linen.Module"
    )


class CarryLayout(NamedTuple):
    """A recurrent policy's carry, flat: the fresh carry every episode starts
    from (empty for a stateless policy) and how to rebuild the pytree."""

    initial: np.ndarray  # [C] float32
    unravel: Callable | None


def init_params(module: nn.Module, key: jax.Array, obs_dim: int):
    obs = jnp.zeros((obs_dim,), jnp.float32)
    if is_recurrent(module):
        return module.init(
            key, module.initialize_carry(jax.random.key(0), (obs_dim,)), obs
        )
    return module.init(key, obs)


def carry_layout(module: nn.Module, obs_dim: int) -> CarryLayout:
    if not is_recurrent(module):
        return CarryLayout(np.zeros(0, np.float32), None)
    # A fixed key: every particle and episode starts from the same carry.
    carry = module.initialize_carry(jax.random.key(0), (obs_dim,))
    flat, unravel = ravel_pytree(carry)
    return CarryLayout(np.asarray(flat, np.float32), unravel)


def step_recurrent(module, unravel_carry, params, carry, normed_obs):
    """(flat carry, normalised obs) -> (flat carry, action)."""
    carry, action = module.apply(params, unravel_carry(carry), normed_obs)
    return ravel_pytree(carry)[0].astype(jnp.float32), action


class ParticlePolicy(NamedTuple):
    """Every particle's policy for one window: flat parameters [M, D] and
    the normaliser (on the device: no copy per step), and ``spec`` to
    rebuild ``act`` elsewhere (a Ray worker). Called as ``policy(obs) ->
    actions``, or ``policy(obs, carry) -> (actions, carry)`` when recurrent."""

    spec: "PolicySpec"
    act: Callable  # (thetas [n, D], obs [n, O], mean, inv_std) -> [n, A], or
    # (thetas, carry [n, C], obs, mean, inv_std) -> (carry, actions) if recurrent
    thetas: jax.Array
    mean: jax.Array
    inv_std: jax.Array

    def __call__(self, obs: np.ndarray, carry: np.ndarray | None = None):
        if carry is None:
            return np.asarray(self.act(self.thetas, obs, self.mean, self.inv_std))
        carry, actions = self.act(self.thetas, carry, obs, self.mean, self.inv_std)
        return np.asarray(actions), np.asarray(carry)


class PolicySpec(NamedTuple):
    """A picklable recipe of the particles' policy: the module, a parameter
    pytree of the right shapes (numpy) and the observation size."""

    module: nn.Module
    template: Any
    obs_dim: int

    @property
    def recurrent(self) -> bool:
        return is_recurrent(self.module)

    def carry(self) -> CarryLayout:
        return carry_layout(self.module, self.obs_dim)

    def apply(self, params, obs, mean, inv_std):
        """The action for an observation, normalised as ``(obs - mean) *
        inv_std``."""
        return self.module.apply(params, (obs - mean) * inv_std)

    def _step(self, unravel_carry):
        def step(params, carry, obs, mean, inv_std):
            normed = (obs - mean) * inv_std
            return step_recurrent(self.module, unravel_carry, params, carry, normed)

        return step

    def particle_actions(self) -> Callable:
        """Jitted (flat params [n, D], obs [n, O], obs_mean, obs_inv_std) ->
        actions [n, A], with a flat carry [n, C] after the parameters (and
        before the actions in the answer) when recurrent. A row's numbers
        do not depend on n for n >= 2, which makes results independent of
        how particles are split over workers."""
        _, unravel = ravel_pytree(self.template)
        if self.recurrent:
            step = self._step(self.carry().unravel)

            def act_recurrent(flat, carry, obs, mean, inv_std):
                return step(unravel(flat), carry, obs, mean, inv_std)

            return jax.jit(jax.vmap(act_recurrent, in_axes=(0, 0, 0, None, None)))

        def act(flat, obs, mean, inv_std):
            return self.apply(unravel(flat), obs, mean, inv_std)

        return jax.jit(jax.vmap(act, in_axes=(0, 0, None, None)))

    def mean_actions(self) -> Callable:
        """Jitted (params, obs [B, O], obs_mean, obs_inv_std) -> [B, A]; when
        recurrent (params, carry [B, C], obs, ...) -> (carry, actions)."""
        if self.recurrent:
            step = self._step(self.carry().unravel)
            return jax.jit(jax.vmap(step, in_axes=(None, 0, 0, None, None)))
        return jax.jit(jax.vmap(self.apply, in_axes=(None, 0, None, None)))
