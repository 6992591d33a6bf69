"""A user module that registers an environment on import, for the CLI's
``module:EnvId`` form."""

import gymnasium as gym

gym.register(
    id="CustomLQ-v0",
    entry_point="pes_rl.envs.toy:LinearQuadraticEnv",
    max_episode_steps=10,
    kwargs={"episode_length": 10},
)
