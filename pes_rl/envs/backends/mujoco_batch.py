"""MuJoCo backend: every particle's simulation in one ``mujoco.batch.Batch``.

``BatchPool`` has the interface of the Gymnasium backend's pools
(``pes_rl.envs.backends.pool``): reset and step by env index, snapshots of
one env's state. ``MujocoBackend`` is the Gymnasium backend on it, so the
window rules (pairs, absorbing ends, resets at window starts), the
bookkeeping, snapshots and exact resume, obs-norm and recurrent carries are
the same code. A step sets the controls of the live simulations, steps them
together on the batch's C threads, and computes observations, rewards and
terminations in numpy (``pes_rl.envs.backends.mujoco_tasks``).

Equal to Gymnasium: the batch runs the same ``mj_step`` on a copy of the
env's own model (bit-identical at any thread count), resets draw from a
generator seeded as ``reset(seed=...)`` seeds the env's, and the time limit
truncates as the env's ``TimeLimit`` does. Contact forces (``cfrc_ext``,
Ant) are what Gymnasium's ``mj_rnePostConstraint`` after ``mj_step`` gives:
that call, on each stepped simulation's whole MjData (a persistent batch).
"""

import os
from collections.abc import Callable, Sequence

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.utils import seeding

try:  # MuJoCo >= 4.0; with an older one the backend is not offered
    from mujoco.batch import Batch
except ImportError:
    Batch = None

from pes_rl.envs.backends.gymnasium import GymnasiumBackend
from pes_rl.envs.backends.mujoco_tasks import TASKS, Rows, task_for
from pes_rl.envs.backends.pool import StepResult, snapshot_env

COVERED_IDS = tuple(TASKS)


def _time_limit(env: gym.Env) -> int | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env._max_episode_steps
        env = env.env
    return None


class NotBatchable(ValueError):
    """The env is not one of the Gymnasium MuJoCo tasks this backend covers."""


class BatchPool:
    """``num_envs`` simulations of the env ``make_env`` builds, in one Batch
    on ``num_threads`` threads."""

    def __init__(self, make_env: Callable[[], gym.Env], num_envs: int, num_threads):
        self.env = make_env()  # its settings, model and spaces; never stepped
        try:
            self.task = task_for(self.env)
            if self.task is None:
                name = type(self.env.unwrapped).__name__
                raise NotBatchable(f"{name} is not a covered Gymnasium MuJoCo task")
        except BaseException:
            self.env.close()
            raise
        inner = self.env.unwrapped
        self.model, self.frame_skip = inner.model, inner.frame_skip
        self.max_steps = _time_limit(self.env)
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        contacts = self.task.contact_forces
        self.batch = Batch(self.model, num_envs, num_threads, persistent=contacts)
        self.fields = {
            name: self.batch.bind(name) for name in self.task.fields
            if name != "cfrc_ext"
        }  # fmt: skip
        if "cfrc_ext" in self.task.fields:  # zero after a reset, as Gymnasium's
            self.fields["cfrc_ext"] = np.zeros((num_envs, self.model.nbody, 6))
        self._scratch = mujoco.MjData(self.model) if contacts else None
        self.ctrl = self.batch.bind("ctrl")
        self.elapsed = np.zeros(num_envs, np.int64)
        self.num_envs = num_envs
        # The wrappers' bookkeeping of a reset env (the order and checker
        # flags), so a snapshot continues in a fresh Gymnasium env too.
        self.env.reset(seed=0)
        self._wrappers = snapshot_env(self.env)[1]

    def _ids(self, indices: Sequence[int]):
        """Batch ids and row selector: None and a full slice when all."""
        ids = np.asarray(indices, np.int64)
        if len(ids) == self.num_envs:
            return None, slice(None)
        return ids, ids

    def reset(self, indices: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        ids, rows = self._ids(indices)
        states = [
            self.task.initial_state(seeding.np_random(int(seed))[0]) for seed in seeds
        ]
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE.value)
        self.fields["qpos"][rows] = np.stack([qpos for qpos, _ in states])
        self.fields["qvel"][rows] = np.stack([qvel for _, qvel in states])
        self.batch.forward(ids)
        if "cfrc_ext" in self.fields:
            self.fields["cfrc_ext"][rows] = 0.0
        self.elapsed[rows] = 0
        return self.task.observe(Rows(self.fields, rows)).astype(np.float32)

    def step(self, indices: Sequence[int], actions: np.ndarray) -> StepResult:
        ids, rows = self._ids(indices)
        view = Rows(self.fields, rows)
        before = self.task.before(view)
        self.ctrl[rows] = actions
        self.batch.step(ids, nstep=self.frame_skip)
        if self.task.contact_forces:
            self._contact_forces(indices)
        rewards, terminated = self.task.outcome(before, view, actions)
        obs = self.task.observe(view).astype(np.float32)
        self.elapsed[rows] += 1
        done = terminated
        if self.max_steps is not None:
            done = terminated | (self.elapsed[rows] >= self.max_steps)
        return obs, np.asarray(rewards, np.float64), done

    def _contact_forces(self, indices: Sequence[int]) -> None:
        """Gymnasium's ``mj_rnePostConstraint`` after the step, per simulation."""
        data, forces = self._scratch, self.fields["cfrc_ext"]
        for i in indices:
            self.batch.get_data(int(i), data)
            mujoco.mj_rnePostConstraint(self.model, data)
            forces[i] = data.cfrc_ext

    def snapshot(self, index: int):
        """The shape of a Gymnasium env's snapshot (``pool.snapshot_env``):
        the physics state, and the time limit's step count. Contact forces
        are left out: every step computes them afresh."""
        physics = self.batch.state[index].copy()
        steps = {"_elapsed_steps": int(self.elapsed[index])}
        wrappers = [
            {**state, **steps} if "_elapsed_steps" in state else dict(state)
            for state in self._wrappers
        ]
        return (physics, {}), wrappers

    def restore(self, indices: Sequence[int], snapshot) -> None:
        """Put a snapshot into the envs ``indices``, and compute the derived
        fields from it (``mj_forward``), as the Gymnasium pools do."""
        core, wrappers = snapshot
        physics = core if isinstance(core, np.ndarray) else core[0]  # older: bare
        ids = np.asarray(indices, np.int64)
        self.batch.state[ids] = physics
        self.batch.forward(ids)
        steps = [w["_elapsed_steps"] for w in wrappers if "_elapsed_steps" in w]
        self.elapsed[ids] = steps[0] if steps else 0

    def close(self) -> None:
        self.env.close()


