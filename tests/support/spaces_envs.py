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


class SequenceObservations(PickTargets):
    """Observations of varying length: they do not flatten into a vector."""

    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Sequence(
            gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        )


class DictCue(gym.Env):
    """A cue of +1 or -1 drawn at reset and shown at every step, with a
    distractor (Discrete) beside it; each of the 5 steps earns
    -(action - cue)^2, so the best return is 0 and the zero action's -5.
    Observations are a Dict: the policy sees them flattened."""

    def __init__(self):
        self.observation_space = gym.spaces.Dict(
            {
                "cue": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
                "distractor": gym.spaces.Discrete(3),
            }
        )
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.cue, self.t = 1.0, 0

    def _obs(self):
        distractor = int(self.np_random.integers(3))
        return {"cue": np.array([self.cue], np.float32), "distractor": distractor}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue, self.t = float(self.np_random.choice([-1.0, 1.0])), 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        reward = -float((np.asarray(action)[0] - self.cue) ** 2)
        return self._obs(), reward, False, self.t >= 5, {}


class TupleCue(DictCue):
    """DictCue with a Tuple observation: (distractor, cue)."""

    def __init__(self):
        super().__init__()
        spaces = self.observation_space.spaces
        self.observation_space = gym.spaces.Tuple((spaces["distractor"], spaces["cue"]))

    def _obs(self):
        obs = super()._obs()
        return obs["distractor"], obs["cue"]


class TupleActions(PickTargets):
    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Tuple(
            (gym.spaces.Discrete(2), gym.spaces.Discrete(2))
        )


# Registered when first imported (once per process), for the tests that
# name them.
gym.register("DictCue-v0", entry_point=f"{__name__}:DictCue", max_episode_steps=5)
gym.register("TupleCue-v0", entry_point=f"{__name__}:TupleCue", max_episode_steps=5)
