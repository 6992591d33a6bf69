"""The linear-quadratic toy with two kinds of early termination whose smoothed
gradient is still known exactly (``tests/integration/test_unbiased_termination.py``):

- an exogenous hazard: after every step the episode ends with probability
  ``hazard``, drawn from the reset seed (key), so both members of a pair end
  together and the ending does not depend on the perturbation;
- a rule on the first action: after step ``rule_step`` a member whose first
  action exceeded ``rule_threshold`` terminates. With the first parameter of
  theta at the threshold, exactly one member of every antithetic pair ends
  there and the other goes on: the absorbing path.

The same task for the Brax backend is ``hazard_brax.py``.
"""

import numpy as np

from pes_rl.envs.toy import LinearQuadraticEnv


class HazardRules:
    """The hazard and the first-action rule, for either form of the task."""

    def __init__(self, hazard=0.0, rule_step=None, rule_threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hazard, self.rule_step, self.rule_threshold = (
            hazard,
            rule_step,
            rule_threshold,
        )


class HazardEnv(HazardRules, LinearQuadraticEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first_action = 0.0

    def step(self, action):
        if self.t == 0:
            self.first_action = float(np.asarray(action).reshape(-1)[0])
        obs, reward, _, truncated, info = super().step(action)
        terminated = self.np_random.random() < self.hazard
        if self.t == self.rule_step and self.first_action > self.rule_threshold:
            terminated = True
        return obs, reward, terminated, truncated, info
