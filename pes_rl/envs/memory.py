"""A memory task: a cue shown once, its sign asked for at the end.

At t = 0 the observation is ``[cue, 0]`` with the cue +1 or -1 at random;
then ``[0, 0]`` until the last step, whose observation ``[0, 1]`` asks for
the answer. The last action ``a`` earns ``1 - (a - cue)^2``; every other
step earns nothing. The optimal return is 1. A policy without memory sees
the same last observation whatever the cue, so its answer is some constant
``c`` and its expected return ``-c^2`` is at most 0, chance: only a
recurrent policy can do better. (A squared error rather than a clipped
``a * cue``: outside the clip, every perturbation scores the same and ES
gets no gradient.)
"""

import gymnasium as gym
import numpy as np


class CueMemoryEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, length: int = 10):
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        self.length = length
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-3.0, 3.0, (1,), np.float32)
        self.cue, self.t = 1.0, 0

    def _obs(self) -> np.ndarray:
        cue = self.cue if self.t == 0 else 0.0
        return np.array([cue, float(self.t == self.length - 1)], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue = float(self.np_random.choice([-1.0, 1.0]))
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        last = self.t == self.length - 1
        answer = float(np.asarray(action).reshape(-1)[0])
        reward = 1.0 - (answer - self.cue) ** 2 if last else 0.0
        self.t += 1
        return self._obs(), reward, last, False, {}
