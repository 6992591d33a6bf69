"""What ``ESAgent.save`` writes and leaves out, and how ``load`` continues.

An env instance is not saved (wrappers often hold lambdas, which do not
pickle): as in Stable-Baselines3, ``load(path, env=instance)`` takes it
again. Particles whose envs cannot be copied or pickled (Box2D's SWIG
handles) are saved as None: a load restarts their episodes.
"""

import dataclasses
import sys
from typing import Any

import gymnasium as gym

from pes_rl.core.multihost import is_main_process
from pes_rl.core.train_state import restore_state, unpack_state
from pes_rl.envs.backends.pool import UnsavableEnvError
from pes_rl.errors import ConfigError
from pes_rl.runs import checkpoints

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


def checkpoint_payload(agent, extra: dict | None) -> dict[str, Any]:
    """Everything ``ESAgent.save`` writes (``pes_rl.runs.checkpoints``)."""
    return {
        "format": checkpoints.FORMAT,
        "algorithm": agent.algorithm.agent_name,
        "config": config_to_save(agent.config),
        "state": unpack_state(agent.state),
        "counters": {
            "env_steps": agent.env_steps,
            "simulated_steps": agent.simulated_steps,
            "eval_env_steps": agent.eval_env_steps,
            "num_updates": agent.num_updates,
        },
        "reset_rng": agent.loop.reset_key_data(),
        "warmed_up": agent._warmed_up,
        "particles": particles_to_save(agent),
        "extra": extra or {},
    }


def restore_agent(cls, saved: dict[str, Any], overrides: dict[str, Any]):
    """An agent of class ``cls`` continuing the saved one."""
    check_env_given(saved, overrides)
    if saved["config"].get("problem") is not None:  # saved with env "swimmer"
        saved = {**saved, "config": {**saved["config"], "env": None}}
    # The saved config is complete: no preset fills it again.
    agent = cls(**{**saved["config"], "preset": None, **overrides})
    preset = saved["config"].get("preset")
    agent.config = dataclasses.replace(agent.config, preset=preset)
    updates = saved["counters"]["num_updates"]  # in checkpoints before hyper
    state = restore_state(saved["state"], agent.state, updates)
    if saved.get("particles") is None:  # restart: clear the accumulators
        state = state.replace(est_state=agent.est_state)
    else:
        agent.loop.set_particles(saved["particles"])
        agent._warmed_up = saved["warmed_up"]
    agent.state = state
    for name, value in saved["counters"].items():
        setattr(agent, name, value)
    agent.loop.set_reset_key_data(saved["reset_rng"])
    return agent
