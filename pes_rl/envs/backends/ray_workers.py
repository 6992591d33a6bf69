"""Host particles on Ray workers, one machine or many.

Each worker (a Ray actor) owns whole antithetic pairs, which share reset
seeds, an episode clock and absorbing, and runs whole windows with the policy
inside it: one round trip per window. Down go the particles' parameters, the
normaliser, the active mask and the reset seeds (drawn here, in particle
order, from the same stream as in one process); up come per-particle
returns, ended flags, step counts and observation sums, which the host loop
reduces in particle order, and the block's env snapshots. A seed therefore
gives the same numbers for any number of workers.

A lost worker (its process or its node, or one silent for longer than
``RayBackend.timeout()``) is replaced, and its window is replayed from the
snapshots held here: bit-identical where the env can be snapshotted
(MuJoCo state; a recurrent policy's carry is part of the snapshot).
Otherwise its pairs lose their episodes: they report ended, so their
accumulators are cleared as after a resume, and they sit out the rest of
the old episode, so they rejoin at their old phase.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from pes_rl.core.policies import ParticlePolicy
from pes_rl.core.window_rules import members_to_reset
from pes_rl.envs.adapters.spaces import action_decoder, observation_dim
from pes_rl.envs.backends.gymnasium import (
    WindowResult,
    combine,
    draw_seeds,
)
from pes_rl.envs.backends.pool import EnvironmentWorkerError
from pes_rl.envs.backends.ray_actor import WindowTask, WindowWorker
from pes_rl.envs.backends.ray_cluster import connect, import_ray
from pes_rl.errors import ConfigError

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # per window and worker, so a crash that replays fails loudly
MIN_TIMEOUT = 120.0  # seconds a worker may be silent before it counts as lost
TIMEOUT_SLACK = 20  # ... or this many times the slowest window seen, if longer
FRESH = "fresh"  # a new worker's envs: nothing to restore


class _WorkerLost(Exception):
    pass


class RayBackend:
    """The host backend's window contract with blocks of whole pairs on
    ``num_workers`` Ray actors."""

    initial_carry = np.zeros(0, np.float32)  # until set_initial_carry
    min_timeout = MIN_TIMEOUT  # seconds; see timeout()

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        num_envs: int,
        horizon: int,
        seed: int,
        partner: np.ndarray,
        num_workers: int,
        address: str | None = None,
        reward_shift: float = 0.0,
        batched: bool = False,
    ):
        """``batched``: each worker steps its block in one mujoco.batch."""
        self.ray = import_ray()
        self.batched = batched
        num_pairs = num_envs // 2
        if num_workers > num_pairs:
            raise ConfigError(
                f"{num_workers} Ray workers for {num_pairs} antithetic pairs: a "
                f"worker owns whole pairs, so use at most {num_pairs}"
            )
        probe = make_env()
        space, obs_space = probe.action_space, probe.observation_space
        probe.close()
        self.actions = action_decoder(space)
        self.action_dim = self.actions.size
        self.obs_dim = observation_dim(obs_space)
        connect(self.ray, address, num_workers)
        self.num_envs, self.horizon, self.partner = num_envs, horizon, partner
        self.num_workers = num_workers
        self.rng = np.random.default_rng(seed)
        self.needs_reset = np.ones(num_envs, bool)
        self.clock = np.zeros(num_envs, np.int64)
        self.rejoin = np.zeros(num_envs, np.int64)  # window a lost pair runs again
        self.windows, self.window_steps = 0, horizon
        # Whole pairs per worker; truncated ES's extra particle goes last.
        bounds = 2 * np.linspace(0, num_pairs, num_workers + 1).astype(int)
        bounds[-1] = num_envs
        self.blocks = [
            slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        self.make_env, self.spec = make_env, None
        self.reward_shift = reward_shift
        self.actor = self.ray.remote(num_cpus=1, max_restarts=0)(WindowWorker)
        self.workers: list[Any] = [None] * num_workers
        self.has_spec = [False] * num_workers
        self.held: list[Any] = [FRESH] * num_workers  # state at the next window
        self.worker_seconds = np.zeros(num_workers)  # of the last window
        self.slowest = 0.0  # the longest window a worker took so far
        self.last_seconds = 0.0  # wall-clock of the last window, here
        try:
            refs = [self._start(b) for b in range(num_workers)]
            for ref in refs:
                self._get(ref, startup=True)
        except BaseException:
            self.close()
            raise

    def _start(self, b: int):
        block = self.blocks[b]
        partner = self.partner[block] - block.start
        self.workers[b] = self.actor.remote(
            self.make_env, partner, self.horizon, self.reward_shift,
            self.initial_carry, self.batched,
        )  # fmt: skip
        self.has_spec[b] = False
        return self.workers[b].ready.remote()

    def set_initial_carry(self, initial: np.ndarray) -> None:
        """A recurrent policy's fresh carry, for every worker's envs (and
        those of workers started later)."""
        self.initial_carry = np.asarray(initial, np.float32)
        refs = [w.set_initial_carry.remote(self.initial_carry) for w in self.workers]
        for ref in refs:
            self._get(ref, startup=True)

    def timeout(self) -> float:
        """Seconds a worker may take for a window (or a start) before it
        counts as lost, as if it had died: a hung env or node."""
        return max(self.min_timeout, TIMEOUT_SLACK * self.slowest)

    def _get(self, ref, startup=False, b=None, since=None, compiles=False):
        """``ref``'s value; worker ``b`` counts as lost when it has not
        answered ``timeout()`` seconds after ``since`` (a perf_counter), or
        ``MIN_TIMEOUT`` when it starts or compiles the policy."""
        exceptions = self.ray.exceptions
        since = time.perf_counter() if since is None else since
        patient = startup or compiles
        timeout = max(self.timeout(), MIN_TIMEOUT) if patient else self.timeout()
        left = max(0.0, since + timeout - time.perf_counter())
        try:
            return self.ray.get(ref, timeout=left)
        except exceptions.GetTimeoutError:
            if b is not None:
                self.ray.kill(self.workers[b])  # frees its CPU for the new one
            if startup:
                raise EnvironmentWorkerError(
                    f"a Ray worker did not start within {timeout:.0f} s"
                ) from None
            raise _WorkerLost(f"no answer in {timeout:.0f} s") from None
        except exceptions.RayTaskError as err:  # the env's own exception
            cause = getattr(err, "cause", None) or err
            text = f"{err}\n{type(cause).__name__}: {cause}"
            raise EnvironmentWorkerError(text) from None
        except exceptions.RayError as err:
            if startup:  # not a loss: an env that cannot even be built
                raise EnvironmentWorkerError(str(err).strip()) from None
            raise _WorkerLost(type(err).__name__) from err

    def unroll(
        self,
        policy: ParticlePolicy,
        num_steps: int,
        active: np.ndarray | None = None,
        broadcast_from: int | None = None,
        collect_obs: bool = False,
        center: np.ndarray | float = 0.0,
    ) -> WindowResult:
        """``GymnasiumBackend.unroll`` with the same numbers, on the workers."""
        began = time.perf_counter()
        self.spec, self.window_steps = policy.spec, num_steps
        thetas, mean, inv_std = map(np.asarray, policy[2:])  # to send
        active = np.ones(self.num_envs, bool) if active is None else active.copy()
        active &= self.windows >= self.rejoin
        seeds, start, owner = self._window_start(active, broadcast_from)
        tasks = [
            WindowTask(
                thetas[s],
                mean,
                inv_std,
                active[s],
                seeds[s],
                num_steps,
                collect_obs,
                center,
                start,
                broadcast_from - s.start if b == owner else None,
                None if self.has_spec[b] else self.spec,
            )  # fmt: skip
            for b, s in enumerate(self.blocks)
        ]
        results = self._run_tasks(tasks)
        self.windows += 1
        self.last_seconds = time.perf_counter() - began
        return combine(results)

    def _window_start(self, active: np.ndarray, broadcast_from: int | None):
        """The reset seeds of the window (drawn here, in particle order, as
        in one process) and, for truncated ES, the extra particle's state
        that every env starts from, with the block that owns it."""
        resets = members_to_reset(self.needs_reset, active, broadcast_from)
        if broadcast_from is None:
            return draw_seeds(self.rng, resets, self.partner), None, None
        seeds = np.zeros(self.num_envs, np.int64)
        owner = next(b for b, s in enumerate(self.blocks) if s.stop > broadcast_from)
        seed = draw_seeds(self.rng, resets, self.partner)[broadcast_from]
        local = broadcast_from - self.blocks[owner].start
        start = self._call(
            owner, "source_state", local, int(seed) if resets.any() else None
        )
        return seeds, start, owner

    def _run_tasks(self, tasks: list[WindowTask]) -> list[WindowResult]:
        """Each block's window on its worker, in block order."""
        sent = time.perf_counter()
        refs = [w.window.remote(t) for w, t in zip(self.workers, tasks, strict=True)]
        results = []
        try:
            for b, ref in enumerate(refs):
                results.append(self._collect(b, ref, tasks[b], sent))
        except EnvironmentWorkerError:
            for ref in refs[len(results) + 1 :]:  # Ray would print their errors
                try:
                    self.ray.get(ref, timeout=self.timeout())
                except self.ray.exceptions.RayError:
                    pass
            raise
        return results

    def _call(self, b: int, method: str, *args):
        """A call that survives the loss of worker ``b`` (replayed)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._get(getattr(self.workers[b], method).remote(*args), b=b)
            except _WorkerLost as lost:
                self._replace(b, lost)
        raise EnvironmentWorkerError(f"Ray worker {b} was lost {MAX_ATTEMPTS} times")

    def _replace(self, b: int, lost: _WorkerLost) -> bool:
        """A new worker for block ``b`` with the held state; False when there
        is none (its pairs' episodes are then lost, see ``_forget``)."""
        held = self.held[b]
        self._get(self._start(b), startup=True)
        if held is None:
            self._forget(b, lost)
            return False
        if held is not FRESH:
            self._get(self.workers[b].set_state.remote(held))
        log.warning(
            "Ray worker %d lost (%s): a new worker replays its window from the "
            "env snapshots",
            b,
            lost,
        )
        return True

    def _collect(self, b: int, ref, task: WindowTask, sent: float) -> WindowResult:
        for _ in range(MAX_ATTEMPTS):
            try:
                compiles = task.spec is not None or not self.has_spec[b]
                result, state, seconds = self._get(
                    ref, b=b, since=sent, compiles=compiles
                )
                break
            except _WorkerLost as lost:
                if not self._replace(b, lost):
                    return self._nothing(b)
                # The source env was reset after the snapshot: copy it too.
                replay = task._replace(spec=self.spec, skip=None)
                sent = time.perf_counter()
                ref = self.workers[b].window.remote(replay)
        else:
            raise EnvironmentWorkerError(
                f"Ray worker {b} was lost {MAX_ATTEMPTS} times in one window"
            )
        block = self.blocks[b]
        self.held[b] = state if state["envs"] is not None else None
        self.needs_reset[block] = state["needs_reset"]
        self.clock[block] = state["clock"]
        self.worker_seconds[b] = seconds
        if task.spec is None:  # not a first window, which compiles the policy
            self.slowest = max(self.slowest, seconds)
        self.has_spec[b] = True
        return result

    def _forget(self, b: int, lost: _WorkerLost) -> None:
        """Block ``b``'s episodes are gone: its pairs report ended (their
        accumulators are cleared) and sit out what was left of their old
        episode, so they start afresh at their old phase."""
        block = self.blocks[b]
        left = self.horizon - np.where(self.needs_reset[block], 0, self.clock[block])
        self.rejoin[block] = self.windows + -(-left // self.window_steps)
        self.needs_reset[block], self.clock[block] = True, 0
        self.held[b] = FRESH
        log.warning(
            "Ray worker %d lost (%s) and its envs cannot be snapshotted: its %d "
            "pairs end their episodes (accumulators cleared) and rejoin within "
            "%d windows, at their old phase",
            b,
            lost,
            (block.stop - block.start) // 2,
            int(self.rejoin[block].max() - self.windows),
        )

    def _nothing(self, b: int) -> WindowResult:
        """A lost block's window: ended, zero returns (a pair's difference
        is zero, so the window's estimate has no term from it)."""
        n, zeros = self.blocks[b].stop - self.blocks[b].start, np.zeros
        return WindowResult(
            zeros(n), np.ones(n, bool), 0, zeros(n, bool), zeros(n),
            zeros(n, np.int64), zeros((n, self.obs_dim)), zeros((n, self.obs_dim)),
            None,
        )  # fmt: skip

    def particles(self) -> dict | None:
        """Every env's state (None if some cannot be snapshotted): what the
        last window sent up, or a new worker's fresh envs."""
        states = [
            self._call(b, "state") if held is FRESH else held
            for b, held in enumerate(self.held)
        ]
        if any(state is None for state in states):
            return None
        if any(state["envs"] is None for state in states):
            return None
        return {
            name: (
                sum((s["envs"] for s in states), [])
                if name == "envs"
                else np.concatenate([s[name] for s in states])
            )
            for name in states[0]
        }

    def set_particles(self, particles: dict) -> None:
        for b, block in enumerate(self.blocks):
            part = {name: value[block] for name, value in particles.items()}
            self._call(b, "set_state", part)
            self.held[b] = part
        self.needs_reset[:] = particles["needs_reset"]
        self.clock[:] = particles["clock"]

    @property
    def description(self) -> str:
        batch = ", one mujoco.batch each" if self.batched else ""
        return f"cpu, {self.num_workers} Ray workers{batch}"

    def close(self) -> None:
        for worker in self.workers:
            if worker is not None:
                self.ray.kill(worker)
        self.workers = [None] * self.num_workers
