"""The linear-quadratic toy with two kinds of early termination whose smoothed
gradient is still known exactly (``tests/integration/test_unbiased_termination.py``):

- an exogenous hazard: after every step the episode ends with probability
  ``hazard``, drawn from the reset seed (key), so both members of a pair end
  together and the ending does not depend on the perturbation;
- a rule on the first action: after step ``rule_step`` a member whose first
  action exceeded ``rule_threshold`` terminates. With the first parameter of
  theta at the threshold, exactly one member of every antithetic pair ends
  there and the other goes on: the absorbing path.
"""

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import State

from pes_rl.envs.toy import LinearQuadraticEnv
from pes_rl.envs.toy_brax import LinearQuadraticBrax


class HazardEnv(LinearQuadraticEnv):
    def __init__(self, hazard=0.0, rule_step=None, rule_threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hazard, self.rule_step, self.rule_threshold = (
            hazard,
            rule_step,
            rule_threshold,
        )
        self.first_action = 0.0

    def step(self, action):
        if self.t == 0:
            self.first_action = float(np.asarray(action).reshape(-1)[0])
        obs, reward, _, truncated, info = super().step(action)
        terminated = self.np_random.random() < self.hazard
        if self.t == self.rule_step and self.first_action > self.rule_threshold:
            terminated = True
        return obs, reward, terminated, truncated, info


class HazardBrax(LinearQuadraticBrax):
    def __init__(self, hazard=0.0, rule_step=None, rule_threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hazard, self.rule_step, self.rule_threshold = (
            hazard,
            rule_step,
            rule_threshold,
        )

    def reset(self, rng: jax.Array) -> State:
        zero = jnp.zeros((), jnp.float32)
        info = {"state": zero, "t": zero, "first_action": zero, "key": rng}
        obs = jnp.stack([1.0, zero])
        return State(None, obs, zero, zero, {}, info)

    def step(self, state: State, action: jax.Array) -> State:
        info = state.info
        first = jnp.where(info["t"] == 0, action[0], info["first_action"])
        s = self.rho * info["state"] + action[0]
        t = info["t"] + 1
        key, draw = jax.random.split(jax.random.wrap_key_data(info["key"]))
        done = jax.random.uniform(draw) < self.hazard
        if self.rule_step is not None:
            done |= (t == self.rule_step) & (first > self.rule_threshold)
        return state.replace(
            obs=jnp.stack([1.0, t / self.episode_length]),
            reward=-((s - self.target) ** 2),
            done=done.astype(jnp.float32),
            info={
                "state": s,
                "t": t,
                "first_action": first,
                "key": jax.random.key_data(key),
            },
        )
