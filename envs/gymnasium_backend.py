"""Gymnasium backend: N sub-environments on the CPU, driven directly.

Stepping the sub-envs ourselves (rather than through ``SyncVectorEnv``) lets a
member whose episode ended absorb without being stepped: no wasted
simulation, and no assertion from a vector env stepping an ended sub-env.
The envs live in a pool (``envs/pool.py``): in this process, or spread over
worker processes that step in parallel.
Particles are grouped in pairs (``partner[i]``) that share reset seeds and an
episode clock; a pair's episode ends when both members are done or the clock
reaches the horizon. Resets happen only at window boundaries.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from pes_rl.envs.pool import ProcessPool, SerialPool
from pes_rl.envs.spaces import action_decoder, observation_dim

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


def pair_partners(num_envs: int) -> np.ndarray:
    """Antithetic pairs sit next to each other: 0-1, 2-3, ..."""
    return np.arange(num_envs) ^ 1


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
        if num_workers > 0 and num_envs > 1:
            self.pool = ProcessPool(make_env, num_envs, num_workers)
        else:
            self.pool = SerialPool(make_env, num_envs)
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
        if broadcast_from is not None:
            pending = np.zeros(self.num_envs, bool)
            pending[broadcast_from] = self.needs_reset[broadcast_from]
            self.reset(pending, seeds)
            self.broadcast_state(broadcast_from)
        else:
            self.reset(self.needs_reset & active, seeds)

        returns = np.zeros(self.num_envs)
        ended = ~active
        running = active.copy()
        completed = np.zeros(self.num_envs, bool)
        env_steps, failure = 0, None
        obs_count = np.zeros(self.num_envs, np.int64)
        obs_sum = np.zeros((self.num_envs, self.obs_dim))
        obs_sum_sq = np.zeros((self.num_envs, self.obs_dim))
        for step in range(num_steps):
            live = running & self.alive
            live_index = np.flatnonzero(live)
            if live_index.size == 0:
                break
            if collect_obs:
                live_obs = self.obs[live_index].astype(np.float64) - center
                obs_count[live_index] += 1
                obs_sum[live_index] += live_obs
                obs_sum_sq[live_index] += live_obs**2
            if self.carry.shape[1]:
                outputs, carry = policy(self.obs, self.carry)
                self.carry[live_index] = carry[live_index]
            else:
                outputs = policy(self.obs)
            actions = self.actions.decode(outputs)
            rewards = np.zeros(self.num_envs)
            obs, rewards[live_index], done = self.pool.step(
                live_index, actions[live_index]
            )
            self.obs[live_index] = obs
            self.alive[live_index[done]] = False
            env_steps += live_index.size
            if not (
                np.isfinite(rewards).all() and np.isfinite(self.obs[live_index]).all()
            ):
                bad = next(
                    i
                    for i in live_index
                    if not (np.isfinite(rewards[i]) and np.isfinite(self.obs[i]).all())
                )
                failure = (
                    f"non-finite reward or observation from particle {bad} at "
                    f"step {self.clock[bad] + 1} of its episode "
                    f"(step {step + 1} of the window)"
                )
                break
            returns += rewards
            if self.reward_shift:
                returns[live_index] -= self.reward_shift
            self.episode_return += rewards
            self.clock[running] += 1
            finished = running & (
                (~self.alive & ~self.alive[self.partner]) | (self.clock >= self.horizon)
            )
            if finished.any():
                self.alive[finished] = False
                running &= ~finished
                ended = ended | finished
                completed |= finished
        self.needs_reset |= ended & active
        return WindowResult(
            returns=returns,
            episode_ended=ended,
            env_steps=env_steps,
            completed=completed,
            episode_returns=np.where(completed, self.episode_return, 0.0),
            obs_count=obs_count,
            obs_sum=obs_sum,
            obs_sum_sq=obs_sum_sq,
            failure=failure,
        )

    @property
    def description(self) -> str:
        workers = self.num_workers
        return f"cpu, {workers} worker processes" if workers else "cpu"

    def close(self) -> None:
        self.pool.close()
