"""A user's own Gymnasium environment, as the custom-env example of
docs/guides/custom-environments.md.

A point mass on a line is pushed towards a target it observes; reward is
minus the distance. Importing this module registers it with Gymnasium as
``PointMass-v0``, so ``--env my_env:PointMass-v0`` works from the CLI.
"""

import gymnasium as gym
import numpy as np


class PointMass(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, target: float = 1.0):
        self.target = target
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.position = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self.position, self.target], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = float(self.np_random.uniform(-1.0, 1.0))
        return self._obs(), {}

    def step(self, action):
        push = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        self.position += 0.1 * push
        reward = -abs(self.position - self.target)
        return self._obs(), reward, False, False, {}


gym.register(id="PointMass-v0", entry_point=PointMass, max_episode_steps=50)
