"""Backends and environment registry (installed as ``pes_rl.envs``)."""

from pes_rl.envs.gymnasium_backend import GymnasiumBackend, WindowResult
from pes_rl.envs.registry import ALIASES, gymnasium_factory, known_names, register
from pes_rl.envs.toy import LinearQuadraticEnv

register(
    "linear_quadratic",
    gymnasium="pes_rl.envs.toy:LinearQuadraticEnv",
    brax="pes_rl.envs.toy_brax:LinearQuadraticBrax",
    max_episode_steps=20,
)

__all__ = [
    "ALIASES",
    "GymnasiumBackend",
    "LinearQuadraticEnv",
    "WindowResult",
    "gymnasium_factory",
    "known_names",
    "register",
]
