"""Gymnasium backend: N sub-environments on the CPU, driven directly.

Stepping the sub-envs ourselves (rather than through ``SyncVectorEnv``) lets a
member whose episode ended absorb without being stepped: no wasted
simulation, and no assertion from a vector env stepping an ended sub-env.
The envs live in a pool (``pes_rl.envs.backends.pool``): in this process,
or spread over worker processes that step in parallel.
Particles are grouped in pairs (``partner[i]``) that share reset seeds and an
episode clock; a pair's episode ends when both members are done or the clock
reaches the horizon. Resets happen only at window boundaries. These rules
are ``pes_rl.core.window_rules``, shared with the jitted engine.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from pes_rl.core.window_rules import (  # noqa: F401 (pair_partners: API here too)
    absorb,
    live_members,
    members_to_reset,
    pair_partners,
    resets_after,
    tick,
)
from pes_rl.envs.adapters.spaces import action_decoder, observation_dim
from pes_rl.envs.backends.pool import ProcessPool, SerialPool

# obs -> policy outputs, or (obs, carry) -> (outputs, carry) when recurrent.
Policy = Callable[..., Any]


class WindowResult(NamedTuple):
    """Per env, so that blocks of envs run elsewhere (Ray workers) combine
    into the same numbers: totals are reduced in env order by the caller."""

    returns: np.ndarray  # [num_envs] summed reward of the window
    episode_ended: np.ndarray  # [num_envs] bool, the pair's episode ended
    env_steps: int  # transitions simulated in the window
    completed: np.ndarray  # [num_envs] bool, an episode ended in the window
    episode_returns: np.ndarray  # [num_envs] its return where ``completed``
    obs_count: np.ndarray  # [num_envs] live observations the policy saw
    obs_sum: np.ndarray  # [num_envs, obs_dim] of obs - center
    obs_sum_sq: np.ndarray  # [num_envs, obs_dim] of (obs - center)^2
    failure: str | None  # what was not finite, which ended the window early

    @property
    def completed_returns(self) -> np.ndarray:
        return self.episode_returns[self.completed]


def combine(results: list[WindowResult]) -> WindowResult:
    """Results of consecutive blocks of envs as one."""
    failures = [r.failure for r in results if r.failure is not None]
    return WindowResult(
        *(np.concatenate([getattr(r, name) for r in results]) for name in
          ("returns", "episode_ended")),
        sum(r.env_steps for r in results),
        *(np.concatenate([getattr(r, name) for r in results]) for name in
          ("completed", "episode_returns", "obs_count", "obs_sum", "obs_sum_sq")),
        failures[0] if failures else None,
    )  # fmt: skip


# ``carry``: a recurrent policy's flat carry per env (empty otherwise).
_BOOKKEEPING = ("obs", "carry", "clock", "alive", "needs_reset", "episode_return")


def draw_seeds(
    rng: np.random.Generator, mask: np.ndarray, partner: np.ndarray
) -> np.ndarray:
    """A reset seed per env in ``mask``, drawn in env order; a pair shares
    one (common random numbers)."""
    seeds = np.zeros(len(mask), np.int64)
    for i in np.flatnonzero(mask):
        j = partner[i]
        shared = j < i and mask[j]
        seeds[i] = seeds[j] if shared else rng.integers(2**31 - 1)
    return seeds


class GymnasiumBackend:
    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        num_envs: int,
        horizon: int,
        seed: int,
        partner: np.ndarray | None = None,
        num_workers: int = 0,
        reward_shift: float = 0.0,
    ):
        """``num_workers`` > 0 steps the envs in that many worker processes;
        ``reward_shift`` is subtracted from each live step's window return."""
        self.reward_shift = reward_shift
        self.num_workers = num_workers if num_envs > 1 else 0
        self.pool = self._make_pool(make_env, num_envs, self.num_workers)
        try:
            self.actions = action_decoder(self.pool.action_space)
            self.obs_dim = observation_dim(self.pool.observation_space)
        except BaseException:
            self.pool.close()
            raise
        self.action_dim = self.actions.size
        self.num_envs = num_envs
        self.horizon = horizon
        self.partner = pair_partners(num_envs) if partner is None else partner
        self.rng = np.random.default_rng(seed)
        self.obs = np.zeros((num_envs, self.obs_dim), np.float32)
        self.set_initial_carry(np.zeros(0, np.float32))
        self.clock = np.zeros(num_envs, np.int64)
        self.alive = np.zeros(num_envs, bool)  # member neither terminated nor truncated
        self.needs_reset = np.ones(num_envs, bool)
        self.episode_return = np.zeros(num_envs)

    def _make_pool(self, make_env, num_envs: int, num_workers: int):
        if num_workers > 0:
            return ProcessPool(make_env, num_envs, num_workers)
        return SerialPool(make_env, num_envs)

    def set_initial_carry(self, initial: np.ndarray) -> None:
        """A recurrent policy's fresh flat carry [C], which an env's carry is
        reset to when its episode starts (empty for a stateless policy)."""
        self.initial_carry = np.asarray(initial, np.float32)
        self.carry = np.tile(self.initial_carry, (self.num_envs, 1))

    def reset(self, mask: np.ndarray, seeds: np.ndarray | None = None) -> None:
        """Reset the envs in ``mask``; a pair shares one seed (common random
        numbers) unless ``seeds`` gives one per env."""
        if seeds is None:
            seeds = draw_seeds(self.rng, mask, self.partner)
        indices = np.flatnonzero(mask)
        if indices.size:
            self.obs[indices] = self.pool.reset(indices, seeds[indices])
        self.carry[mask] = self.initial_carry
        self.clock[mask] = 0
        self.alive[mask] = True
        self.needs_reset[mask] = False
        self.episode_return[mask] = 0.0

    def broadcast_state(self, source: int) -> None:
        """Copy env ``source`` into every other env (truncated ES)."""
        self.copy_in(self.state_of(source), skip=source)

    def state_of(self, index: int) -> tuple:
        """One env's snapshot and episode bookkeeping."""
        return self.pool.snapshot(index), {
            name: np.copy(getattr(self, name)[index]) for name in _BOOKKEEPING
        }

    def copy_in(self, state: tuple, skip: int | None = None) -> None:
        """Put ``state_of``'s answer into every env but ``skip``."""
        snapshot, bookkeeping = state
        others = [i for i in range(self.num_envs) if i != skip]
        self.pool.restore(others, snapshot)
        for name in _BOOKKEEPING:
            getattr(self, name)[:] = bookkeeping[name]

    def particles(self) -> dict:
        """Every env's state and the episode bookkeeping, to continue the
        particles elsewhere (a resumed run)."""
        return {
            "envs": [self.pool.snapshot(i) for i in range(self.num_envs)],
            **self.bookkeeping(),
        }

    def bookkeeping(self) -> dict:
        return {name: getattr(self, name).copy() for name in _BOOKKEEPING}

    def set_particles(self, particles: dict) -> None:
        for i, snapshot in enumerate(particles["envs"]):
            self.pool.restore([i], snapshot)
        for name in _BOOKKEEPING:  # checkpoints before recurrent policies: no carry
            getattr(self, name)[:] = particles.get(name, getattr(self, name))

    def unroll(
        self,
        policy: Policy,
        num_steps: int,
        active: np.ndarray | None = None,
        broadcast_from: int | None = None,
        collect_obs: bool = False,
        center: np.ndarray | float = 0.0,
        seeds: np.ndarray | None = None,
    ) -> WindowResult:
        """Run one window of at most ``num_steps`` steps.

        Pairs whose episode ended are reset first, with ``seeds`` (per env)
        when given. Inactive envs (staggered warm-up) are neither reset nor
        stepped and report an ended episode, so estimators start them afresh.
        With ``broadcast_from``, only that env is reset and its state is then
        copied into all others. Observation sums are of ``obs - center``. A
        non-finite reward or observation ends the window at once, named in
        ``failure``.
        """
        active = np.ones(self.num_envs, bool) if active is None else active
        self.reset(members_to_reset(self.needs_reset, active, broadcast_from), seeds)
        if broadcast_from is not None:
            self.broadcast_state(broadcast_from)
        totals = _WindowTotals.start(active, self.obs_dim)
        running = active.copy()
        for step in range(num_steps):
            live = live_members(running, self.alive)
            live_index = np.flatnonzero(live)
            if live_index.size == 0:
                break
            if collect_obs:
                totals.add_observations(self.obs[live_index], live_index, center)
            rewards = self._step(policy, live, live_index)
            totals.env_steps += live_index.size
            totals.failure = self._failure(rewards, live_index, step)
            if totals.failure is not None:
                break
            totals.returns += rewards
            if self.reward_shift:
                totals.returns[live_index] -= self.reward_shift
            self.episode_return += rewards
            running, self.alive, self.clock, finished = tick(
                running, self.alive, self.clock, self.partner, self.horizon
            )
            totals.ended |= finished
        self.needs_reset = resets_after(self.needs_reset, totals.ended, active)
        return totals.result(self.episode_return)

    def _step(
        self, policy: Policy, live: np.ndarray, live_index: np.ndarray
    ) -> np.ndarray:
        """Step the live envs with the policy's actions (carries advance for
        them alone); the rewards of all envs, zero where not live."""
        if self.carry.shape[1]:
            outputs, carry = policy(self.obs, self.carry)
            self.carry[live_index] = carry[live_index]
        else:
            outputs = policy(self.obs)
        actions = self.actions.decode(outputs)
        rewards = np.zeros(self.num_envs)
        obs, rewards[live_index], done = self.pool.step(live_index, actions[live_index])
        self.obs[live_index] = obs
        done_all = np.zeros(self.num_envs, bool)
        done_all[live_index] = done
        self.alive = absorb(self.alive, live, done_all)
        return rewards

    def _failure(
        self, rewards: np.ndarray, live_index: np.ndarray, step: int
    ) -> str | None:
        """What was not finite in this step, or None."""
        if np.isfinite(rewards).all() and np.isfinite(self.obs[live_index]).all():
            return None
        bad = next(
            i
            for i in live_index
            if not (np.isfinite(rewards[i]) and np.isfinite(self.obs[i]).all())
        )
        return (
            f"non-finite reward or observation from particle {bad} at "
            f"step {self.clock[bad] + 1} of its episode "
            f"(step {step + 1} of the window)"
        )

    @property
    def description(self) -> str:
        workers = self.num_workers
        return f"cpu, {workers} worker processes" if workers else "cpu"

    def close(self) -> None:
        self.pool.close()


