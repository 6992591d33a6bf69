"""The memory task of ``pes_rl/envs/memory.py`` as a Brax environment, for the
jitted engine. Kept apart so importing ``pes_rl.envs`` does not import Brax."""

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State


class CueMemoryBrax(Env):
    action_bounds = (-3.0, 3.0)  # as the numpy version's action space

    def __init__(self, length: int = 10):
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        self.length = length

    def _obs(self, cue: jax.Array, t: jax.Array) -> jax.Array:
        shown = jnp.where(t == 0, cue, 0.0)
        return jnp.stack([shown, (t == self.length - 1).astype(jnp.float32)])

    def reset(self, rng: jax.Array) -> State:
        cue = jnp.where(jax.random.bernoulli(rng), 1.0, -1.0)
        t = jnp.zeros((), jnp.int32)
        zero = jnp.zeros((), jnp.float32)
        return State(
            pipeline_state=None,
            obs=self._obs(cue, t),
            reward=zero,
            done=zero,
            metrics={},
            info={"cue": cue, "t": t},
        )

    def step(self, state: State, action: jax.Array) -> State:
        t, cue = state.info["t"], state.info["cue"]
        last = t == self.length - 1
        return state.replace(
            obs=self._obs(cue, t + 1),
            reward=jnp.where(last, 1.0 - (action[0] - cue) ** 2, 0.0),
            done=last.astype(jnp.float32),
            info={**state.info, "t": t + 1},
        )

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def action_size(self) -> int:
        return 1

    @property
    def backend(self) -> str:
        return "jax"
