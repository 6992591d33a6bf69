"""What the Ray worker tests share: envs importable on the workers by
module name (registered Gymnasium ids whose entry points live here), and the
small run they train."""

import os
import threading
import time

import gymnasium as gym

from pes_rl.envs.toy import LinearQuadraticEnv


class LockedEnv(LinearQuadraticEnv):
    """The toy holding a lock, as envs holding a socket or a simulator
    handle do: it cannot be copied, so it cannot be snapshotted."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lock = threading.Lock()


class FailingEnv(LinearQuadraticEnv):
    """Raises at its fifth step on a Ray worker (so the CLI's evaluations,
    which run in the driver, pass)."""

    def step(self, action):
        if self.t == 4 and "RAY_RAYLET_PID" in os.environ:
            raise ValueError("the simulator diverged at step 5")
        return super().step(action)


class HangingEnv(LinearQuadraticEnv):
    """Once ``armed`` exists, the first Ray worker to reach step 30 of an
    episode writes ``hung`` and stops answering without dying (a hung
    simulator); its replacement finds ``hung`` and goes on."""

    def __init__(self, flags: str = "", **kwargs):
        super().__init__(**kwargs)
        self.flags = flags

    def step(self, action):
        on_worker = "RAY_RAYLET_PID" in os.environ
        if on_worker and self.t == 30 and os.path.exists(f"{self.flags}/armed"):
            try:
                open(f"{self.flags}/hung", "x").close()
            except FileExistsError:
                pass
            else:
                time.sleep(3600)
        return super().step(action)


gym.register("LockedToy-v0", entry_point=f"{__name__}:LockedEnv", max_episode_steps=60)
gym.register(
    "HangingToy-v0", entry_point=f"{__name__}:HangingEnv", max_episode_steps=60
)
gym.register(
    "FailingToy-v0", entry_point=f"{__name__}:FailingEnv", max_episode_steps=60
)

# obs-norm on, 4 pairs, 3 windows per episode (a staggered warm-up).
SMALL = dict(
    env="Swimmer-v5",
    num_particles=8,
    truncation_length=20,
    horizon=60,
    obs_norm=True,
    sigma=0.1,
    learning_rate=0.05,
    seed=3,
    preset=None,  # the settings above, AgentConfig's for the rest
)
