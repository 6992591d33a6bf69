"""Backends and environment registry (installed as ``pes_rl.envs``)."""

from pes_rl.envs.backends.gymnasium import GymnasiumBackend, WindowResult
from pes_rl.envs.memory import CueMemoryEnv
from pes_rl.envs.registry import ALIASES, gymnasium_factory, known_names, register
from pes_rl.envs.toy import LinearQuadraticEnv

register(
    "linear_quadratic",
    gymnasium="pes_rl.envs.toy:LinearQuadraticEnv",
    brax="pes_rl.envs.toy_brax:LinearQuadraticBrax",
    max_episode_steps=20,
)
register(
    "cue_memory",
    gymnasium="pes_rl.envs.memory:CueMemoryEnv",
    brax="pes_rl.envs.memory_brax:CueMemoryBrax",
    max_episode_steps=10,
)

__all__ = [
    "ALIASES",
    "CueMemoryEnv",
    "GymnasiumBackend",
    "LinearQuadraticEnv",
    "WindowResult",
    "gymnasium_factory",
    "known_names",
    "register",
]
