"""The Ray actor of ``ray_workers``: a block of whole antithetic pairs
stepped in its own process, one window per round trip."""

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from pes_rl.core.policies import ParticlePolicy, PolicySpec
from pes_rl.envs.backends.gymnasium import GymnasiumBackend, WindowResult


class WindowTask(NamedTuple):
    thetas: np.ndarray  # [n, D] the block's particle parameters
    mean: np.ndarray
    inv_std: np.ndarray
    active: np.ndarray  # [n]
    seeds: np.ndarray  # [n] reset seeds, drawn by the driver
    num_steps: int
    collect_obs: bool
    center: np.ndarray
    start: Any  # truncated ES: the shared state copied into every env, or None
    skip: int | None  # the env ``start`` came from, if this block holds it
    spec: PolicySpec | None  # sent once per worker


class WindowWorker:
    """The actor: a block of envs stepped in its own process."""

    def __init__(
        self,
        make_env: Callable,
        partner: np.ndarray,
        horizon: int,
        reward_shift: float = 0.0,
        initial_carry: np.ndarray | None = None,
        batched: bool = False,
    ):
        # batched: the block's envs in one mujoco.batch (the mujoco backend)
        if batched:
            from pes_rl.envs.backends.mujoco_batch import MujocoBackend as backend
        else:
            backend = GymnasiumBackend
        self.backend = backend(
            make_env, len(partner), horizon, 0, partner, reward_shift=reward_shift
        )
        if initial_carry is not None:
            self.set_initial_carry(initial_carry)
        self.act = None

    def ready(self) -> bool:
        return True

    def set_initial_carry(self, initial: np.ndarray) -> None:
        # A copy: Ray's arrays are read-only, and tiling an empty one is a view.
        self.backend.set_initial_carry(np.array(initial))

    def window(self, task: WindowTask) -> tuple[WindowResult, dict, float]:
        began = time.perf_counter()
        if task.spec is not None:
            self.act = task.spec.particle_actions()
        if task.start is not None:
            self.backend.copy_in(task.start, skip=task.skip)
        policy = ParticlePolicy(task.spec, self.act, *map(jnp.asarray, task[:3]))
        result = self.backend.unroll(
            policy,
            task.num_steps,
            task.active,
            collect_obs=task.collect_obs,
            center=task.center,
            seeds=task.seeds,
        )
        return result, self.state(), time.perf_counter() - began

    def state(self) -> dict:
        """The particles; ``envs`` is None where they cannot be snapshotted."""
        try:
            return self.backend.particles()
        except Exception:  # e.g. an env holding a lock or a socket
            return {"envs": None, **self.backend.bookkeeping()}

    def set_state(self, particles: dict) -> None:
        self.backend.set_particles(particles)

    def source_state(self, index: int, seed: int | None) -> tuple:
        """Truncated ES: env ``index`` (reset with ``seed`` if given) for
        every env to start from."""
        if seed is not None:
            mask = np.arange(self.backend.num_envs) == index
            self.backend.reset(mask, np.where(mask, seed, 0))
        return self.backend.state_of(index)
