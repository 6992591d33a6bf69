"""What the Ray worker tests share: envs importable on the workers by
module name (registered Gymnasium ids whose entry points live here), and the
small run they train."""

import os
import threading

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


gym.register("LockedToy-v0", entry_point=f"{__name__}:LockedEnv", max_episode_steps=60)
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
