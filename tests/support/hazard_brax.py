"""``tests/support/hazard_env.py``'s task for the Brax backend, apart so
that only the tests that run it import Brax."""

import jax
import jax.numpy as jnp
from brax.envs.base import State
from hazard_env import HazardRules

from pes_rl.envs.toy_brax import LinearQuadraticBrax


class HazardBrax(HazardRules, LinearQuadraticBrax):
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
