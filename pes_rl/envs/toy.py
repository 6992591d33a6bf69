"""A linear-quadratic toy task, the library's test fixture and example of a
custom environment.

The state follows ``s' = rho * s + a`` from ``s = 0`` and the reward is
``-(s' - target)^2``. The observation ``[1, t / episode_length]`` does not
depend on the state, so with a linear policy every action is linear in the
parameters and each window's return is a quadratic function of them. Under
Gaussian perturbations the expectation of a quadratic differs from its value
at the mean only by a constant, so the smoothed gradient equals the exact
gradient of the unperturbed unroll: a known answer for unbiasedness tests.
With ``rho`` close to 1 each action keeps influencing later rewards, which is
what truncated ES misses.
"""

import gymnasium as gym
import numpy as np


class LinearQuadraticEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        episode_length: int = 20,
        rho: float = 0.9,
        target: float = 1.0,
        terminate_above: float | None = None,
    ):
        self.episode_length = episode_length
        self.rho = rho
        self.target = target
        self.terminate_above = terminate_above
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-100.0, 100.0, (1,), np.float32)
        self.state = 0.0
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([1.0, self.t / self.episode_length], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self.t = 0.0, 0
        return self._obs(), {}

    def step(self, action):
        self.state = self.rho * self.state + float(np.asarray(action).reshape(-1)[0])
        self.t += 1
        reward = -((self.state - self.target) ** 2)
        terminated = (
            self.terminate_above is not None and abs(self.state) > self.terminate_above
        )
        return self._obs(), reward, terminated, False, {}
