"""Brax backend: N environments as one batched JAX state, windows as pure
functions meant to be jitted inside the agent's train step.

The rules match the Gymnasium backend: pairs (``partner[i]``) share reset keys
and an episode clock, a member whose episode terminates early absorbs (its
state is frozen and its reward is zero) until the pair's episode ends (both
members done, or the clock reaches the horizon), and resets happen only at
window boundaries, with fresh keys (never Brax's ``AutoResetWrapper``, which
replays the first state). All members are simulated on every step of a
window, as vmap does; absorbed and idle members' results are discarded.
``env_steps`` counts live transitions, as the Gymnasium backend does, and
``simulated_steps`` every transition vmap computed.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pes_rl.envs.gymnasium_backend import pair_partners

# (params, obs [O], obs_mean, obs_inv_std) -> action [A]
ActFn = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]


@struct.dataclass
class BraxCarry:
    env_state: Any  # brax State with a leading [num_envs] axis
    clock: jax.Array  # [num_envs] int32, steps since the pair's episode began
    alive: jax.Array  # [num_envs] bool, member neither terminated nor truncated
    needs_reset: jax.Array  # [num_envs] bool, reset at the next window start
    episode_return: jax.Array  # [num_envs] return of the current episode
    key: jax.Array  # typed key for reset keys


class WindowStats(NamedTuple):
    returns: jax.Array  # [num_envs] summed reward of the window
    episode_ended: jax.Array  # [num_envs] bool, the pair's episode ended
    env_steps: jax.Array  # [] live transitions in the window
    simulated_steps: jax.Array  # [] transitions vmap computed, absorbed included
    completed_return_sum: jax.Array  # [] returns of episodes ended in the window
    completed_count: jax.Array  # []
    obs_count: jax.Array  # [] live observations the policy saw
    obs_sum: jax.Array  # [obs_dim] of obs - obs_mean
    obs_sum_sq: jax.Array  # [obs_dim] of (obs - obs_mean)^2
    finite: jax.Array  # [] bool, every live reward and observation was finite


def _select(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per env: ``new`` where ``mask``, else ``old`` (mask on the leading axis)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


class BraxBackend:
    jittable = True

    def __init__(
        self,
        env: Any,
        num_envs: int,
        horizon: int,
        partner: np.ndarray | None = None,
    ):
        """``env`` is a ``brax.envs.Env`` (no episode or auto-reset wrapper:
        the backend keeps the clock). Actions are clipped to [-1, 1], Brax's
        convention, or to the env's ``action_bounds`` (low, high) if it has
        that attribute."""
        self.env = env
        self.num_envs = num_envs
        self.horizon = horizon
        self.partner = pair_partners(num_envs) if partner is None else partner
        # The pair's first member draws the shared reset key.
        self._key_owner = jnp.asarray(np.minimum(np.arange(num_envs), self.partner))
        self.obs_dim = int(env.observation_size)
        self.action_dim = int(env.action_size)
        self.action_low, self.action_high = getattr(env, "action_bounds", (-1.0, 1.0))

    def _reset_states(self, key: jax.Array):
        keys = jax.random.split(key, self.num_envs)[self._key_owner]
        return jax.vmap(self.env.reset)(jax.random.key_data(keys))

    def start(self, keys: jax.Array, key: jax.Array) -> BraxCarry:
        """Every env reset now, env i with ``keys[i]`` (evaluation)."""
        return BraxCarry(
            env_state=jax.vmap(self.env.reset)(jax.random.key_data(keys)),
            clock=jnp.zeros((self.num_envs,), jnp.int32),
            alive=jnp.ones((self.num_envs,), bool),
            needs_reset=jnp.zeros((self.num_envs,), bool),
            episode_return=jnp.zeros((self.num_envs,), jnp.float32),
            key=key,
        )

    def init(self, key: jax.Array) -> BraxCarry:
        """Every env waiting for its first reset. The env states are zeros of
        the right shapes (no reset is compiled or run here): a window resets
        them before it steps them, and never uses an idle member's result."""
        key, reset_key = jax.random.split(key)
        zeros = jnp.zeros((self.num_envs,), jnp.float32)
        shapes = jax.eval_shape(self._reset_states, reset_key)
        return BraxCarry(
            env_state=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes),
            clock=jnp.zeros((self.num_envs,), jnp.int32),
            alive=jnp.zeros((self.num_envs,), bool),
            needs_reset=jnp.ones((self.num_envs,), bool),
            episode_return=zeros,
            key=key,
        )

    def reset(self, carry: BraxCarry, mask: jax.Array) -> BraxCarry:
        """Reset the envs in ``mask`` with fresh keys, shared within a pair."""

        def do_reset(carry):
            key, reset_key = jax.random.split(carry.key)
            fresh = self._reset_states(reset_key)
            return carry.replace(
                env_state=_select(mask, fresh, carry.env_state),
                clock=jnp.where(mask, 0, carry.clock),
                alive=carry.alive | mask,
                needs_reset=carry.needs_reset & ~mask,
                episode_return=jnp.where(mask, 0.0, carry.episode_return),
                key=key,
            )

        return jax.lax.cond(mask.any(), do_reset, lambda carry: carry, carry)

    def broadcast_state(self, carry: BraxCarry, source: int) -> BraxCarry:
        """Copy env ``source`` into every env (truncated ES)."""

        def copy(x):
            return jnp.broadcast_to(x[source], x.shape)

        return carry.replace(
            env_state=jax.tree.map(copy, carry.env_state),
            clock=copy(carry.clock),
            alive=copy(carry.alive),
            needs_reset=copy(carry.needs_reset),
            episode_return=copy(carry.episode_return),
        )

    def unroll(
        self,
        carry: BraxCarry,
        act: ActFn,
        particle_params: Any,
        obs_mean: jax.Array,
        obs_inv_std: jax.Array,
        num_steps: int,
        active: jax.Array,
        broadcast_from: int | None = None,
        collect_obs: bool = False,
    ) -> tuple[BraxCarry, WindowStats]:
        """Run one window of ``num_steps`` steps; pure and jittable.

        Pairs whose episode ended are reset first. Inactive envs (staggered
        warm-up) are neither reset nor changed and report an ended episode,
        so estimators start them afresh. With ``broadcast_from``, only that
        env is reset and its state is then copied into all others.
        """
        if broadcast_from is not None:
            only_source = jnp.arange(self.num_envs) == broadcast_from
            carry = self.reset(carry, carry.needs_reset & only_source)
            carry = self.broadcast_state(carry, broadcast_from)
        else:
            carry = self.reset(carry, carry.needs_reset & active)
        partner = jnp.asarray(self.partner)
        act_all = jax.vmap(act, in_axes=(0, 0, None, None))
        step_all = jax.vmap(self.env.step)
        obs_dim = self.obs_dim

        def step(loop, _):
            carry, running, stats = loop
            live = running & carry.alive
            obs = carry.env_state.obs
            actions = act_all(particle_params, obs, obs_mean, obs_inv_std)
            actions = jnp.clip(actions, self.action_low, self.action_high)
            stepped = step_all(carry.env_state, actions)
            reward = jnp.where(live, stepped.reward, 0.0)
            finite = stats.finite & jnp.all(
                ~live
                | (jnp.isfinite(stepped.reward) & jnp.isfinite(stepped.obs).all(-1))
            )
            alive = carry.alive & ~(live & (stepped.done > 0))
            clock = carry.clock + running
            episode_return = carry.episode_return + reward
            finished = running & ((~alive & ~alive[partner]) | (clock >= self.horizon))
            if collect_obs:  # centred on the normaliser's mean, for float32
                live_obs = jnp.where(live[:, None], obs - obs_mean, 0.0)
                obs_count = stats.obs_count + live.sum()
                obs_sum = stats.obs_sum + live_obs.sum(0)
                obs_sum_sq = stats.obs_sum_sq + (live_obs**2).sum(0)
            else:
                obs_count, obs_sum, obs_sum_sq = (
                    stats.obs_count,
                    stats.obs_sum,
                    stats.obs_sum_sq,
                )
            stats = WindowStats(
                returns=stats.returns + reward,
                episode_ended=stats.episode_ended | finished,
                env_steps=stats.env_steps + live.sum(),
                simulated_steps=stats.simulated_steps + self.num_envs,
                completed_return_sum=stats.completed_return_sum
                + jnp.where(finished, episode_return, 0.0).sum(),
                completed_count=stats.completed_count + finished.sum(),
                obs_count=obs_count,
                obs_sum=obs_sum,
                obs_sum_sq=obs_sum_sq,
                finite=finite,
            )
            carry = carry.replace(
                env_state=_select(live, stepped, carry.env_state),
                clock=clock,
                alive=alive & ~finished,
                episode_return=episode_return,
            )
            return (carry, running & ~finished, stats), None

        zero = jnp.zeros((), jnp.float32)
        stats = WindowStats(
            returns=jnp.zeros((self.num_envs,), jnp.float32),
            episode_ended=~active,
            env_steps=jnp.zeros((), jnp.int32),
            simulated_steps=jnp.zeros((), jnp.int32),
            completed_return_sum=zero,
            completed_count=jnp.zeros((), jnp.int32),
            obs_count=zero,
            obs_sum=jnp.zeros((obs_dim,), jnp.float32),
            obs_sum_sq=jnp.zeros((obs_dim,), jnp.float32),
            finite=jnp.ones((), bool),
        )
        (carry, _, stats), _ = jax.lax.scan(
            step, (carry, active, stats), None, length=num_steps
        )
        carry = carry.replace(
            needs_reset=carry.needs_reset | (stats.episode_ended & active)
        )
        return carry, stats

    def close(self) -> None:
        """Nothing to release: the state lives in the agent's carry."""