def batchable(make_env: Callable[[], gym.Env]) -> bool:
    """Whether the envs ``make_env`` builds are covered by the batch."""
    env = make_env()
    try:
        return task_for(env) is not None
    finally:
        env.close()


class MujocoBackend(GymnasiumBackend):
    """The Gymnasium backend with every env in one MuJoCo Batch; the
    ``num_workers`` of the Gymnasium backend are threads here (n + 1 when
    n > 0, as n worker processes and this one)."""

    def _make_pool(self, make_env, num_envs: int, num_workers: int):
        self.num_threads = num_workers + 1 if num_workers > 0 else 1
        self.num_threads = min(self.num_threads, num_envs, os.cpu_count() or 1)
        return BatchPool(make_env, num_envs, self.num_threads)

    @property
    def description(self) -> str:
        threads = self.num_threads
        return f"cpu, one mujoco.batch on {threads} thread{'s' * (threads > 1)}"


def host_backend(config, make_env: Callable[[], gym.Env]) -> str:
    """The host backend of ``config`` (``AgentConfig``) for envs
    ``make_env`` builds: mujoco when asked for, or by ``auto`` for the
    covered tasks (ids, not ``gym.Env`` instances); else gymnasium."""
    from pes_rl.envs.registry import gymnasium_id
    from pes_rl.errors import ConfigError

    if config.backend == "gymnasium":
        return "gymnasium"
    if Batch is None:
        if config.backend != "mujoco":
            return "gymnasium"
        raise ConfigError(
            f"the mujoco backend needs MuJoCo 4.0 or later (mujoco.batch); "
            f"this is MuJoCo {mujoco.__version__}: pip install -U mujoco"
        )
    covered = (
        isinstance(config.env, str)
        and gymnasium_id(config.env) in COVERED_IDS
        and batchable(make_env)
    )
    if config.backend != "mujoco":  # auto, on a CPU
        return "mujoco" if covered else "gymnasium"
    if not covered:
        raise ConfigError(
            f"the mujoco backend runs the Gymnasium MuJoCo tasks "
            f"{', '.join(COVERED_IDS)}, given by id; {config.env!r} is not "
            "one: use the gymnasium backend"
        )
    return "mujoco"
