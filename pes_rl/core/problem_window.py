"""The jitted engine's backend: M copies of a Problem as one batched JAX
state, and windows of K steps as pure functions.

The rules are the host backend's: pairs (``partner[i]``) share reset keys,
step keys (the same minibatch, the same noise) and an episode clock; a
member whose run ends early absorbs (its state is frozen, its reward is
zero) until the pair's run ends (both members done, or the clock reaches
the horizon); resets happen only at window boundaries, with fresh keys.
These rules are ``pes_rl.core.window_rules``, shared with the host backend.
All members are computed on every step, as vmap does: ``env_steps`` counts
live transitions, ``simulated_steps`` every one computed.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pes_rl.core.train_state import WindowOut
from pes_rl.core.window_rules import (
    absorb,
    live_members,
    members_to_reset,
    pair_partners,
    resets_after,
    tick,
)


@struct.dataclass
class ProblemCarry:
    state: Any  # the problem's state with a leading [M] axis
    clock: jax.Array  # [M] int32, steps since the pair's run began
    alive: jax.Array  # [M] bool, member neither terminated nor truncated
    needs_reset: jax.Array  # [M] bool, reset at the next window start
    episode_return: jax.Array  # [M] return of the current run
    key: jax.Array  # typed key, split once per reset
    step_key: jax.Array  # typed key, split once per window for step keys
    member_id: jax.Array  # [M] int32, whose keys a member draws: its pair's


def _select(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per member: ``new`` where ``mask``, else ``old`` (leading axis)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


class ProblemBackend:
    def __init__(
        self,
        problem: Any,
        num_envs: int,
        partner: np.ndarray | None = None,
        reward_shift: float = 0.0,
    ):
        """``reward_shift`` is subtracted from each live step's window return."""
        self.problem = problem
        self.reward_shift = reward_shift
        self.num_envs = num_envs
        self.horizon = problem.horizon
        self.partner = pair_partners(num_envs) if partner is None else partner
        # The pair's first member draws the shared keys.
        self._key_owner = jnp.asarray(np.minimum(np.arange(num_envs), self.partner))
        self.observes = hasattr(problem, "observation")

    @staticmethod
    def _member_keys(key: jax.Array, member_id: jax.Array) -> jax.Array:
        """Member i's key: ``fold_in(key, member_id[i])`` (equal to
        ``split(key, M)[member_id[i]]`` under threefry), the same for the
        two members of a pair."""
        return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, member_id)

    def _init_states(self, key: jax.Array):
        return jax.vmap(self.problem.init)(self._member_keys(key, self._key_owner))

    def init(self, key: jax.Array) -> ProblemCarry:
        """Every member waiting for its first reset. The states are zeros of
        the right shapes (no reset is compiled or run here): a window resets
        them before it steps them, and never uses an idle member's result."""
        step_key = jax.random.fold_in(key, 2)  # split(key, 2) gives 0 and 1
        key, reset_key = jax.random.split(key)
        shapes = jax.eval_shape(self._init_states, reset_key)
        return ProblemCarry(
            state=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes),
            clock=jnp.zeros((self.num_envs,), jnp.int32),
            alive=jnp.zeros((self.num_envs,), bool),
            needs_reset=jnp.ones((self.num_envs,), bool),
            episode_return=jnp.zeros((self.num_envs,), jnp.float32),
            key=key,
            step_key=step_key,
            member_id=self._key_owner,
        )

    def start(self, key: jax.Array, episodes: jax.Array) -> ProblemCarry:
        """Member i starts episode ``episodes[i]`` now, from
        ``fold_in(key, episodes[i])``, and draws its step keys by that index
        too, so an episode is the same whatever batch it runs in
        (evaluation)."""
        return ProblemCarry(
            state=jax.vmap(self.problem.init)(self._member_keys(key, episodes)),
            clock=jnp.zeros((self.num_envs,), jnp.int32),
            alive=jnp.ones((self.num_envs,), bool),
            needs_reset=jnp.zeros((self.num_envs,), bool),
            episode_return=jnp.zeros((self.num_envs,), jnp.float32),
            key=key,
            # Apart from the episodes' own keys, fold_in(key, i) for small i.
            step_key=jax.random.fold_in(key, 0x5EED57E9),
            member_id=episodes,
        )

    def reset(self, carry: ProblemCarry, mask: jax.Array) -> ProblemCarry:
        """Restart the members in ``mask`` with fresh keys, shared in a pair."""

        def do_reset(carry):
            key, reset_key = jax.random.split(carry.key)
            fresh = self._init_states(reset_key)
            return carry.replace(
                state=_select(mask, fresh, carry.state),
                clock=jnp.where(mask, 0, carry.clock),
                alive=carry.alive | mask,
                needs_reset=carry.needs_reset & ~mask,
                episode_return=jnp.where(mask, 0.0, carry.episode_return),
                key=key,
            )

        return jax.lax.cond(mask.any(), do_reset, lambda carry: carry, carry)

    def broadcast_state(self, carry: ProblemCarry, source: int) -> ProblemCarry:
        """Copy member ``source`` into every member (truncated ES)."""

        def copy(x):
            return jnp.broadcast_to(x[source], x.shape)

        return carry.replace(
            state=jax.tree.map(copy, carry.state),
            clock=copy(carry.clock),
            alive=copy(carry.alive),
            needs_reset=copy(carry.needs_reset),
            episode_return=copy(carry.episode_return),
        )

    def unroll(
        self,
        carry: ProblemCarry,
        particle_params: Any,
        normalizer: tuple[jax.Array, jax.Array],
        num_steps: int,
        active: jax.Array,
        broadcast_from: int | None = None,
        collect_obs: bool = False,
    ) -> tuple[ProblemCarry, WindowOut]:
        """One window of ``num_steps`` steps with ``particle_params`` [M];
        pure and jittable.

        Pairs whose run ended are reset first. Inactive members (staggered
        warm-up) are neither reset nor changed and report an ended run, so
        estimators start them afresh. With ``broadcast_from``, only that
        member is reset and its state is then copied into all others.
        """
        resets = members_to_reset(carry.needs_reset, active, broadcast_from)
        carry = self.reset(carry, resets)
        if broadcast_from is not None:
            carry = self.broadcast_state(carry, broadcast_from)
        step_key, window_key = jax.random.split(carry.step_key)
        carry = carry.replace(step_key=step_key)
        step = self._window_step(particle_params, normalizer, window_key, collect_obs)
        out = _empty_window(active, normalizer[0].shape[0])
        (carry, _, out), _ = jax.lax.scan(
            step, (carry, active, out), jnp.arange(num_steps)
        )
        needs_reset = resets_after(carry.needs_reset, out.episode_ended, active)
        return carry.replace(needs_reset=needs_reset), out

    def _window_step(self, particle_params, normalizer, window_key, collect_obs):
        """The window's scan body: one step of every member, of which the
        live ones count and change state."""
        problem, partner = self.problem, jnp.asarray(self.partner)
        step = (
            problem.step if self.observes else lambda p, s, k, _: problem.step(p, s, k)
        )
        step_all = jax.vmap(step, in_axes=(0, 0, 0, None))

        def step(loop, t):
            carry, running, out = loop
            live = live_members(running, carry.alive)
            keys = self._member_keys(jax.random.fold_in(window_key, t), carry.member_id)
            state, reward, done = step_all(
                particle_params, carry.state, keys, normalizer
            )
            done = jnp.asarray(done) != 0  # bool, or Brax's float convention
            reward = jnp.where(live, reward, 0.0)
            finite = out.finite & jnp.all(~live | self._healthy(state, reward))
            alive = absorb(carry.alive, live, done)
            still_running, alive, clock, finished = tick(
                running, alive, carry.clock, partner, self.horizon
            )
            episode_return = carry.episode_return + reward
            if collect_obs:  # what the policy saw: the states before the step
                out = self._add_observations(out, carry.state, live, normalizer[0])
            out = self._add_step(out, reward, live, finished, episode_return, finite)
            carry = carry.replace(
                state=_select(live, state, carry.state),
                clock=clock,
                alive=alive,
                episode_return=episode_return,
            )
            return (carry, still_running, out), None

        return step

    def _healthy(self, state, reward: jax.Array) -> jax.Array:
        """Per member: a finite reward and observation."""
        healthy = jnp.isfinite(reward)
        if self.observes:
            healthy &= jnp.isfinite(jax.vmap(self.problem.observation)(state)).all(-1)
        return healthy

    def _add_observations(self, out: WindowOut, state, live, obs_mean) -> WindowOut:
        """The live members' observations, centred on the normaliser's mean
        (for float32)."""
        obs = jax.vmap(self.problem.observation)(state)
        live_obs = jnp.where(live[:, None], obs - obs_mean, 0.0)
        return out._replace(
            obs_count=out.obs_count + live.sum(),
            obs_sum=out.obs_sum + live_obs.sum(0),
            obs_sum_sq=out.obs_sum_sq + (live_obs**2).sum(0),
        )

    def _add_step(
        self, out: WindowOut, reward, live, finished, episode_return, finite
    ) -> WindowOut:
        # The shift is the estimator's alone: episode returns keep the reward.
        shifted = reward - self.reward_shift * live if self.reward_shift else reward
        return out._replace(
            returns=out.returns + shifted,
            episode_ended=out.episode_ended | finished,
            env_steps=out.env_steps + live.sum(),
            simulated_steps=out.simulated_steps + self.num_envs,
            completed_return_sum=out.completed_return_sum
            + jnp.where(finished, episode_return, 0.0).sum(),
            completed_count=out.completed_count + finished.sum(),
            finite=finite,
        )


def _empty_window(active: jax.Array, obs_dim: int) -> WindowOut:
    """A window's sums before its first step; idle members report an ended
    run."""
    zero = jnp.zeros((), jnp.float32)
    count = jnp.zeros((), jnp.int32)
    return WindowOut(
        returns=jnp.zeros(active.shape, jnp.float32),
        episode_ended=~active,
        env_steps=count,
        simulated_steps=count,
        completed_return_sum=zero,
        completed_count=count,
        obs_count=zero,
        obs_sum=jnp.zeros((obs_dim,), jnp.float32),
        obs_sum_sq=jnp.zeros((obs_dim,), jnp.float32),
        finite=jnp.ones((), bool),
    )