@dataclasses.dataclass
class _WindowTotals:
    """A window's sums per env, as it runs."""

    returns: np.ndarray
    ended: np.ndarray  # the pair's episode ended (or the env is idle)
    active: np.ndarray
    obs_count: np.ndarray
    obs_sum: np.ndarray
    obs_sum_sq: np.ndarray
    env_steps: int = 0
    failure: str | None = None

    @classmethod
    def start(cls, active: np.ndarray, obs_dim: int) -> "_WindowTotals":
        num_envs = len(active)
        return cls(
            returns=np.zeros(num_envs),
            ended=~active,
            active=active,
            obs_count=np.zeros(num_envs, np.int64),
            obs_sum=np.zeros((num_envs, obs_dim)),
            obs_sum_sq=np.zeros((num_envs, obs_dim)),
        )

    def add_observations(self, obs, live_index, center) -> None:
        """The live envs' observations the policy is about to see."""
        live_obs = obs.astype(np.float64) - center
        self.obs_count[live_index] += 1
        self.obs_sum[live_index] += live_obs
        self.obs_sum_sq[live_index] += live_obs**2

    def result(self, episode_return: np.ndarray) -> WindowResult:
        # Completed in the window: ended, and not idle from the start.
        completed = self.ended & self.active
        return WindowResult(
            returns=self.returns,
            episode_ended=self.ended,
            env_steps=self.env_steps,
            completed=completed,
            episode_returns=np.where(completed, episode_return, 0.0),
            obs_count=self.obs_count,
            obs_sum=self.obs_sum,
            obs_sum_sq=self.obs_sum_sq,
            failure=self.failure,
        )
