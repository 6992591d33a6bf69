"""What ``ESAgent.save`` leaves out, and what ``load`` then needs.

An env instance is not saved (wrappers often hold lambdas, which do not
pickle): as in Stable-Baselines3, ``load(path, env=instance)`` takes it
again. Particles whose envs cannot be copied or pickled (Box2D's SWIG
handles) are saved as None: a load restarts their episodes.
"""

import sys
from typing import Any

import gymnasium as gym

from pes_rl.core.multihost import is_main_process
from pes_rl.envs.backends.pool import UnsavableEnvError
from pes_rl.errors import ConfigError

# What a saved config holds in place of an env instance.
ENV_INSTANCE = "<env instance: pass env= to load>"


def config_to_save(config) -> dict[str, Any]:
    """The agent's config as keyword arguments, an env instance left out."""
    kwargs = config.as_kwargs()
    if isinstance(kwargs["env"], gym.Env):
        kwargs["env"] = ENV_INSTANCE
    return kwargs


def check_env_given(saved: dict[str, Any], overrides: dict[str, Any]) -> None:
    if saved["config"]["env"] == ENV_INSTANCE and "env" not in overrides:
        raise ConfigError(
            "this agent was built from an env instance, which is not saved: "
            f"pass it again, {saved['algorithm']}.load(path, env=...)"
        )


def particles_to_save(agent) -> Any:
    """The agent's particles, or None where an env's state cannot be copied
    or pickled; the warning is printed once per agent."""
    try:
        return agent.loop.particles()
    except UnsavableEnvError as err:
        if not agent._said_unsavable and is_main_process():
            print(
                f"warning: the particles of {agent.env_name} cannot be saved: "
                f"{err}; checkpoints keep everything else, and a resume "
                "restarts their episodes (said once)",
                file=sys.stderr,
            )
        agent._said_unsavable = True
        return None
