"""Policies: Flax modules mapping a (normalised) observation to an action."""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pes_rl.errors import ConfigError

POLICIES = ("linear", "mlp")


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


def make_policy(
    policy: str | nn.Module,
    action_dim: int,
    *,
    hidden_sizes: Sequence[int] = (32, 32),
    use_bias: bool = False,
) -> nn.Module:
    if isinstance(policy, nn.Module):
        return policy
    if policy == "linear":
        return LinearPolicy(action_dim=action_dim, use_bias=use_bias)
    if policy == "mlp":
        return MLPPolicy(action_dim=action_dim, hidden_sizes=tuple(hidden_sizes))
    raise ConfigError(
        f"unknown policy {policy!r}: use one of {', '.join(POLICIES)} "
        "or pass a flax.linen.Module"
    )


class ParticlePolicy(NamedTuple):
    """Every particle's policy for one window: flat parameters [M, D] and
    the normaliser (on the device: no copy per step), and ``spec`` to
    rebuild ``act`` elsewhere (a Ray worker)."""

    spec: "PolicySpec"
    act: Callable  # (thetas [n, D], obs [n, O], mean, inv_std) -> [n, A]
    thetas: jax.Array
    mean: jax.Array
    inv_std: jax.Array

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.act(self.thetas, obs, self.mean, self.inv_std))


class PolicySpec(NamedTuple):
    """A picklable recipe of the particles' policy: the module and a
    parameter pytree of the right shapes (numpy)."""

    module: nn.Module
    template: Any

    def apply(self, params, obs, mean, inv_std):
        """The action for an observation, normalised as ``(obs - mean) *
        inv_std``."""
        return self.module.apply(params, (obs - mean) * inv_std)

    def particle_actions(self) -> Callable:
        """Jitted (flat params [n, D], obs [n, O], obs_mean, obs_inv_std) ->
        actions [n, A]. A row's numbers do not depend on n for n >= 2, which
        makes results independent of how particles are split over workers."""
        _, unravel = ravel_pytree(self.template)

        def act(flat, obs, mean, inv_std):
            return self.apply(unravel(flat), obs, mean, inv_std)

        return jax.jit(jax.vmap(act, in_axes=(0, 0, None, None)))

    def mean_actions(self) -> Callable:
        """Jitted (params, obs [B, O], obs_mean, obs_inv_std) -> [B, A]."""
        return jax.jit(jax.vmap(self.apply, in_axes=(None, 0, None, None)))
