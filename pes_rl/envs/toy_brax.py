"""The linear-quadratic toy task of ``pes_rl/envs/toy.py`` as a Brax environment.

The same dynamics written in JAX, for the Brax backend; a parity test feeds
both versions the same actions. Kept apart from ``toy.py`` so importing
``pes_rl.envs`` does not import Brax.
"""

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State


class LinearQuadraticBrax(Env):
    action_bounds = (-100.0, 100.0)  # as the numpy version's action space

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

    def _obs(self, t: jax.Array) -> jax.Array:
        return jnp.stack([jnp.ones_like(t), t / self.episode_length])

    def reset(self, rng: jax.Array) -> State:
        zero = jnp.zeros((), jnp.float32)
        return State(
            pipeline_state=None,
            obs=self._obs(zero),
            reward=zero,
            done=zero,
            metrics={},
            info={"state": zero, "t": zero},
        )

    def step(self, state: State, action: jax.Array) -> State:
        s = self.rho * state.info["state"] + action[0]
        t = state.info["t"] + 1
        done = jnp.zeros(())
        if self.terminate_above is not None:
            done = (jnp.abs(s) > self.terminate_above).astype(jnp.float32)
        return state.replace(
            obs=self._obs(t),
            reward=-((s - self.target) ** 2),
            done=done,
            info={**state.info, "state": s, "t": t},
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
