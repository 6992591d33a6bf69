"""``ESAgent.predict``: the mean policy's deterministic actions, in the
style of Stable-Baselines3 (a recurrent policy's carry as its ``state``)."""

import gymnasium as gym
import numpy as np

from pes_rl.errors import ConfigError


def predict_actions(agent, obs, state=None, episode_start=None):
    """See ``ESAgent.predict``."""
    if agent.module is None:
        raise ConfigError("predict needs a policy; a Problem has no observations")
    space = agent.flattened_observations
    if isinstance(obs, dict | tuple) and space:
        obs = gym.spaces.flatten(space, obs)  # the env's own
    obs = np.asarray(obs, np.float32)
    batch = np.atleast_2d(obs)
    if not agent.recurrent:
        actions = agent.loop.mean_actions(agent.state, agent._unravel, batch)
        actions = actions[0] if obs.ndim == 1 else actions
        # Code written for recurrent policies unpacks (action, state).
        stateful = state is not None or episode_start is not None
        return (actions, None) if stateful else actions
    fresh = np.tile(agent.initial_carry, (len(batch), 1))
    carry = fresh if state is None else np.atleast_2d(state).astype(np.float32)
    if carry.shape != fresh.shape:
        raise ConfigError(
            f"state has shape {np.shape(state)}: expected {fresh.shape} "
            f"(the policy's flat carry, one row per observation)"
        )
    if episode_start is not None:
        starts = np.broadcast_to(np.asarray(episode_start, bool), len(batch))
        carry = np.where(starts[:, None], fresh, carry)
    actions, carry = agent.loop.mean_actions(agent.state, agent._unravel, batch, carry)
    return (actions[0], carry[0]) if obs.ndim == 1 else (actions, carry)
