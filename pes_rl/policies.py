"""Policies: Flax modules mapping a (normalised) observation to an action."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

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
