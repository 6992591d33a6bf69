"""Small Gymnasium envs for the action- and observation-space tests."""

import gymnasium as gym
import numpy as np


class PickTargets(gym.Env):
    """MultiDiscrete([3, 4]) actions starting at (1, 0): each step earns one
    point per sub-action equal to its target (3 and 2). The observation is a
    constant [1], so the policy needs no memory: a linear policy learns it."""

    TARGETS = np.array([3, 2])

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.MultiDiscrete([3, 4], start=[1, 0])
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.ones(1, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action)), action
        self.t += 1
        reward = float((np.asarray(action) == self.TARGETS).sum())
        return np.ones(1, np.float32), reward, False, self.t >= 10, {}


class DictObservations(PickTargets):
    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Dict(
            {"x": gym.spaces.Box(-1.0, 1.0, (1,), np.float32)}
        )


class TupleActions(PickTargets):
    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Tuple(
            (gym.spaces.Discrete(2), gym.spaces.Discrete(2))
        )
